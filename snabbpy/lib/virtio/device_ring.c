/* Device side of a split virtqueue over untrusted guest memory: see
 * device_ring.h for the API and the safety rules. Everything the guest
 * wrote is read once into a local and checked there. */

/* Descriptor flags and ring layout, from the virtio spec (the same values
 * as lib/virtio/vring.h, which this file does not include so that both can
 * be linked into one extension in any order). */
#define DR_DESC_NEXT 1
#define DR_DESC_WRITE 2
#define DR_DESC_INDIRECT 4
#define DR_AVAIL_NO_INTERRUPT 1
#define DR_USED_NO_NOTIFY 1
#define DR_HDR_NEEDS_CSUM 1

enum dr_reason {
    DR_OK = 0, DR_BAD_INDEX, DR_BAD_ADDR, DR_BAD_CHAIN, DR_BAD_INDIRECT,
    DR_BAD_DIRECTION, DR_BAD_HEADER, DR_TOO_LONG,
};

struct dr_desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };

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

/* -- ring access ------------------------------------------------------- */

static inline uint16_t avail_idx(struct dr_queue *q)
{
    return __atomic_load_n((uint16_t *)(q->avail + 2), __ATOMIC_ACQUIRE);
}

static inline uint16_t avail_entry(struct dr_queue *q, uint16_t i)
{
    uint16_t v;
    memcpy(&v, q->avail + 4 + 2 * (i & (q->size - 1)), 2);
    return v;
}

static inline void used_put(struct dr_queue *q, uint32_t id, uint32_t len)
{
    uint8_t *e = q->used + 4 + 8 * (q->used_idx & (q->size - 1));
    memcpy(e, &id, 4);
    memcpy(e + 4, &len, 4);
    q->used_idx++;
    q->stats->chains++;
}

