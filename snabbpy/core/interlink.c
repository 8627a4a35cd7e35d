/* Interlink rings. A record is a 8-byte header (payload length) and the
 * payload, padded to 16 bytes; a header of INTERLINK_SKIP says "the rest
 * of the ring up to its end is unused, go on at its start". The producer
 * publishes `write` with release order after the records are written, the
 * consumer `read` after it copied them out, so neither sees half a record. */

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

/* Publishes the producer's index, then counts what it sent. */
static int sent(struct interlink *h, uint64_t write, int n, uint64_t bytes)
{
    __atomic_store_n(&h->s->write, write, __ATOMIC_RELEASE);
    h->s->txpackets += n;
    h->s->txbytes += bytes;
    return n;
}

/* Publishes the consumer's index, then counts what it took. */
static int64_t taken(struct interlink *h, uint64_t read, int64_t n, uint64_t bytes)
{
    __atomic_store_n(&h->s->read, read, __ATOMIC_RELEASE);
    h->s->rxpackets += n;
    h->s->rxbytes += bytes;
    return n;
}

/* Copies up to max packets (max < 0: all) of `in` into the ring and frees
 * them; what does not fit stays on `in`. */
int interlink_send(struct interlink *h, struct link *in, int max)
{
    uint64_t write = h->s->write, bytes = 0;
    int n = 0;
    while ((max < 0 || n < max) && !link_empty(in)) {
        struct packet *p = link_front(in);
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
