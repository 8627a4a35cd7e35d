/* What both ends of a packed ring compute alike: see packed_ring.h. */

uint16_t pk_advance(uint16_t pos, uint32_t n, uint32_t size)
{
    uint32_t slot = (pos & (PK_WRAP - 1)) + n;
    uint16_t wrap = pos & PK_WRAP;
    if (slot >= size) {
        slot -= size;
        wrap ^= PK_WRAP;
    }
    return (uint16_t)(slot | wrap);
}

/* The spec's vring_need_event, on slots made relative to the current lap:
 * a request from the previous lap, or an old position there, is moved one
 * ring size back (all in 16-bit arithmetic, as the spec's). */
int pk_need_event(uint16_t flags, uint16_t off_wrap, uint16_t old, uint16_t new_pos,
                  uint32_t size, int event_idx)
{
    if (old == new_pos)
        return 0;
    flags &= 3;
    if (flags == PK_EVENT_DISABLE)
        return 0;
    if (flags != PK_EVENT_DESC || !event_idx)
        return 1;  /* ENABLE, or a value we must not trust to keep quiet */
    uint16_t event = off_wrap & (PK_WRAP - 1);
    uint16_t n = new_pos & (PK_WRAP - 1), o = old & (PK_WRAP - 1);
    if ((old ^ new_pos) & PK_WRAP)
        o = (uint16_t)(o - size);
    if ((off_wrap ^ new_pos) & PK_WRAP)
        event = (uint16_t)(event - size);
    return (uint16_t)(n - event - 1) < (uint16_t)(n - o);
}