/* need_event of the spec: did the used index just pass event? */
static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Publishes used entries old..used_idx and decides whether to interrupt. */
static void used_publish(struct dr_queue *q, uint16_t old)
{
    q->interrupt = 0;
    if (q->used_idx == old)
        return;
    __atomic_store_n((uint16_t *)(q->used + 2), q->used_idx, __ATOMIC_RELEASE);
    /* The driver writes its flags/used_event then reads used->idx; we write
     * used->idx then read them: a full barrier keeps either from missing. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (q->flags & DR_F_EVENT_IDX) {
        uint16_t event;
        memcpy(&event, q->avail + 4 + 2 * q->size, 2);
        q->interrupt = need_event(event, q->used_idx, old);
    } else {
        uint16_t flags;
        memcpy(&flags, q->avail, 2);
        q->interrupt = !(flags & DR_AVAIL_NO_INTERRUPT);
    }
    q->stats->interrupts += q->interrupt;
}

/* Entries available now; 0 and the queue marked broken when the guest's
 * index ran further ahead than a queue can hold. */
static uint32_t take_pending(struct dr_queue *q, uint16_t *idx)
{
    if (!q->ready || q->broken)
        return 0;
    *idx = avail_idx(q);
    uint32_t n = (uint16_t)(*idx - q->last_avail);
    if (n > q->size) {
        q->broken = 1;
        q->stats->bad_avail_idx++;
        return 0;
    }
    return n;
}

uint32_t dr_queue_pending(struct dr_queue *q)
{
    if (!q->ready || q->broken)
        return 0;
    return (uint16_t)(avail_idx(q) - q->last_avail);
}

/* -- queue life -------------------------------------------------------- */

int dr_queue_start(struct dr_queue *q, struct dr_memory *m, struct dr_stats *s,
                   uint32_t size, uint64_t desc_user, uint64_t avail_user,
                   uint64_t used_user, uint16_t last_avail, uint32_t flags)
{
    memset(q, 0, sizeof *q);
    q->mem = m;
    q->stats = s;
    if (size == 0 || size > DR_MAX_QUEUE_SIZE || (size & (size - 1)))
        return DR_E_SIZE;
    uint32_t event = flags & DR_F_EVENT_IDX ? 2 : 0;
    q->desc = dr_translate_user(m, desc_user, 16ull * size);
    if (!q->desc || desc_user % 16)
        return DR_E_DESC;
    q->avail = dr_translate_user(m, avail_user, 4 + 2ull * size + event);
    if (!q->avail || avail_user % 2)
        return DR_E_AVAIL;
    q->used = dr_translate_user(m, used_user, 4 + 8ull * size + event);
    if (!q->used || used_user % 4)
        return DR_E_USED;
    q->size = size;
    q->flags = flags;
    q->hdr_len = flags & (DR_F_MRG_RXBUF | DR_F_VERSION_1) ? 12 : 10;
    q->last_avail = last_avail;
    q->used_idx = __atomic_load_n((uint16_t *)(q->used + 2), __ATOMIC_ACQUIRE);
    uint16_t used_flags = DR_USED_NO_NOTIFY;
    memcpy(q->used, &used_flags, 2);
    q->ready = 1;
    return 0;
}

uint16_t dr_queue_stop(struct dr_queue *q)
{
    q->ready = 0;
    q->interrupt = 0;
    return q->last_avail;
}

/* -- chain walking ----------------------------------------------------- */

/* Where a walk is: in the ring's table, or in one indirect table (read
 * through table when it is contiguous in one region, else by address). */
struct walk {
    uint8_t *table;
    uint64_t table_addr;
    uint32_t entries;
    uint32_t idx;
    uint32_t seen;
    uint8_t indirect;
    uint8_t more;
};

static int walk_begin(struct dr_queue *q, struct walk *w, uint16_t head)
{
    if (head >= q->size)
        return DR_BAD_INDEX;
    w->table = q->desc;
    w->entries = q->size;
    w->idx = head;
    w->seen = 0;
    w->indirect = 0;
    w->more = 1;
    return DR_OK;
}

static int read_desc(struct dr_queue *q, struct walk *w, struct dr_desc *d)
{
    if (w->table) {
        memcpy(d, w->table + 16ull * w->idx, 16);
        return DR_OK;
    }
    return guest_read(q->mem, w->table_addr + 16ull * w->idx, d, 16) ? DR_BAD_ADDR : DR_OK;
}

static int enter_indirect(struct dr_queue *q, struct walk *w, const struct dr_desc *d)
{
    if (!(q->flags & DR_F_INDIRECT) || w->indirect || (d->flags & DR_DESC_NEXT)
        || d->len == 0 || d->len % 16 || d->len / 16 > q->size)
        return DR_BAD_INDIRECT;
    w->table = dr_translate(q->mem, d->addr, d->len);
    w->table_addr = d->addr;
    w->entries = d->len / 16;
    w->idx = 0;
    w->seen = 0;
    w->indirect = 1;
    return DR_OK;
}

/* Next buffer of the chain into *d: 1, 0 at the end, or -reason. A table
 * of n entries gives at most n descriptors, so a loop ends as bad_chain. */
static int walk_next(struct dr_queue *q, struct walk *w, struct dr_desc *d)
{
    for (;;) {
        if (!w->more)
            return 0;
        if (++w->seen > w->entries)
            return -DR_BAD_CHAIN;
        q->walked++;
        int r = read_desc(q, w, d);
        if (r)
            return -r;
        if (d->flags & DR_DESC_INDIRECT) {
            if ((r = enter_indirect(q, w, d)))
                return -r;
            continue;
        }
        if (d->flags & DR_DESC_NEXT) {
            if (d->next >= w->entries)
                return -DR_BAD_INDEX;
            w->idx = d->next;
        } else {
            w->more = 0;
        }
        return 1;
    }
}

static void count_reason(struct dr_stats *s, int reason)
{
    switch (reason) {
    case DR_BAD_INDEX: s->bad_index++; break;
    case DR_BAD_ADDR: s->bad_addr++; break;
    case DR_BAD_CHAIN: s->bad_chain++; break;
    case DR_BAD_INDIRECT: s->bad_indirect++; break;
    case DR_BAD_DIRECTION: s->bad_direction++; break;
    case DR_BAD_HEADER: s->bad_header++; break;
    case DR_TOO_LONG: s->too_long++; break;
    }
}

/* -- guest TX: chains -> packets ---------------------------------------- */

/* Copies one piece of a TX chain: the first hdr_len bytes fill the
 * header (the packed ring's TX uses it too). */
static int tx_piece(uint32_t hdr_len, struct packet *p, uint8_t *hdr, uint32_t *got,
                    const uint8_t *h, uint64_t n)
{
    if (*got < hdr_len) {
        uint64_t k = hdr_len - *got < n ? hdr_len - *got : n;
        memcpy(hdr + *got, h, k);
        *got += k; h += k; n -= k;
    }
    if (p->length + n > DR_MAX_PACKET)
        return DR_TOO_LONG;
    memcpy(p->buf + p->headroom + p->length, h, n);
    p->length += n;
    return DR_OK;
}

/* Copies one TX buffer, [a, a+len) of guest memory, into p across
 * adjacent regions; the chain's first hdr_len bytes fill hdr (*got of
 * them so far). The packed ring's TX uses it too. */
static int tx_buffer(struct dr_memory *m, uint32_t hdr_len, struct packet *p, uint8_t *hdr,
                     uint32_t *got, uint64_t a, uint64_t len)
{
    uint64_t room;
    while (len) {
        uint8_t *h = translate_part(m, a, len, &room);
        if (!h)
            return DR_BAD_ADDR;
        int r = tx_piece(hdr_len, p, hdr, got, h, room);
        if (r)
            return r;
        a += room; len -= room;
    }
    return DR_OK;
}

/* The header at the end of a TX chain: whole, and (no offload being
 * negotiated) asking for none, else it is a lie. */
static int tx_header_check(uint32_t hdr_len, const uint8_t *hdr, uint32_t got)
{
    if (got < hdr_len || hdr[1] != 0 || (hdr[0] & DR_HDR_NEEDS_CSUM))
        return DR_BAD_HEADER;
    return DR_OK;
}

/* Copies the chain at head into p (its payload, header skipped). */
static int tx_chain(struct dr_queue *q, uint16_t head, struct packet *p)
{
    struct walk w;
    struct dr_desc d;
    uint8_t hdr[12];
    uint32_t got = 0;
    int r = walk_begin(q, &w, head);
    if (r)
        return r;
    while ((r = walk_next(q, &w, &d)) > 0) {
        if (d.flags & DR_DESC_WRITE)
            return DR_BAD_DIRECTION;
        if ((r = tx_buffer(q->mem, q->hdr_len, p, hdr, &got, d.addr, d.len)))
            return r;
    }
    if (r < 0)
        return -r;
    return tx_header_check(q->hdr_len, hdr, got);
}

int dr_tx(struct dr_queue *q, struct link *out, int max)
{
    uint16_t idx = q->last_avail, old = q->used_idx;
    uint32_t n = take_pending(q, &idx);
    if (out && (int)n > link_nwritable(out))
        n = link_nwritable(out);
    if ((int)n > max)
        n = max < 0 ? 0 : max;
    int sent = 0;
    q->walked = 0;
    for (uint32_t i = 0; i < n && q->walked < DR_WALK_BUDGET; i++) {
        struct packet *p = packet_allocate();
        if (!p) {
            q->stats->no_memory++;
            break;
        }
        uint16_t head = avail_entry(q, q->last_avail++);
        int r = tx_chain(q, head, p);
        used_put(q, head, 0);
        if (r) {
            count_reason(q->stats, r);
            packet_free(p);
        } else if (!out) {
            q->stats->discarded++;
            packet_free(p);
        } else {
            q->stats->packets++;
            q->stats->bytes += p->length;
            link_transmit(out, p);
            sent++;
        }
    }
    used_publish(q, old);
    return sent;
}

/* -- guest RX: packets -> chains ---------------------------------------- */

struct dr_seg { uint8_t *p; uint64_t len; };

/* The buffers (chains) gathered for one RX packet. */
struct gather {
    struct dr_seg seg[DR_MAX_RX_SEGMENTS];
    uint16_t head[DR_MAX_RX_BUFFERS];
    uint16_t first[DR_MAX_RX_BUFFERS + 1];  /* first segment of each buffer */
    uint32_t nseg, nbuf;
    uint64_t room;
};

/* Appends the writable pieces of the chain at head; reason on failure. A
 * chain with more pieces than fit adds only those that fit. */
static int rx_chain(struct dr_queue *q, uint16_t head, struct gather *g)
{
    struct walk w;
    struct dr_desc d;
    uint32_t nseg = g->nseg;
    uint64_t room = 0;
    int r = walk_begin(q, &w, head);
    if (r)
        return r;
    while ((r = walk_next(q, &w, &d)) > 0) {
        if (!(d.flags & DR_DESC_WRITE))
            return DR_BAD_DIRECTION;
        uint64_t a = d.addr, len = d.len, part;
        while (len && nseg < DR_MAX_RX_SEGMENTS) {
            uint8_t *h = translate_part(q->mem, a, len, &part);
            if (!h)
                return DR_BAD_ADDR;
            g->seg[nseg].p = h;
            g->seg[nseg++].len = part;
            room += part; a += part; len -= part;
        }
    }
    if (r < 0)
        return -r;
    g->head[g->nbuf++] = head;
    g->first[g->nbuf] = nseg;
    g->nseg = nseg;
    g->room += room;
    return DR_OK;
}

/* Takes chains until need bytes fit (one chain without MRG_RXBUF). Bad
 * chains are returned at once; so that the gathered chains stay a run of
 * consecutive avail entries (and can be given back by rewinding), the good
 * ones taken before a bad one are returned with len 0 too.
 * Returns 1 when the packet fits, 0 when the guest ran out of chains, -1
 * when this call's walk budget ran out (chains given back either way). */
static int rx_gather(struct dr_queue *q, struct gather *g, uint64_t need, uint16_t idx)
{
    g->nseg = g->nbuf = 0;
    g->first[0] = 0;
    g->room = 0;
    uint16_t start = q->last_avail;
    while (g->room < need && g->nbuf < DR_MAX_RX_BUFFERS
           && g->nseg < DR_MAX_RX_SEGMENTS) {
        if (q->last_avail == idx || q->walked >= DR_WALK_BUDGET) {
            int r = q->last_avail == idx ? 0 : -1;
            q->last_avail = start;
            return r;
        }
        uint16_t head = avail_entry(q, q->last_avail++);
        int r = rx_chain(q, head, g);
        if (r) {
            count_reason(q->stats, r);
            for (uint32_t i = 0; i < g->nbuf; i++)
                used_put(q, g->head[i], 0);
            used_put(q, head, 0);
            g->nseg = g->nbuf = 0;
            g->room = 0;
            start = q->last_avail;
            continue;
        }
        if (!(q->flags & DR_F_MRG_RXBUF))
            break;
    }
    return 1;
}

/* Writes a virtio-net header (num_buffers from flags) and p's payload
 * into nbuf buffers of pieces seg (buffer b: pieces first[b] up to
 * first[b+1]); written[b]: the bytes buffer b got. The packed ring's RX
 * uses it too. */
static void rx_scatter(uint32_t hdr_len, uint32_t flags, const struct dr_seg *seg,
                       const uint16_t *first, uint32_t nbuf, struct packet *p,
                       uint32_t *written)
{
    uint8_t hdr[12] = {0};
    uint16_t num_buffers = flags & DR_F_MRG_RXBUF ? (uint16_t)nbuf : 1;
    memcpy(hdr + 10, &num_buffers, 2);
    const uint8_t *src[2] = { hdr, p->buf + p->headroom };
    uint64_t left[2] = { hdr_len, p->length };
    int part = 0;
    for (uint32_t b = 0; b < nbuf; b++) {
        uint64_t n = 0;
        for (uint32_t s = first[b]; s < first[b + 1]; s++) {
            uint8_t *dst = seg[s].p;
            uint64_t room = seg[s].len;
            while (room && part < 2) {
                uint64_t k = left[part] < room ? left[part] : room;
                memcpy(dst, src[part], k);
                dst += k; room -= k; n += k;
                src[part] += k; left[part] -= k;
                if (!left[part]) part++;
            }
        }
        written[b] = (uint32_t)n;
    }
}

/* Writes header and payload into the gathered pieces, returns the chains. */
static void rx_write(struct dr_queue *q, struct gather *g, struct packet *p)
{
    uint32_t written[DR_MAX_RX_BUFFERS];
    rx_scatter(q->hdr_len, q->flags, g->seg, g->first, g->nbuf, p, written);
    for (uint32_t b = 0; b < g->nbuf; b++)
        used_put(q, g->head[b], written[b]);
}

int dr_rx(struct dr_queue *q, struct link *in, int max)
{
    struct gather g;
    uint16_t idx = q->last_avail, old = q->used_idx;
    int sent = 0;
    take_pending(q, &idx);
    q->walked = 0;
    while (q->ready && !q->broken && sent < max && !link_empty(in)
           && q->walked < DR_WALK_BUDGET) {
        struct packet *p = link_front(in);
        uint64_t need = q->hdr_len + p->length;
        int r = rx_gather(q, &g, need, idx);
        if (r <= 0) {
            q->stats->no_buffers += r == 0;
            break;
        }
        link_receive(in);
        if (g.room < need) {
            /* Only whole chains are given back: rewind to keep them. */
            q->last_avail -= g.nbuf;
            q->stats->too_long++;
            packet_free(p);
            continue;
        }
        rx_write(q, &g, p);
        q->stats->packets++;
        q->stats->bytes += p->length;
        packet_free(p);
        sent++;
    }
    used_publish(q, old);
    return sent;
}
