/* Packets and their freelist. The hot path never allocates: packets are
 * carved from DMA memory in chunks (by Python, through the grow callback)
 * and recycled here. */

static struct packet *freelist[PACKET_MAX_PACKETS];
static uint64_t freelist_n;
static struct packet_stats stats = { .max = PACKET_MAX_PACKETS };
static struct packet_fault fault;
/* Hidden: C reaches them directly, not through the GOT (a load less per
 * allocation and free); cffi reaches them from inside the library. */
#define PACKET_HIDDEN __attribute__((visibility("hidden")))
PACKET_HIDDEN uint32_t packet_app;
PACKET_HIDDEN struct packet_account packet_accounts[PACKET_MAX_APPS];
PACKET_HIDDEN uint32_t packet_alarm;

/* Ask Python for more packet memory; 0 when none can be had, which is
 * recorded once (with the app that asked) for the engine to report. */
static int freelist_refill(void)
{
    if (stats.created < stats.max && snabbpy_packet_grow() && freelist_n > 0)
        return 1;
    if (stats.exhausted++ == 0) {
        stats.exhausted_app = packet_app;
        packet_alarm = 1;
    }
    return 0;
}

/* The hot paths are static inline so that C callers here (clone, links)
 * call no function, only Python and other parts go through the exported
 * packet_allocate and packet_free. */
static inline struct packet *allocate_inline(void)
{
    if (__builtin_expect(freelist_n == 0, 0) && !freelist_refill())
        return NULL;
    struct packet *p = freelist[--freelist_n];
    p->length = 0;
    p->headroom = PACKET_HEADROOM;
    p->state = PACKET_OWNED;
    packet_accounts[packet_app].allocated++;
    return p;
}

struct packet *packet_allocate(void) { return allocate_inline(); }

/* Records a refused misuse of p (the first since the last take). */
void packet_misused(struct packet *p, uint32_t kind)
{
    if (fault.count++ == 0) {
        fault.packet = (uintptr_t)p;
        fault.app = packet_app;
        fault.kind = kind;
    }
    packet_alarm = 1;
}

/* A packet freed twice, or while a link holds it, is refused (left as it
 * is) and recorded, so the freelist never holds a packet twice. */
static inline void free_inline(struct packet *p)
{
    if (__builtin_expect(p->state != PACKET_OWNED, 0)) {
        packet_misused(p, p->state == PACKET_FREE ? PACKET_FAULT_FREED_TWICE
                                                  : PACKET_FAULT_FREED_ON_LINK);
        return;
    }
    p->state = PACKET_FREE;
    freelist[freelist_n++] = p;
    packet_accounts[packet_app].freed++;
    stats.freed_bytes += p->length;
}

void packet_free(struct packet *p) { free_inline(p); }

/* Copies out and clears the fault record; returns its count. */
int packet_take_fault(struct packet_fault *out)
{
    *out = fault;
    memset(&fault, 0, sizeof(fault));
    packet_alarm = 0;
    return (int)(out->count > 0x7fffffff ? 0x7fffffff : out->count);
}

/* At most max packets will be created (never fewer than exist); running
 * out is recorded afresh. */
void packet_set_max(uint64_t max)
{
    stats.exhausted = 0;
    stats.exhausted_app = 0;
    stats.max = max < stats.created ? stats.created : max;
    if (stats.max > PACKET_MAX_PACKETS)
        stats.max = PACKET_MAX_PACKETS;
}

struct packet *packet_clone(struct packet *p)
{
    struct packet *c = allocate_inline();
    if (c) {
        c->length = p->length;
        memcpy(c->buf + c->headroom, p->buf + p->headroom, p->length);
    }
    return c;
}

uint8_t *packet_data(struct packet *p)
{
    return p->buf + p->headroom;
}

int packet_append(struct packet *p, const uint8_t *data, uint32_t n)
{
    if ((uint32_t)p->headroom + p->length + n > sizeof(p->buf)
        || p->length + n > PACKET_PAYLOAD_SIZE)
        return -1;
    memcpy(p->buf + p->headroom + p->length, data, n);
    p->length += n;
    return 0;
}

/* Make room for n bytes in front of the payload: use the headroom, or move
 * the payload back when the headroom is too small. */
