/* Batches: the packets of one receive, handled many at a time so that each
 * operation on a whole batch is one C call. Packets are named by pointer
 * (pk), payload offsets in packet memory (offs, from base) and lengths
 * (lens, the caller's copy, written back by batch_writeback; was, when not
 * NULL, holds the lengths as received, and only packets whose length
 * differs from it are checked and written). Calls that
 * can fail return n (or a count) on success and -(k + 1) for the first bad
 * packet k, having changed nothing. */

int batch_receive(struct link *l, struct packet **pk, int max, uint64_t base,
                  int64_t *offs, int32_t *lens, int32_t *was);
void batch_refresh(struct packet **pk, int n, uint64_t base, int64_t *offs, int32_t *lens);
int batch_writeback(struct packet **pk, int n, const int32_t *lens, const int32_t *was);
int batch_transmit(struct link *l, struct packet **pk, int n, const int32_t *lens,
                   const int32_t *was);
void batch_free(struct packet **pk, int n);
int batch_free_mask(struct packet **pk, int n, const uint8_t *mask, int64_t *offs, int32_t *lens);
int batch_select(struct packet **pk, int n, const uint8_t *mask, int64_t *offs, int32_t *lens,
                 struct packet **out, int64_t *out_offs, int32_t *out_lens);
int batch_split(struct packet **pk, int n, const int64_t *index, struct link **links,
                int nlinks, const int32_t *lens, const int32_t *was);

/* Fixed-offset fields: reads give 0 for a packet shorter than the field,
 * writes skip it. */
void batch_get_u8(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                  int32_t off, uint8_t *out);
void batch_get_u16be(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, uint16_t *out);
void batch_get_u32be(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, uint32_t *out);
void batch_set_u8(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                  int32_t off, const uint8_t *values);
void batch_set_u16be(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, const uint16_t *values);
void batch_set_u32be(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, const uint32_t *values);
void batch_get_bytes(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, int32_t size, uint8_t *out);
void batch_set_bytes(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, int32_t size, const uint8_t *values, int32_t stride);

/* Checksums and hashes of IPv4 (and IPv6, for the hash) at offset l3. */
void batch_ipv4_checksum(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                         int32_t l3, uint8_t *done);
void batch_l4_checksum(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                       int32_t l3, uint8_t *done);
void batch_checksum_adjust(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                           int32_t at, const uint16_t *old, const uint16_t *new_,
                           uint8_t *done);
void batch_flow_hash(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t l3, uint32_t *out);

/* Every packet grows (prepend) or shrinks (strip) at the front. */
int batch_prepend(struct packet **pk, int n, const uint8_t *data, uint32_t size);
int batch_strip(struct packet **pk, int n, uint32_t size);

/* Copies of a batch's packets (where mask is true; all if NULL). */
int batch_clone(struct packet **pk, int n, const uint8_t *mask, uint64_t base,
                struct packet **out, int64_t *out_offs, int32_t *out_lens);

/* MAC tables (see mactable.py): 48-bit MACs to int32 values. */
void batch_mac_lookup(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                      int32_t at, int32_t min_len, const uint64_t *keys, const int32_t *values,
                      uint64_t mask, int32_t missing, int32_t short_, int use_group,
                      int32_t group, int32_t *out);
void batch_mac_learn(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t at, int32_t min_len, const uint8_t *mask, uint64_t *keys,
                     int32_t *values, uint64_t tmask, int32_t value, int64_t *count);
void mac_lookup(const uint64_t *macs, int n, const uint64_t *keys, const int32_t *values,
                uint64_t mask, int32_t missing, int32_t *out);
void mac_learn(const uint64_t *macs, int n, uint64_t *keys, int32_t *values, uint64_t tmask,
               int32_t value, int64_t *count);
