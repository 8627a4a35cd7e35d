/* Device side of a split virtqueue (see device_ring.h): the guest's TX
 * queue, chains copied into packets.
 * Compiled after device_ring.c: see C_PARTS in __init__.py. */

/* -- guest TX: chains -> packets ---------------------------------------- */

/* Where a TX chain's frame goes: the packet, or (a GSO frame, once its
 * header says so) the scratch frame of device_ring_offload.c. */
struct tx_dst { uint8_t *buf; uint32_t len, cap; };

/* Copies one piece of a TX chain: the first hdr_len bytes fill the
 * header; once it is whole, a header asking for GSO (flags: the queue's
 * DR_F_*) switches dst to the scratch frame. The packed ring's TX uses it
 * too. */
static int tx_piece(uint32_t hdr_len, uint32_t flags, struct tx_dst *dst, uint8_t *hdr,
                    uint32_t *got, const uint8_t *h, uint64_t n)
{
    if (*got < hdr_len) {
        uint64_t k = hdr_len - *got < n ? hdr_len - *got : n;
        memcpy(hdr + *got, h, k);
        *got += k; h += k; n -= k;
        if (*got == hdr_len && tx_wants_gso(flags, hdr))
            dst->buf = dr_gso_frame, dst->cap = DR_MAX_GSO_FRAME;
    }
    if (dst->len + n > dst->cap)
        return DR_TOO_LONG;
    memcpy(dst->buf + dst->len, h, n);
    dst->len += n;
    return DR_OK;
}

/* Copies one TX buffer, [a, a+len) of guest memory, into dst across
 * adjacent regions; the chain's first hdr_len bytes fill hdr (*got of
 * them so far). The packed ring's TX uses it too. */
static int tx_buffer(struct dr_memory *m, uint32_t hdr_len, uint32_t flags, struct tx_dst *dst,
                     uint8_t *hdr, uint32_t *got, uint64_t a, uint64_t len)
{
    uint64_t room;
    while (len) {
        uint8_t *h = translate_part(m, a, len, &room);
        if (!h)
            return DR_BAD_ADDR;
        int r = tx_piece(hdr_len, flags, dst, hdr, got, h, room);
        if (r)
            return r;
        a += room; len -= room;
    }
    return DR_OK;
}

/* The header at the end of a TX chain: whole, and asking for no offload
 * that was not negotiated, else it is a lie. The packed ring's TX uses it
 * too. */
static int tx_header_check(uint32_t hdr_len, uint32_t flags, const uint8_t *hdr, uint32_t got)
{
    if (got < hdr_len || tx_header_refused(flags, hdr))
        return DR_BAD_HEADER;
    return DR_OK;
}

/* Copies the chain at head into dst (its frame; the header into hdr). */
static int tx_chain(struct dr_queue *q, uint16_t head, struct tx_dst *dst, uint8_t *hdr)
{
    struct walk w;
    struct dr_desc d;
    uint32_t got = 0;
    int r = walk_begin(q, &w, head);
    if (r)
        return r;
    while ((r = walk_next(q, &w, &d)) > 0) {
        if (d.flags & DR_DESC_WRITE)
            return DR_BAD_DIRECTION;
        if ((r = tx_buffer(q->mem, q->hdr_len, q->flags, dst, hdr, &got, d.addr, d.len)))
            return r;
    }
    if (r < 0)
        return -r;
    return tx_header_check(q->hdr_len, q->flags, hdr, got);
}

/* Delivers p, the packet a TX chain was copied into (r: the copy's reason,
 * DR_OK if good): its checksum finished if the header asks, then onto out;
 * else counted and freed. Returns 1 when it went onto out. The packed
 * ring's TX uses it too. */
static int tx_deliver(struct dr_stats *s, int r, const uint8_t *hdr, const struct tx_dst *dst,
                      struct packet *p, struct link *out)
{
    p->length = dst->buf == dr_gso_frame ? 0 : (uint16_t)dst->len;  /* a refused GSO chain */
    if (!r && (hdr[0] & DR_HDR_NEEDS_CSUM) && tx_finish_csum(s, hdr, dst->buf, dst->len)) {
        packet_free(p);
        return 0;
    }
    if (r)
        count_reason(s, r);
    else if (!out)
        s->discarded++;
    if (r || !out) {
        packet_free(p);
        return 0;
    }
    s->packets++;
    s->bytes += p->length;
    link_transmit(out, p);
    return 1;
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
    if (n)
        dr_prefetch_window(q, idx, 0);
    for (uint32_t i = 0; i < n && q->walked < DR_WALK_BUDGET; i++) {
        if (out && link_full(out))
            break;  /* GSO segments filled it */
        struct packet *p = packet_allocate();
        if (!p) {
            q->stats->no_memory++;
            break;
        }
        uint16_t head = avail_entry(q, q->last_avail);
        uint8_t hdr[12];
        dr_prefetch(q, (uint16_t)(q->last_avail + DR_AHEAD), idx, 0);
        struct tx_dst dst = { p->buf + p->headroom, 0, DR_MAX_PACKET };
        int r = tx_chain(q, head, &dst, hdr);
        if (!r && dst.buf == dr_gso_frame) {
            packet_free(p);
            int k = tx_segment(q->flags, q->stats, hdr, dst.buf, dst.len, out);
            if (k < 0)
                break;  /* left queued until the link has room */
            q->last_avail++;
            used_put(q, head, 0);
            sent += k;
            continue;
        }
        q->last_avail++;
        used_put(q, head, 0);
        sent += tx_deliver(q->stats, r, hdr, &dst, p, out);
    }
    used_publish(q, old);
    return sent;
}
