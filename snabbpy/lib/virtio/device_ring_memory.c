/* Device side of a split virtqueue (see device_ring.h): the memory table,
 * translating guest addresses to ours with every byte bounds-checked.
 * Compiled first of the device_ring parts (see C_PARTS in __init__.py). */

/* -- memory table ------------------------------------------------------ */

void dr_memory_clear(struct dr_memory *m)
{
    memset(m, 0, sizeof *m);
}

/* Compares last bytes, not ends: a region may end at 2^64 exactly, where
 * its end would wrap to 0. Sizes are not 0. */
static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

int dr_memory_add(struct dr_memory *m, uint64_t guest_phys, uint64_t user_addr,
                  uint64_t size, uint64_t host_addr)
{
    if (m->nregions >= DR_MAX_REGIONS)
        return DR_E_FULL;
    if (size == 0 || guest_phys + size - 1 < guest_phys
        || user_addr + size - 1 < user_addr || host_addr + size - 1 < host_addr)
        return DR_E_REGION;
    /* Overlapping regions would make a translation ambiguous. */
    for (uint32_t i = 0; i < m->nregions; i++) {
        struct dr_region *r = &m->regions[i];
        if (overlaps(guest_phys, size, r->guest_phys, r->size)
            || overlaps(user_addr, size, r->user_addr, r->size))
            return DR_E_REGION;
    }
    struct dr_region *r = &m->regions[m->nregions++];
    r->guest_phys = guest_phys;
    r->user_addr = user_addr;
    r->size = size;
    r->host_addr = host_addr;
    return 0;
}

/* The region holding guest physical address a, or NULL. */
static struct dr_region *region_of(struct dr_memory *m, uint64_t a)
{
    struct dr_region *r = &m->regions[m->last];
    if (m->last < m->nregions && a - r->guest_phys < r->size)
        return r;
    for (uint32_t i = 0; i < m->nregions; i++) {
        r = &m->regions[i];
        if (a - r->guest_phys < r->size) {
            m->last = i;
            return r;
        }
    }
    return NULL;
}

/* Host address of a and, in *room, the bytes from a to the end of its
 * region (capped at len): the part of [a, a+len) that is contiguous here. */
static uint8_t *translate_part(struct dr_memory *m, uint64_t a, uint64_t len, uint64_t *room)
{
    struct dr_region *r = region_of(m, a);
    if (!r)
        return NULL;
    uint64_t off = a - r->guest_phys, left = r->size - off;
    *room = len < left ? len : left;
    return (uint8_t *)(uintptr_t)(r->host_addr + off);
}

/* PREFETCHW where the CPU has it (CPUID 0x80000001 ECX bit 8): the line
 * comes in owned, ready for our stores, instead of shared and then taken
 * over from the core that last wrote it (a second cross-core trip each
 * store must wait out). Elsewhere an ordinary prefetch. */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static int have_prefetchw;

__attribute__((constructor)) static void detect_prefetchw(void)
{
    unsigned a, b, c, d;
    have_prefetchw = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c >> 8 & 1);
}

static inline void prefetch_for_write(const void *p)
{
    if (have_prefetchw)
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
    else
        __builtin_prefetch(p, 1);
}
#else
static inline void prefetch_for_write(const void *p) { __builtin_prefetch(p, 1); }
#endif

/* A hint for the cache and nothing more: asks for the first two lines of
 * the buffer that desc (a descriptor of either ring: address at byte 0,
 * length at byte 8) names, for writing when write, if it is mapped. Both
 * rings call it DR_AHEAD chains ahead of their walk; its reads decide
 * nothing (the walk reads each descriptor again, once, and checks that
 * copy). The driver wrote the buffer on its own core just before, so
 * without the hint each is a miss the walk waits out one after the other. */
static inline void prefetch_buffer(struct dr_memory *m, const uint8_t *desc, int write)
{
    uint64_t a, room;
    uint32_t len;
    memcpy(&a, desc, 8);
    memcpy(&len, desc + 8, 4);
    const uint8_t *h = translate_part(m, a, len | 1, &room);
    if (!h)
        return;
    if (write) {
        prefetch_for_write(h);
        if (room > 64)
            prefetch_for_write(h + 64);
    } else {
        __builtin_prefetch(h, 0);
        if (room > 64)
            __builtin_prefetch(h + 64, 0);
    }
}

uint8_t *dr_translate(struct dr_memory *m, uint64_t guest_phys, uint64_t len)
{
    uint64_t room;
    uint8_t *h = translate_part(m, guest_phys, len, &room);
    return h && room == len ? h : NULL;
}

uint8_t *dr_translate_user(struct dr_memory *m, uint64_t user_addr, uint64_t len)
{
    for (uint32_t i = 0; i < m->nregions; i++) {
        struct dr_region *r = &m->regions[i];
        uint64_t off = user_addr - r->user_addr;
        if (off < r->size && len <= r->size - off)
            return (uint8_t *)(uintptr_t)(r->host_addr + off);
    }
    return NULL;
}

/* Copies len guest bytes at a into dst, across adjacent regions; 0 or -1. */
static int guest_read(struct dr_memory *m, uint64_t a, void *dst, uint64_t len)
{
    uint8_t *d = dst;
    while (len) {
        uint64_t room;
        uint8_t *h = translate_part(m, a, len, &room);
        if (!h)
            return -1;
        memcpy(d, h, room);
        d += room; a += room; len -= room;
    }
    return 0;
}
