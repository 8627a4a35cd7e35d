/* A learning switch's step over a batch of Ethernet frames in one call
 * (see batch_switch.c; the table is a MacTable's, as in batch.h). */

int batch_mac_switch(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     uint64_t *keys, int32_t *values, uint64_t tmask, int64_t *count,
                     int32_t port, const int64_t *to, int32_t nto, int64_t *out,
                     int64_t *counts);
