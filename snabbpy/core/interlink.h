/* Interlinks: single-producer single-consumer rings between processes, in
 * shared memory. A record is a packet's payload, copied in: the rings hold
 * bytes, never pointers into another process's packet memory. */

#define INTERLINK_MAGIC 0x4b4e494c59504253ULL  /* "SBPYLINK" */
#define INTERLINK_HEADER_SIZE 512
#define INTERLINK_MIN_CAPACITY 65536

/* The shared part (the first INTERLINK_HEADER_SIZE bytes of the file),
 * one cache line per writer: the producer writes `write` and the tx
 * counters, the consumer `read` and the rx counters. Indexes count bytes
 * ever written or read; a record's place is index & (capacity - 1). */
struct interlink_shared {
    uint64_t magic;
    uint64_t capacity;
    uint64_t pad0[6];
    uint64_t write;
    uint64_t pad1[7];
    uint64_t read;
    uint64_t pad2[7];
    uint64_t txpackets;
    uint64_t txbytes;
    uint64_t txdrop;
    uint64_t pad3[5];
    uint64_t rxpackets;
    uint64_t rxbytes;
    uint64_t pad4[6];
};

/* One process's end of a ring: where it is mapped, and the other side's
 * index as last seen (read again only when the ring looks full or empty). */
struct interlink {
    struct interlink_shared *s;
    uint8_t *data;
    uint64_t mask;
    uint64_t seen_read;
    uint64_t seen_write;
};

int interlink_init(uint8_t *base, uint64_t size);
int interlink_attach(struct interlink *h, uint8_t *base, uint64_t size);
int interlink_send(struct interlink *h, struct link *in, int max);
int interlink_receive(struct interlink *h, struct link *out, int max);
int interlink_empty(struct interlink *h);
int64_t interlink_discard(struct interlink *h);

/* The zero-copy variant, for measuring what a copy costs: records hold
 * packet pointers, valid only between processes that map the same packet
 * memory at the same addresses (forked after the packets were carved). */
int interlink_send_pointers(struct interlink *h, struct link *in, int max);
int interlink_receive_pointers(struct interlink *h, struct link *out, int max);
