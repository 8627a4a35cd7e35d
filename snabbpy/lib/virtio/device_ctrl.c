/* Device side of a control virtqueue: see device_ctrl.h. Compiled after
 * device_ring.c and packed_device.c in the same extension, whose chain
 * walks it uses: split and packed rings share ctrl_buffer, what a command
 * may look like, and differ only in how the chain is walked and returned. */

/* One buffer of a command chain (as the walk found it) into *c: the
 * readable bytes before the first writable one, whose first byte is the
 * ack. DR_OK or the reason the chain is bad. */
static int ctrl_buffer(struct dr_memory *m, struct dr_ctrl_cmd *c, uint64_t addr,
                       uint32_t len, int writable)
{
    if (writable) {
        if (!c->ack && len) {
            c->ack = dr_translate(m, addr, 1);
            if (!c->ack)
                return DR_BAD_ADDR;
        }
        return DR_OK;
    }
    if (c->ack)              /* readable after writable */
        return DR_BAD_DIRECTION;
    /* Only the start is read: bytes past DR_CTRL_MAX are never touched. */
    if (c->len < DR_CTRL_MAX) {
        uint64_t k = DR_CTRL_MAX - c->len < len ? DR_CTRL_MAX - c->len : len;
        if (guest_read(m, addr, c->data + c->len, k))
            return DR_BAD_ADDR;
    }
    if ((uint64_t)c->len + len > 0xFFFFFFFFu)
        return DR_TOO_LONG;
    c->len += len;
    return DR_OK;
}

static void ctrl_clear(struct dr_ctrl_cmd *c)
{
    c->len = 0;
    c->ack = NULL;
}

/* -- split rings --------------------------------------------------------- */

/* Walks the chain at head into *c; DR_OK or the reason it is bad. */
static int ctrl_chain(struct dr_queue *q, uint16_t head, struct dr_ctrl_cmd *c)
{
    struct walk w;
    struct dr_desc d;
    int r = walk_begin(q, &w, head);
    if (r)
        return r;
    ctrl_clear(c);
    while ((r = walk_next(q, &w, &d)) > 0)
        if ((r = ctrl_buffer(q->mem, c, d.addr, d.len, d.flags & DR_DESC_WRITE)))
            return r;
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
    c->slots = 1;
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

/* -- packed rings -------------------------------------------------------- */

/* Walks the chain at last_avail into *c (w: where it ended); DR_OK or the
 * reason it is bad. */
static int pctrl_chain(struct pd_queue *q, struct pwalk *w, struct dr_ctrl_cmd *c)
{
    struct pk_desc d;
    int r;
    ctrl_clear(c);
    pwalk_begin(q, w);
    while ((r = pwalk_next(q, w, &d)) > 0)
        if ((r = ctrl_buffer(q->mem, c, d.addr, d.len, d.flags & PK_DESC_F_WRITE)))
            return r;
    if (r < 0)
        return -r;
    return c->ack ? DR_OK : DR_BAD_DIRECTION;
}

int pd_ctrl_take(struct pd_queue *q, struct dr_ctrl_cmd *c)
{
    if (!q->ready || pd_avail_flags(q, q->last_avail) < 0)
        return 0;
    uint16_t old = q->used_idx;
    struct pwalk w;
    q->walked = 0;
    int r = pctrl_chain(q, &w, c);
    if (w.slots == 0)
        return 0;  /* the driver took its head back between two reads */
    if (r != DR_OK)
        pwalk_skip(q, &w);  /* the rest of the chain goes back with it */
    q->last_avail = w.pos;
    c->head = w.id;
    c->slots = (uint16_t)w.slots;
    if (r == DR_OK)
        return 1;
    count_reason(q->stats, r);
    pd_used_put(q, c->head, 0, c->slots, 0);
    pd_publish(q, old);
    return -1;
}

void pd_ctrl_complete(struct pd_queue *q, struct dr_ctrl_cmd *c, uint8_t ack)
{
    uint16_t old = q->used_idx;
    *c->ack = ack;
    pd_used_put(q, c->head, 1, c->slots, PK_DESC_F_WRITE);
    pd_publish(q, old);
}