int packet_shiftright(struct packet *p, uint32_t n)
{
    if (p->length + n > PACKET_PAYLOAD_SIZE)
        return -1;
    if (n > p->headroom) {
        uint32_t room = PACKET_HEADROOM > n ? PACKET_HEADROOM : n;
        memmove(p->buf + room, p->buf + p->headroom, p->length);
        p->headroom = room;
    }
    p->headroom -= n;
    p->length += n;
    return 0;
}

int packet_prepend(struct packet *p, const uint8_t *data, uint32_t n)
{
    if (packet_shiftright(p, n) < 0)
        return -1;
    memcpy(p->buf + p->headroom, data, n);
    return 0;
}

int packet_shiftleft(struct packet *p, uint32_t n)
{
    if (n > p->length)
        return -1;
    p->headroom += n;
    p->length -= n;
    /* Keep the tail room for appends: move back when the headroom grew
     * past what a payload of maximum size leaves free. */
    if ((uint32_t)p->headroom + PACKET_PAYLOAD_SIZE > sizeof(p->buf)) {
        memmove(p->buf + PACKET_HEADROOM, p->buf + p->headroom, p->length);
        p->headroom = PACKET_HEADROOM;
    }
    return 0;
}

int packet_resize(struct packet *p, uint32_t n)
{
    if (n > PACKET_PAYLOAD_SIZE)
        return -1;
    if ((uint32_t)p->headroom + n > sizeof(p->buf)) {
        memmove(p->buf + PACKET_HEADROOM, p->buf + p->headroom, p->length);
        p->headroom = PACKET_HEADROOM;
    }
    if (n > p->length)
        memset(p->buf + p->headroom + p->length, 0, n - p->length);
    p->length = n;
    return 0;
}

/* Bytes from one carved packet to the next: whole cache lines, an odd
 * number of them. A packet is 164 lines (a multiple of 4), so packets laid
 * end to end would put every header, and every payload's first line, in
 * the same quarter of the cache sets (address bits 6 and 7 never change),
 * and a few thousand packets in flight would evict each other from L1 and
 * L2 with three quarters of them unused; one line of padding spreads them
 * over all sets (as DPDK pads its mempool objects). */
uint64_t packet_stride(void)
{
    uint64_t lines = (sizeof(struct packet) + 63) / 64;
    return (lines | 1) * 64;
}

/* Carve packets out of [base, base+size) and put them on the freelist.
 * No packet crosses a multiple of boundary (a hugepage, say), so each is
 * physically contiguous. Returns the number of packets added. */
uint64_t packet_freelist_add(uintptr_t base, uint64_t size, uint64_t boundary)
{
    const uint64_t stride = packet_stride();
    uintptr_t at = (base + 63) & ~(uintptr_t)63, end = base + size;
    uint64_t added = 0;
    while (at + stride <= end && stats.created + added < stats.max) {
        uintptr_t next_boundary = (at / boundary + 1) * boundary;
        if (at + stride > next_boundary) {
            at = next_boundary;
            continue;
        }
        ((struct packet *)at)->state = PACKET_FREE;
        freelist[freelist_n++] = (struct packet *)at;
        at += stride;
        added++;
    }
    stats.created += added;
    return added;
}

void packet_get_stats(struct packet_stats *out)
{
    *out = stats;
    out->nfree = freelist_n;
    out->allocated = out->freed = 0;
    for (int i = 0; i < PACKET_MAX_APPS; i++) {
        out->allocated += packet_accounts[i].allocated;
        out->freed += packet_accounts[i].freed;
    }
}

static int compare_pointers(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* Packets on the freelist more than once: each is a double free, and two
 * owners will get the same buffer. A check for tests, O(n log n). */
uint64_t packet_freelist_duplicates(void)
{
    static struct packet *sorted[PACKET_MAX_PACKETS];
    uint64_t dups = 0;
    memcpy(sorted, freelist, freelist_n * sizeof(freelist[0]));
    qsort(sorted, freelist_n, sizeof(sorted[0]), compare_pointers);
    for (uint64_t i = 1; i < freelist_n; i++)
        dups += sorted[i] == sorted[i - 1];
    return dups;
}
