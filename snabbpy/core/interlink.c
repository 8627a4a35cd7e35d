/* Interlink rings. A record is a 8-byte header (payload length) and the
 * payload, padded to 16 bytes; a header of INTERLINK_SKIP says "the rest
 * of the ring up to its end is unused, go on at its start". The producer
 * publishes `write` with release order after the records are written, the
 * consumer `read` after it copied them out, so neither sees half a record. */

#include <limits.h>
#include <time.h>
#include <linux/futex.h>

_Static_assert(sizeof(struct interlink_shared) <= INTERLINK_HEADER_SIZE,
               "the shared part of an interlink outgrew its header");

#define INTERLINK_SKIP 0xffffffffu
#define INTERLINK_RECORD(n) (((uint64_t)(n) + 8 + 15) & ~(uint64_t)15)

int interlink_init(uint8_t *base, uint64_t size)
{
    uint64_t capacity = size - INTERLINK_HEADER_SIZE;
    if (size <= INTERLINK_HEADER_SIZE || capacity < INTERLINK_MIN_CAPACITY
        || (capacity & (capacity - 1)))
        return -1;
    memset(base, 0, INTERLINK_HEADER_SIZE);
    struct interlink_shared *s = (struct interlink_shared *)base;
    s->capacity = capacity;
    __atomic_store_n(&s->magic, INTERLINK_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

int interlink_attach(struct interlink *h, uint8_t *base, uint64_t size)
{
    struct interlink_shared *s = (struct interlink_shared *)base;
    if (size <= INTERLINK_HEADER_SIZE
        || __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != INTERLINK_MAGIC
        || s->capacity != size - INTERLINK_HEADER_SIZE)
        return -1;
    h->s = s;
    h->data = base + INTERLINK_HEADER_SIZE;
    h->mask = s->capacity - 1;
    h->seen_read = __atomic_load_n(&s->read, __ATOMIC_ACQUIRE);
    h->seen_write = __atomic_load_n(&s->write, __ATOMIC_ACQUIRE);
    h->sends_unheard = 0;
    return 0;
}

/* Room for `need` contiguous bytes at `*write` (skipping to the ring's
 * start when they would cross its end): 1 and *write moved past any skip
 * record, or 0 when the ring is too full. */
static int reserve(struct interlink *h, uint64_t *write, uint64_t need)
{
    uint64_t capacity = h->mask + 1, pos = *write & h->mask;
    uint64_t skip = pos + need > capacity ? capacity - pos : 0;
    if (*write + skip + need - h->seen_read > capacity) {
        h->seen_read = __atomic_load_n(&h->s->read, __ATOMIC_ACQUIRE);
        if (*write + skip + need - h->seen_read > capacity)
            return 0;
    }
    if (skip) {
        *(uint32_t *)(h->data + pos) = INTERLINK_SKIP;
        *write += skip;
    }
    return 1;
}

/* Wakes the other end sleeping on `bell` (interlink_wait). */
static void ring_bell(uint32_t *bell)
{
    __atomic_fetch_add(bell, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Publishes the producer's index, counts what it sent, and wakes the
 * consumer if it sleeps waiting for records, once a wake is worth it:
 * when the records waiting fill a quarter of the ring, when this end's
 * stream pauses (a send with nothing to send: its engine is about to go
 * idle, or its input ran dry) or after INTERLINK_WAKE_SENDS sends since the
 * consumer went to sleep. A consumer woken for every send of a busy
 * producer (one per breath) costs a context switch each time and, on a
 * machine with fewer cores than processes, preempts a busy one; so it
 * sleeps through a few and then takes a batch. Latency stays bounded by a
 * few of the producer's breaths, and by the consumer's own timeout when the
 * producer stops sending altogether. The fence orders the index before the
 * look at rx_wait, as interlink_wait orders them the other way: either the
 * consumer sees the records or this end sees it waiting. */
static int sent(struct interlink *h, uint64_t write, int n, uint64_t bytes)
{
    struct interlink_shared *s = h->s;
    __atomic_store_n(&s->write, write, __ATOMIC_RELEASE);
    s->txpackets += n;
    s->txbytes += bytes;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&s->rx_wait, __ATOMIC_RELAXED)) {
        h->sends_unheard = 0;
        return n;
    }
    uint64_t waiting = write - __atomic_load_n(&s->read, __ATOMIC_ACQUIRE);
    if (waiting && (n == 0 || waiting >= (h->mask + 1) / 4
                    || ++h->sends_unheard >= INTERLINK_WAKE_SENDS)
        && __atomic_exchange_n(&s->rx_wait, 0, __ATOMIC_ACQ_REL)) {
        h->sends_unheard = 0;
        ring_bell(&s->rx_bell);
    }
    return n;
}

/* Publishes the consumer's index, counts what it took, and wakes the
 * producer if it sleeps until `read` reaches the index it asked for. */
static int64_t taken(struct interlink *h, uint64_t read, int64_t n, uint64_t bytes)
{
    struct interlink_shared *s = h->s;
    __atomic_store_n(&s->read, read, __ATOMIC_RELEASE);
    s->rxpackets += n;
    s->rxbytes += bytes;
    if (n) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint64_t want = __atomic_load_n(&s->tx_wait, __ATOMIC_RELAXED);
        if (want && read >= want
            && __atomic_compare_exchange_n(&s->tx_wait, &want, 0, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED))
            ring_bell(&s->tx_bell);
    }
    return n;
}

/* Packets waiting on a link are cold by the time they are sent (a full
 * ring parks them there): fetch the header of the packet AHEAD places on
 * and the payload of the one half as far, so the misses overlap. Records
 * written by the other end's core are fetched AHEAD_BYTES early too. */
#define INTERLINK_AHEAD 8
#define INTERLINK_AHEAD_BYTES 512

static inline void fetch_ahead(struct link *in)
{
    int waiting = link_nreadable(in);
    if (waiting > INTERLINK_AHEAD)
        __builtin_prefetch(in->ring[(in->read + INTERLINK_AHEAD) & (LINK_RING_SIZE - 1)]);
    if (waiting > INTERLINK_AHEAD / 2)
        __builtin_prefetch(packet_data(in->ring[(in->read + INTERLINK_AHEAD / 2)
                                                & (LINK_RING_SIZE - 1)]));
}

/* Copies up to max packets (max < 0: all) of `in` into the ring and frees
 * them; what does not fit stays on `in`. */
int interlink_send(struct interlink *h, struct link *in, int max)
{
    uint64_t write = h->s->write, bytes = 0;
    int n = 0;
    while ((max < 0 || n < max) && !link_empty(in)) {
        struct packet *p = link_front(in);
        fetch_ahead(in);
        if (!reserve(h, &write, INTERLINK_RECORD(p->length)))
            break;
        uint8_t *at = h->data + (write & h->mask);
        *(uint64_t *)at = p->length;
        memcpy(at + 8, p->buf + p->headroom, p->length);
        write += INTERLINK_RECORD(p->length);
        bytes += p->length;
        packet_free(link_receive(in));
        n++;
    }
    return sent(h, write, n, bytes);
}

/* The next record's header at `*read`, past any skip record; 0 when the
 * ring is empty. */
static uint8_t *next_record(struct interlink *h, uint64_t *read)
{
    for (;;) {
        if (*read == h->seen_write) {
            h->seen_write = __atomic_load_n(&h->s->write, __ATOMIC_ACQUIRE);
            if (*read == h->seen_write)
                return 0;
        }
        uint8_t *at = h->data + (*read & h->mask);
        if (*(uint32_t *)at != INTERLINK_SKIP)
            return at;
        *read += h->mask + 1 - (*read & h->mask);
    }
}

/* Moves up to max records (max < 0: as many as fit) into fresh packets
 * on `out`; stops when `out` is full or packet memory runs out. -1 when a
 * record is impossible (a corrupt ring): nothing more is read from it. */
int interlink_receive(struct interlink *h, struct link *out, int max)
{
    uint64_t read = h->s->read, bytes = 0;
    int n = 0, bad = 0;
    uint8_t *at;
    while ((max < 0 || n < max) && !link_full(out) && (at = next_record(h, &read))) {
        uint64_t length = *(uint64_t *)at;
        __builtin_prefetch(h->data + ((read + INTERLINK_AHEAD_BYTES) & h->mask));
        if (length > PACKET_PAYLOAD_SIZE || (read & h->mask) + INTERLINK_RECORD(length) > h->mask + 1) {
            bad = 1;
            break;
        }
        struct packet *p = packet_allocate();
        if (!p)
            break;
        memcpy(p->buf + p->headroom, at + 8, length);
        p->length = length;
        link_transmit(out, p);
        read += INTERLINK_RECORD(length);
        bytes += length;
        n++;
    }
    taken(h, read, n, bytes);
    return bad ? -1 : n;
}

int interlink_empty(struct interlink *h)
{
    return __atomic_load_n(&h->s->read, __ATOMIC_ACQUIRE)
        == __atomic_load_n(&h->s->write, __ATOMIC_ACQUIRE);
}

/* Arms ring i for interlink_wait: takes its bell's value into *w, then
 * says what this end waits for, then looks whether it is there already
 * (1: no need to sleep). In that order, a wake that comes after the look
 * changes the bell after *w was taken, so the futex wait returns at once.
 * A producer waits until half the ring is free, not for the first free
 * byte: it then has a batch to send, the consumer still half a ring to
 * work on, and neither end wakes the other for every record. */
static int arm(struct interlink *h, struct link *l, int what, struct futex_waitv *w)
{
    struct interlink_shared *s = h->s;
    uint32_t *bell = what == INTERLINK_WAIT_RECORDS ? &s->rx_bell : &s->tx_bell;
    w->val = __atomic_load_n(bell, __ATOMIC_ACQUIRE);
    w->uaddr = (uintptr_t)bell;
    w->flags = FUTEX_32;
    w->__reserved = 0;
    if (what == INTERLINK_WAIT_RECORDS) {
        __atomic_store_n(&s->rx_wait, 1, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return __atomic_load_n(&s->write, __ATOMIC_ACQUIRE) != s->read;
    }
    uint64_t write = s->write, half = (h->mask + 1) / 2;
    if (write <= half)
        return 1;  /* never more than half full */
    __atomic_store_n(&s->tx_wait, write - half, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&s->read, __ATOMIC_ACQUIRE) >= write - half;
}

static void disarm(struct interlink *h, int what)
{
    if (what == INTERLINK_WAIT_RECORDS)
        __atomic_store_n(&h->s->rx_wait, 0, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&h->s->tx_wait, 0, __ATOMIC_RELEASE);
}

int interlink_wait(struct interlink **rings, struct link **links, const int *what, int n,
                   int64_t timeout_ns)
{
    struct futex_waitv waiters[FUTEX_WAITV_MAX];
    int armed[FUTEX_WAITV_MAX], narmed = 0, ready = 0;
    for (int i = 0; i < n && narmed < FUTEX_WAITV_MAX && !ready; i++) {
        struct link *l = links[i];
        if (!l || (what[i] == INTERLINK_WAIT_RECORDS ? link_full(l) : link_empty(l)))
            continue;  /* nowhere to put records, or nothing to send */
        armed[narmed] = i;
        ready = arm(rings[i], l, what[i], &waiters[narmed]);
        narmed++;
    }
    int result = ready;
    if (!ready) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ns / 1000000000;
        deadline.tv_nsec += timeout_ns % 1000000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        if (narmed == 0)
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
        else if (syscall(SYS_futex_waitv, waiters, narmed, 0, &deadline, CLOCK_MONOTONIC) >= 0
                 || errno == EAGAIN)
            result = 2;  /* woken, or a bell rang between arming and sleeping */
        else if (errno == ENOSYS)
            result = -1;
    }
    for (int k = 0; k < narmed; k++)
        disarm(rings[armed[k]], what[armed[k]]);
    return result;
}

/* The consumer gives up every record left (they count as received, as a
 * link's drain does); returns how many, or -1 on a corrupt ring. */
int64_t interlink_discard(struct interlink *h)
{
    uint64_t read = h->s->read, bytes = 0;
    int64_t n = 0;
    uint8_t *at;
    while ((at = next_record(h, &read))) {
        uint64_t length = *(uint64_t *)at;
        if (length > PACKET_PAYLOAD_SIZE)
            return -1;
        read += INTERLINK_RECORD(length);
        bytes += length;
        n++;
    }
    return taken(h, read, n, bytes);
}

int interlink_send_pointers(struct interlink *h, struct link *in, int max)
{
    uint64_t write = h->s->write, bytes = 0;
    int n = 0;
    while ((max < 0 || n < max) && !link_empty(in) && reserve(h, &write, 16)) {
        struct packet *p = link_receive(in);
        uint8_t *at = h->data + (write & h->mask);
        *(uint64_t *)at = 0;
        *(struct packet **)(at + 8) = p;
        write += 16;
        bytes += p->length;
        n++;
    }
    return sent(h, write, n, bytes);
}

int interlink_receive_pointers(struct interlink *h, struct link *out, int max)
{
    uint64_t read = h->s->read, bytes = 0;
    int n = 0;
    uint8_t *at;
    while ((max < 0 || n < max) && !link_full(out) && (at = next_record(h, &read))) {
        struct packet *p = *(struct packet **)(at + 8);
        link_transmit(out, p);
        read += 16;
        bytes += p->length;
        n++;
    }
    return taken(h, read, n, bytes);
}
