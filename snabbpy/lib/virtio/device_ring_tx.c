/* Device side of a split virtqueue (see device_ring.h): the guest's TX
 * queue, chains copied into packets.
 * Compiled after device_ring.c: see C_PARTS in __init__.py. */

/* -- guest TX: chains -> packets ---------------------------------------- */

/* Copies one piece of a TX chain: the first bytes fill the header. */
static int tx_piece(struct dr_queue *q, struct packet *p, uint8_t *hdr, uint32_t *got,
                    const uint8_t *h, uint64_t n)
{
    if (*got < q->hdr_len) {
        uint64_t k = q->hdr_len - *got < n ? q->hdr_len - *got : n;
        memcpy(hdr + *got, h, k);
        *got += k; h += k; n -= k;
    }
    if (p->length + n > DR_MAX_PACKET)
        return DR_TOO_LONG;
    memcpy(p->buf + p->headroom + p->length, h, n);
    p->length += n;
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
        uint64_t a = d.addr, len = d.len, room;
        while (len) {
            uint8_t *h = translate_part(q->mem, a, len, &room);
            if (!h)
                return DR_BAD_ADDR;
            if ((r = tx_piece(q, p, hdr, &got, h, room)))
                return r;
            a += room; len -= room;
        }
    }
    if (r < 0)
        return -r;
    /* No offload is negotiated, so a header asking for one is a lie. */
    if (got < q->hdr_len || hdr[1] != 0 || (hdr[0] & DR_HDR_NEEDS_CSUM))
        return DR_BAD_HEADER;
    return DR_OK;
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
