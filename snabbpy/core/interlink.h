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
    /* Sleeping ends (interlink_wait): one line for a consumer waiting for
     * records, one for a producer waiting for room. `*_wait` is set by the
     * end going to sleep (rx: 1; tx: the `read` index it wants reached)
     * and cleared by whichever end wakes it, which then bumps the futex
     * word `*_bell`. */
    uint64_t rx_wait;
    uint32_t rx_bell;
    uint32_t pad5a;
    uint64_t pad5[6];
    uint64_t tx_wait;
    uint32_t tx_bell;
    uint32_t pad6a;
    uint64_t pad6[6];
};

/* One process's end of a ring: where it is mapped, and the other side's
 * index as last seen (read again only when the ring looks full or empty). */
struct interlink {
    struct interlink_shared *s;
    uint8_t *data;
    uint64_t mask;
    uint64_t seen_read;
    uint64_t seen_write;
    uint32_t sends_unheard;  /* producer: sends since the consumer slept */
};

/* A producer wakes a consumer asleep waiting for records once a quarter of
 * the ring waits, or at once when a send has nothing to send, or after
 * this many sends with records (see sent() in interlink.c). */
#define INTERLINK_WAKE_SENDS 4

int interlink_init(uint8_t *base, uint64_t size);
int interlink_attach(struct interlink *h, uint8_t *base, uint64_t size);
int interlink_send(struct interlink *h, struct link *in, int max);
int interlink_receive(struct interlink *h, struct link *out, int max);
int interlink_empty(struct interlink *h);

/* What interlink_wait waits for on one ring: records to receive (the
 * consumer's end; its link is the one the records go onto, skipped when
 * full), or room to send into (the producer's end; its link is the one
 * waiting to be sent, skipped when empty). */
#define INTERLINK_WAIT_RECORDS 1
#define INTERLINK_WAIT_ROOM 2

/* Sleeps until one of the n rings has what[i] for this end, or for at most
 * timeout_ns: 1 when one already had it (no sleep), 2 when the other end
 * woke it, 0 when it timed out or a signal came, -1 when the kernel cannot
 * wait on several futexes (no futex_waitv before Linux 5.16): the caller
 * naps instead. */
int interlink_wait(struct interlink **rings, struct link **links, const int *what, int n,
                   int64_t timeout_ns);
int64_t interlink_discard(struct interlink *h);

/* The zero-copy variant, for measuring what a copy costs: records hold
 * packet pointers, valid only between processes that map the same packet
 * memory at the same addresses (forked after the packets were carved). */
int interlink_send_pointers(struct interlink *h, struct link *in, int max);
int interlink_receive_pointers(struct interlink *h, struct link *out, int max);
