/* Shared by the C harnesses: the native core (built by fuzz_build.py into
 * native_amalgam.c), a packet pool in place of Python's, and a byte reader
 * over the fuzzer's input. */

#include "native_amalgam.c"

#include <assert.h>

/* Packets: one pool, carved the first time the core asks for memory. Every
 * harness gives all its packets back at the end of each input, and
 * check_no_leak() asserts it, so a leak or double free is a crash. */
#define FUZZ_PACKETS 2048
static int fuzz_grown;

static int snabbpy_packet_grow(void)
{
    if (fuzz_grown)
        return 0;
    fuzz_grown = 1;
    uint64_t size = (uint64_t)FUZZ_PACKETS * 10560 + 64;
    void *base = aligned_alloc(4096, (size + 4095) & ~4095ull);
    assert(base);
    packet_freelist_add((uintptr_t)base, size, 1ull << 40);
    /* Device address = virtual address: a device model reaches packets. */
    dma_map_add((uint64_t)(uintptr_t)base, size, 0);
    return 1;
}

static void fuzz_packets_init(void)
{
    if (!fuzz_grown)
        packet_free(packet_allocate());
}

static void check_no_leak(void)
{
    struct packet_stats s;
    packet_get_stats(&s);
    if (s.nfree != s.created) {
        fprintf(stderr, "packet leak: %llu created, %llu free\n",
                (unsigned long long)s.created, (unsigned long long)s.nfree);
        abort();
    }
    if (packet_freelist_duplicates()) {
        fprintf(stderr, "double free: a packet is on the freelist twice\n");
        abort();
    }
    struct packet_fault f;
    if (packet_take_fault(&f)) { /* refused in C: freed twice, sent after free... */
        fprintf(stderr, "packet %#lx misused (kind %u)\n", (unsigned long)f.packet, f.kind);
        abort();
    }
}

static struct link_stats fuzz_link_stats;

static void fuzz_link_init(struct link *l)
{
    memset(l, 0, sizeof *l);
    l->stats = &fuzz_link_stats;
}

static void fuzz_link_free(struct link *l)
{
    while (!link_empty(l))
        packet_free(link_receive(l));
}

/* The input, read front to back; past its end every read gives 0. */
struct input { const uint8_t *p; size_t n; };

static uint8_t in_u8(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t in_u16(struct input *in)
{
    uint16_t lo = in_u8(in);
    return (uint16_t)(lo | in_u8(in) << 8);
}

static uint32_t in_u32(struct input *in)
{
    uint32_t lo = in_u16(in);
    return lo | (uint32_t)in_u16(in) << 16;
}

static uint64_t in_u64(struct input *in)
{
    uint64_t lo = in_u32(in);
    return lo | (uint64_t)in_u32(in) << 32;
}

/* Up to n packets onto l (while it has room), lengths from the input up to
 * max bytes; with ipv4 a frame long enough is made an IPv4 one (EtherType
 * and version), for the checksum paths. Returns how many. */
static int fuzz_fill(struct input *in, struct link *l, int n, uint32_t max, int ipv4)
{
    int i = 0;
    for (; i < n && !link_full(l); i++) {
        struct packet *p = packet_allocate();
        if (!p)
            break;
        p->length = (uint16_t)(in_u16(in) % (max + 1));
        memset(p->buf + p->headroom, 0xa5, p->length);
        if (ipv4 && p->length >= 54)
            memcpy(p->buf + p->headroom + 12, "\x08\x00\x45\x00", 4);
        link_transmit(l, p);
    }
    return i;
}

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
    abort(); } } while (0)
