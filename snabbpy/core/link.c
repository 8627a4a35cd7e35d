/* Links. Every packet transmitted is owned by the link until received; a
 * transmit to a full link frees the packet and counts txdrop. A packet on
 * a link is marked so (packet.state): freeing or sending it again before
 * it is received is refused and recorded (packet_misused). */

#define LINK_MASK (LINK_RING_SIZE - 1)

/* Packets moved onto or off any link: the engine watches it to tell idle
 * breaths (a breath that only freed packets made room upstream: not idle). */
static uint64_t progress;

static inline uint32_t next_index(uint32_t i) { return (i + 1) & LINK_MASK; }

int link_empty(struct link *l) { return l->read == l->write; }
int link_full(struct link *l) { return next_index(l->write) == l->read; }
int link_nreadable(struct link *l) { return (l->write - l->read) & LINK_MASK; }
int link_nwritable(struct link *l) { return LINK_MAX_PACKETS - link_nreadable(l); }

/* Returns NULL on an empty link (check empty() first in a loop). */
static inline struct packet *receive_inline(struct link *l)
{
    if (l->read == l->write)
        return NULL;
    struct packet *p = l->ring[l->read];
    l->read = next_index(l->read);
    l->stats->rxpackets++;
    l->stats->rxbytes += p->length;
    p->state = PACKET_OWNED;
    progress++;
    return p;
}

struct packet *link_receive(struct link *l) { return receive_inline(l); }

struct packet *link_front(struct link *l)
{
    return l->read == l->write ? NULL : l->ring[l->read];
}

struct packet *link_peek(struct link *l, int n)
{
    return n >= 0 && n < link_nreadable(l) ? l->ring[(l->read + n) & LINK_MASK] : NULL;
}

/* A packet that is free, or on a link already, is refused and recorded. */
static inline void transmit_inline(struct link *l, struct packet *p)
{
    if (__builtin_expect(p->state != PACKET_OWNED, 0)) {
        packet_misused(p, p->state == PACKET_FREE ? PACKET_FAULT_SENT_FREE
                                                  : PACKET_FAULT_SENT_TWICE);
        return;
    }
    if (next_index(l->write) == l->read) {
        l->stats->txdrop++;
        free_inline(p);
        return;
    }
    p->state = PACKET_ON_LINK;
    l->ring[l->write] = p;
    l->write = next_index(l->write);
    l->stats->txpackets++;
    l->stats->txbytes += p->length;
    progress++;
}

void link_transmit(struct link *l, struct packet *p) { transmit_inline(l, p); }

int link_receive_batch(struct link *l, struct packet **out, int max)
{
    int n = 0;
    uint64_t bytes = 0;
    while (n < max && l->read != l->write) {
        struct packet *p = l->ring[l->read];
        l->read = next_index(l->read);
        bytes += p->length;
        p->state = PACKET_OWNED;
        out[n++] = p;
    }
    l->stats->rxpackets += n;
    l->stats->rxbytes += bytes;
    progress += n;
    return n;
}

/* Transmits all n packets; those that do not fit are freed and counted. */
int link_transmit_batch(struct link *l, struct packet **in, int n)
{
    for (int i = 0; i < n; i++)
        transmit_inline(l, in[i]);
    return n;
}

/* Moves up to max packets (max < 0: as many as fit) without dropping any:
 * what does not fit stays on the input. */
int link_forward(struct link *in, struct link *out, int max)
{
    int n = link_nreadable(in), room = link_nwritable(out);
    if (n > room) n = room;
    if (max >= 0 && n > max) n = max;
    for (int i = 0; i < n; i++)
        transmit_inline(out, receive_inline(in));
    return n;
}

int link_free_all(struct link *l)
{
    int n = 0;
    uint64_t bytes = 0;
    while (l->read != l->write) {
        struct packet *p = l->ring[l->read];
        l->read = next_index(l->read);
        bytes += p->length;
        p->state = PACKET_OWNED;
        free_inline(p);
        n++;
    }
    l->stats->rxpackets += n;
    l->stats->rxbytes += bytes;
    progress += n;
    return n;
}

/* Transmits up to n copies of tmpl (fewer if the link fills or packet
 * memory runs out). */
int link_fill_clone(struct link *out, struct packet *tmpl, int n)
{
    int room = link_nwritable(out), i;
    if (n > room) n = room;
    for (i = 0; i < n; i++) {
        struct packet *p = packet_clone(tmpl);
        if (!p) break;
        transmit_inline(out, p);
    }
    return i;
}

/* Sends each input packet to every output: clones to all but the last,
 * the packet itself to the last. Takes only what every output has room
 * for, so nothing is dropped. */
int link_tee(struct link *in, struct link **outs, int nouts)
{
    int n = link_nreadable(in);
    for (int k = 0; k < nouts; k++) {
        int room = link_nwritable(outs[k]);
        if (room < n) n = room;
    }
    for (int i = 0; i < n; i++) {
        struct packet *p = link_front(in);
        for (int k = 0; k < nouts - 1; k++) {
            struct packet *c = packet_clone(p);
            if (!c) return i;
            transmit_inline(outs[k], c);
        }
        transmit_inline(outs[nouts - 1], receive_inline(in));
    }
    return n;
}

uint64_t link_progress(void) { return progress; }
