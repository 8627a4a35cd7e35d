/* Device side of a split virtqueue (see device_ring.h): walking a
 * descriptor chain, direct or indirect, with every index and length checked.
 * Compiled after device_ring.c: see C_PARTS in __init__.py. */

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
