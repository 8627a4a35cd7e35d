/* A learning switch's step over a batch of Ethernet frames from one port
 * (Batch.switch_mac): one pass looks up the destinations, a second learns
 * the sources, so every lookup sees the table as it was before the batch.
 * Uses the MAC table code of batch.c. */

/* The 6-byte MAC at p as a number, in one unaligned 8-byte load (the frame
 * has at least 14 bytes, so from byte 0 or 6 the load stays inside it). */
static inline uint64_t load_mac8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v) >> 16;
}

/* Which entry of to frame k takes: v, the table's value of its
 * destination MAC (byte 0), for a known unicast one; nto - 1 for an
 * unknown or group destination; nto - 2 for a frame shorter than 14
 * bytes; -1 for a value outside 0 .. nto - 3. */
static inline int64_t switch_entry(const uint8_t *frame, int32_t len, const uint64_t *keys,
                                   const int32_t *values, uint64_t tmask, int32_t nto)
{
    if (len < 14)
        return nto - 2;
    if (frame[0] & 1)
        return nto - 1;
    int64_t h = mac_slot(keys, tmask, load_mac8(frame));
    if (h < 0 || !keys[h])
        return nto - 1;
    return (uint32_t)values[h] < (uint32_t)(nto - 2) ? values[h] : -1;
}

/* out[k] = to[j] for the entry j frame k takes (switch_entry), and
 * counts[j]++ (counts may be NULL); then the source MAC (byte 6) of every
 * frame of 14 bytes or more is learnt as port, in order. Returns n, or
 * -(k + 1), having learnt and counted nothing, for the first frame k whose
 * destination has a value outside 0 .. nto - 3 (nto >= 2). */
int batch_mac_switch(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     uint64_t *keys, int32_t *values, uint64_t tmask, int64_t *count,
                     int32_t port, const int64_t *to, int32_t nto, int64_t *out,
                     int64_t *counts)
{
    for (int k = 0; k < n; k++) {
        out[k] = switch_entry(base + offs[k], lens[k], keys, values, tmask, nto);
        if (out[k] < 0)
            return -(k + 1);
    }
    for (int k = 0; k < n; k++) {
        int64_t j = out[k];
        if ((uint64_t)j >= (uint64_t)nto)  /* only if out overlaps counts */
            j = nto - 1;
        out[k] = to[j];
        if (counts)
            counts[j]++;
        if (lens[k] >= 14)
            mac_learn_one(keys, values, tmask, load_mac8(base + offs[k] + 6), port, count);
    }
    return n;
}
