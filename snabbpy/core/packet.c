/* Packets and their freelist. The hot path never allocates: packets are
 * carved from DMA memory in chunks (by Python, through the grow callback)
 * and recycled here. */

static struct packet *freelist[PACKET_MAX_PACKETS];
static uint64_t freelist_n;
static struct packet_stats stats;

/* Ask Python for more packet memory; 0 when none can be had. */
static int freelist_refill(void)
{
    return snabbpy_packet_grow() && freelist_n > 0;
}

struct packet *packet_allocate(void)
{
    if (__builtin_expect(freelist_n == 0, 0) && !freelist_refill())
        return NULL;
    struct packet *p = freelist[--freelist_n];
    p->length = 0;
    p->headroom = PACKET_HEADROOM;
    stats.allocated++;
    return p;
}

void packet_free(struct packet *p)
{
    freelist[freelist_n++] = p;
    stats.freed++;
    stats.freed_bytes += p->length;
}

struct packet *packet_clone(struct packet *p)
{
    struct packet *c = packet_allocate();
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

/* Carve packets out of [base, base+size) and put them on the freelist.
 * No packet crosses a multiple of boundary (a hugepage, say), so each is
 * physically contiguous. Returns the number of packets added. */
uint64_t packet_freelist_add(uintptr_t base, uint64_t size, uint64_t boundary)
{
    const uint64_t stride = (sizeof(struct packet) + 63) & ~(uint64_t)63;
    uintptr_t at = (base + 63) & ~(uintptr_t)63, end = base + size;
    uint64_t added = 0;
    while (at + stride <= end && freelist_n < PACKET_MAX_PACKETS) {
        uintptr_t next_boundary = (at / boundary + 1) * boundary;
        if (at + stride > next_boundary) {
            at = next_boundary;
            continue;
        }
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
