/* Device side of a split virtqueue (see device_ring.h): the guest's RX
 * queue, packets copied into the guest's buffers.
 * Compiled after device_ring.c: see C_PARTS in __init__.py. */

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
    if (nbuf == 1 && first[1] > first[0] && seg[first[0]].len >= hdr_len + p->length) {
        /* The common case, a packet whose first piece holds it all. */
        uint8_t *dst = seg[first[0]].p;
        if (hdr_len == 12)
            memcpy(dst, hdr, 12);
        else
            memcpy(dst, hdr, 10);
        memcpy(dst + hdr_len, p->buf + p->headroom, p->length);
        written[0] = hdr_len + p->length;
        return;
    }
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
    if (idx != q->last_avail && !link_empty(in))
        dr_prefetch_window(q, idx, 1);
    while (q->ready && !q->broken && sent < max && !link_empty(in)
           && q->walked < DR_WALK_BUDGET) {
        struct packet *p = link_front(in);
        uint64_t need = q->hdr_len + p->length;
        dr_prefetch(q, (uint16_t)(q->last_avail + DR_AHEAD), idx, 1);
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
