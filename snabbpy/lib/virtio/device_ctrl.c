/* Device side of a control virtqueue: see device_ctrl.h. Compiled after
 * device_ring.c in the same extension, whose chain walk it uses. */

/* Walks the chain at head into *c; DR_OK or the reason it is bad. */
static int ctrl_chain(struct dr_queue *q, uint16_t head, struct dr_ctrl_cmd *c)
{
    struct walk w;
    struct dr_desc d;
    int r = walk_begin(q, &w, head);
    if (r)
        return r;
    c->len = 0;
    c->ack = NULL;
    while ((r = walk_next(q, &w, &d)) > 0) {
        if (d.flags & DR_DESC_WRITE) {
            if (!c->ack && d.len) {
                c->ack = dr_translate(q->mem, d.addr, 1);
                if (!c->ack)
                    return DR_BAD_ADDR;
            }
            continue;
        }
        if (c->ack)              /* readable after writable */
            return DR_BAD_DIRECTION;
        /* Only the start is read: bytes past DR_CTRL_MAX are never touched. */
        if (c->len < DR_CTRL_MAX) {
            uint64_t k = DR_CTRL_MAX - c->len < d.len ? DR_CTRL_MAX - c->len : d.len;
            if (guest_read(q->mem, d.addr, c->data + c->len, k))
                return DR_BAD_ADDR;
        }
        if ((uint64_t)c->len + d.len > 0xFFFFFFFFu)
            return DR_TOO_LONG;
        c->len += d.len;
    }
    if (r < 0)
        return -r;
    return c->ack ? DR_OK : DR_BAD_DIRECTION;
}

int dr_ctrl_take(struct dr_queue *q, struct dr_ctrl_cmd *c)
{
    uint16_t idx = q->last_avail;
    if (take_pending(q, &idx) == 0)
        return 0;
    uint16_t old = q->used_idx;
    c->head = avail_entry(q, q->last_avail++);
    q->walked = 0;
    int r = ctrl_chain(q, c->head, c);
    if (r == DR_OK)
        return 1;
    count_reason(q->stats, r);
    used_put(q, c->head, 0);
    used_publish(q, old);
    return -1;
}

void dr_ctrl_complete(struct dr_queue *q, struct dr_ctrl_cmd *c, uint8_t ack)
{
    uint16_t old = q->used_idx;
    *c->ack = ack;
    used_put(q, c->head, 1);
    used_publish(q, old);
}
