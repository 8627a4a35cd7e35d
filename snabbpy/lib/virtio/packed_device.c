/* Device side of a packed virtqueue over untrusted guest memory: see
 * packed_device.h. It follows device_ring*.c in the same translation unit
 * and uses their memory functions (translate_part, guest_read), reasons
 * and counters (enum dr_reason, count_reason), the TX copy and offloads of
 * device_ring_tx.c and device_ring_offload.c (tx_buffer, tx_header_check,
 * tx_segment, tx_deliver) and the scatter of a packet into guest
 * buffers of device_ring_rx.c (rx_scatter) rather than copies of them. */

/* -- ring access ------------------------------------------------------- */

static inline uint8_t *pd_slot(struct pd_queue *q, uint16_t pos)
{
    return q->desc + 16u * (pos & (PK_WRAP - 1));
}

/* The flags of the descriptor at pos if the driver has made it available
 * in pos's lap (AVAIL == wrap, USED != wrap), else -1. Read with acquire:
 * the rest of the descriptor is read after its flags. */
static inline int pd_avail_flags(struct pd_queue *q, uint16_t pos)
{
    uint16_t f = __atomic_load_n((uint16_t *)(pd_slot(q, pos) + 14), __ATOMIC_ACQUIRE);
    int wrap = !!(pos & PK_WRAP);
    if (!!(f & PK_DESC_F_AVAIL) != wrap || !!(f & PK_DESC_F_USED) == wrap)
        return -1;
    return f;
}

/* The slot at pos's buffer into the cache, if the driver has made the
 * slot available: see prefetch_buffer. */
static inline void pd_prefetch(struct pd_queue *q, uint16_t pos, int write)
{
    if (pd_avail_flags(q, pos) < 0)
        return;
    prefetch_buffer(q->mem, pd_slot(q, pos), write);
}

/* Prefetches the buffers of the DR_AHEAD slots from pos (a call's start). */
static void pd_prefetch_window(struct pd_queue *q, uint16_t pos, int write)
{
    if (q->size <= DR_AHEAD)
        return;
    for (uint32_t i = 0; i < DR_AHEAD; i++)
        pd_prefetch(q, pk_advance(pos, i, q->size), write);
}

/* As the walk takes the chain at pos: the buffer DR_AHEAD slots on. */
static inline void pd_prefetch_ahead(struct pd_queue *q, uint16_t pos, int write)
{
    if (q->size > DR_AHEAD)
        pd_prefetch(q, pk_advance(pos, DR_AHEAD, q->size), write);
}

/* Writes the shadowed used descriptors into the ring, in order, the
 * flags of the first one last: the driver sees them all at once. */
static void pd_flush(struct pd_queue *q)
{
    if (!q->nshadow)
        return;
    uint16_t first_pos = q->flush_pos, first_flags = 0;
    for (uint32_t i = 0; i < q->nshadow; i++) {
        struct pd_shadow *e = &q->shadow[i];
        uint8_t *d = pd_slot(q, q->flush_pos);
        uint16_t flags = (q->flush_pos & PK_WRAP ? PK_DESC_F_AVAIL | PK_DESC_F_USED : 0)
                         | e->write;
        memcpy(d + 8, &e->len, 4);
        memcpy(d + 12, &e->id, 2);
        if (i == 0)
            first_flags = flags;
        else
            __atomic_store_n((uint16_t *)(d + 14), flags, __ATOMIC_RELEASE);
        q->flush_pos = pk_advance(q->flush_pos, e->slots, q->size);
    }
    __atomic_store_n((uint16_t *)(pd_slot(q, first_pos) + 14), first_flags, __ATOMIC_RELEASE);
    q->nshadow = q->batched = 0;
}

/* Hands a chain of slots ring slots back as one used descriptor, kept in
 * the shadow until the next flush (forced only by a full shadow, which a
 * packet of DR_MAX_RX_BUFFERS after a batch cannot fill). */
static void pd_used_put(struct pd_queue *q, uint16_t id, uint32_t len, uint32_t slots,
                        uint16_t write)
{
    if (q->nshadow == PD_SHADOW)
        pd_flush(q);
    struct pd_shadow *e = &q->shadow[q->nshadow++];
    e->len = len;
    e->id = id;
    e->slots = (uint16_t)slots;
    e->write = write;
    q->used_idx = pk_advance(q->used_idx, slots, q->size);
    q->batched++;
    q->stats->chains++;
}

/* Hands back a chain pd_tx took (len 0). In order, it joins the shadow's
 * last entry, a TX batch: that entry keeps its slot (the batch's first)
 * and takes the chain's id and slots, so the batch is one used
 * descriptor. An entry never spans more than the ring: a driver that
 * offers slots of the next lap before it saw them used gets a second
 * descriptor, not a skip past the ring. */
static inline void pd_used_put_tx(struct pd_queue *q, uint16_t id, uint32_t slots)
{
    struct pd_shadow *e = q->nshadow ? &q->shadow[q->nshadow - 1] : NULL;
    if (!(q->flags & PD_F_IN_ORDER) || !e || e->slots + slots > q->size) {
        pd_used_put(q, id, 0, slots, 0);
        return;
    }
    e->id = id;
    e->slots = (uint16_t)(e->slots + slots);
    q->used_idx = pk_advance(q->used_idx, slots, q->size);
    q->batched++;
    q->stats->chains++;
}

/* Between packets: a full batch is written out. */
static inline void pd_batch_done(struct pd_queue *q)
{
    if (q->batched >= PD_BATCH)
        pd_flush(q);
}

/* After a call that moved the used position from old: writes what is
 * left, then decides whether the driver wants an interrupt (full fence
 * between: see used_publish in device_ring.c). */
static void pd_publish(struct pd_queue *q, uint16_t old)
{
    q->interrupt = 0;
    pd_flush(q);
    if (q->used_idx == old)
        return;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    struct pk_event e;
    memcpy(&e, q->driver_event, 4);
    q->interrupt = (uint8_t)pk_need_event(e.flags, e.off_wrap, old, q->used_idx, q->size,
                                          !!(q->flags & DR_F_EVENT_IDX));
    q->stats->interrupts += q->interrupt;
}

uint32_t pd_queue_pending(struct pd_queue *q)
{
    uint32_t n = 0;
    uint16_t pos = q->last_avail;
    while (q->ready && n < q->size && pd_avail_flags(q, pos) >= 0) {
        n++;
        pos = pk_advance(pos, 1, q->size);
    }
    return n;
}

/* -- queue life -------------------------------------------------------- */

int pd_queue_start(struct pd_queue *q, struct dr_memory *m, struct dr_stats *s,
                   uint32_t size, uint64_t desc_user, uint64_t driver_user,
                   uint64_t device_user, uint32_t base, uint32_t flags)
{
    memset(q, 0, sizeof *q);
    q->mem = m;
    q->stats = s;
    if (size == 0 || size > PK_MAX_QUEUE_SIZE)
        return DR_E_SIZE;
    q->desc = dr_translate_user(m, desc_user, 16ull * size);
    if (!q->desc || desc_user % 16)
        return DR_E_DESC;
    q->driver_event = dr_translate_user(m, driver_user, 4);
    if (!q->driver_event || driver_user % 4)
        return DR_E_AVAIL;
    q->device_event = dr_translate_user(m, device_user, 4);
    if (!q->device_event || device_user % 4)
        return DR_E_USED;
    if ((base & (PK_WRAP - 1)) >= size)
        return PD_E_BASE;
    q->size = size;
    q->flags = flags;
    q->hdr_len = flags & (DR_F_MRG_RXBUF | DR_F_VERSION_1) ? 12 : 10;
    q->last_avail = q->used_idx = q->flush_pos = (uint16_t)base;
    struct pk_event quiet = { 0, PK_EVENT_DISABLE };  /* we poll: no kicks */
    memcpy(q->device_event, &quiet, 4);
    q->ready = 1;
    return 0;
}

uint32_t pd_queue_stop(struct pd_queue *q)
{
    q->ready = 0;
    q->interrupt = 0;
    return q->last_avail | (uint32_t)q->used_idx << 16;
}

/* -- chain walking ----------------------------------------------------- */

/* Where a walk is: at ring slot pos (slots taken so far), or inside an
 * indirect table (read through table when contiguous, else by address). */
struct pwalk {
    uint16_t pos;
    uint16_t id;          /* buffer id: of the last ring slot read */
    uint32_t slots;
    uint8_t more;         /* the last ring slot had NEXT */
    uint8_t in_table;
    uint8_t *table;
    uint64_t table_addr;
    uint32_t entries, tpos;
};

static void pwalk_begin(struct pd_queue *q, struct pwalk *w)
{
    memset(w, 0, sizeof *w);
    w->pos = q->last_avail;
    w->more = 1;
}

/* Reads the ring slot at w->pos into *d (flags as checked available). */
static int pwalk_slot(struct pd_queue *q, struct pwalk *w, struct pk_desc *d)
{
    if (w->slots >= q->size)
        return DR_BAD_CHAIN;
    int f = pd_avail_flags(q, w->pos);
    if (f < 0)
        return DR_BAD_CHAIN;  /* NEXT into a slot the driver has not given */
    memcpy(d, pd_slot(q, w->pos), 14);  /* addr, len, id: flags are f */
    d->flags = (uint16_t)f;
    w->id = d->id;
    w->slots++;
    w->pos = pk_advance(w->pos, 1, q->size);
    w->more = !!(f & PK_DESC_F_NEXT);
    q->walked++;
    return DR_OK;
}

static int pwalk_enter_table(struct pd_queue *q, struct pwalk *w, const struct pk_desc *d)
{
    if (!(q->flags & DR_F_INDIRECT) || w->more || d->len == 0 || d->len % 16
        || d->len / 16 > q->size)
        return DR_BAD_INDIRECT;
    w->table = dr_translate(q->mem, d->addr, d->len);
    w->table_addr = d->addr;
    w->entries = d->len / 16;
    w->tpos = 0;
    w->in_table = 1;
    return DR_OK;
}

static int pwalk_table_entry(struct pd_queue *q, struct pwalk *w, struct pk_desc *d)
{
    uint64_t off = 16ull * w->tpos++;
    q->walked++;
    if (w->table)
        memcpy(d, w->table + off, 16);
    else if (guest_read(q->mem, w->table_addr + off, d, 16))
        return DR_BAD_ADDR;
    return d->flags & PK_DESC_F_INDIRECT ? DR_BAD_INDIRECT : DR_OK;
}

/* The next entry of the indirect table being walked: 1, 0 past its end
 * (which ends the chain), or -reason. */
static int pwalk_table_next(struct pd_queue *q, struct pwalk *w, struct pk_desc *d)
{
    if (w->tpos < w->entries) {
        int r = pwalk_table_entry(q, w, d);
        return r ? -r : 1;
    }
    w->in_table = 0;
    return 0;
}

/* Next buffer of the chain into *d: 1, 0 at the end, or -reason. Inline
 * for the ring slots, the common chain of one or two of them; an indirect
 * table is walked out of line. */
static inline int pwalk_next(struct pd_queue *q, struct pwalk *w, struct pk_desc *d)
{
    if (!w->in_table) {
        if (!w->more)
            return 0;
        int r = pwalk_slot(q, w, d);
        if (r)
            return -r;
        if (!(d->flags & PK_DESC_F_INDIRECT))
            return 1;
        if ((r = pwalk_enter_table(q, w, d)))
            return -r;
    }
    return pwalk_table_next(q, w, d);
}

/* After a bad buffer: takes the chain's remaining ring slots (flags and
 * id only) so that the next chain starts where the driver put it. */
static void pwalk_skip(struct pd_queue *q, struct pwalk *w)
{
    struct pk_desc d;
    w->in_table = 0;
    while (w->more && pwalk_slot(q, w, &d) == DR_OK)
        ;
}

/* -- guest TX: chains -> packets ---------------------------------------- */

/* Copies the chain being walked into dst (its frame; the header into
 * hdr), as tx_chain in device_ring_tx.c. */
static int ptx_buffers(struct pd_queue *q, struct pwalk *w, struct tx_dst *dst, uint8_t *hdr)
{
    struct pk_desc d;
    uint32_t got = 0;
    int r;
    while ((r = pwalk_next(q, w, &d)) > 0) {
        /* WRITE inside an indirect table is ignored on TX: DPDK's virtio
         * PMD leaves it set on the header entry of each of its tables
         * (vring_desc_init_indirect_packed). Reading such a buffer harms
         * no one; in the ring itself it is still bad_direction. */
        if ((d.flags & PK_DESC_F_WRITE) && !w->in_table)
            return DR_BAD_DIRECTION;
        if ((r = tx_buffer(q->mem, q->hdr_len, q->flags, dst, hdr, &got, d.addr, d.len)))
            return r;
    }
    if (r < 0)
        return -r;
    return tx_header_check(q->hdr_len, q->flags, hdr, got);
}

/* Takes the chains available now, up to max packets in all (*sent so
 * far); returns how many chains it took. Offloads as in dr_tx: a GSO
 * frame is cut into segments (a chain whose segments do not fit the link
 * now is left in the ring for the next call), a NEEDS_CSUM frame is
 * finished in its packet. */
static uint32_t ptx_round(struct pd_queue *q, struct link *out, int max, int *sent)
{
    uint32_t taken = 0;
    while (q->ready && *sent < max && q->walked < DR_WALK_BUDGET
           && pd_avail_flags(q, q->last_avail) >= 0) {
        if (out && link_full(out))
            break;  /* GSO segments filled it */
        struct packet *p = packet_allocate();
        if (!p) {
            q->stats->no_memory++;
            break;
        }
        struct pwalk w;
        uint16_t start = q->last_avail;
        uint8_t hdr[12];
        pd_prefetch_ahead(q, start, 0);
        struct tx_dst dst = { p->buf + p->headroom, 0, DR_MAX_PACKET };
        pwalk_begin(q, &w);
        int r = ptx_buffers(q, &w, &dst, hdr);
        if (w.slots == 0) {  /* the driver took its head back: nothing taken */
            packet_free(p);
            break;
        }
        int gso = !r && dst.buf == dr_gso_frame, k = 0;
        if (gso) {
            packet_free(p);
            k = tx_segment(q->flags, q->stats, hdr, dst.buf, dst.len, out);
            if (k < 0) {
                q->last_avail = start;  /* left in the ring until the link has room */
                break;
            }
        } else if (r) {
            pwalk_skip(q, &w);
        }
        q->last_avail = w.pos;
        pd_used_put_tx(q, w.id, w.slots);
        taken++;
        *sent += gso ? k : tx_deliver(q->stats, r, hdr, &dst, p, out);
        pd_batch_done(q);
    }
    return taken;
}

/* A driver that reclaims only the slots it needs next (DPDK's virtio PMD
 * on packed rings) keeps its ring full, so it can go on only as fast as
 * used descriptors appear: while chains keep coming, the call hands back
 * what it took and looks again, up to PD_ROUNDS times. */
int pd_tx(struct pd_queue *q, struct link *out, int max)
{
    uint16_t old = q->used_idx;
    int sent = 0;
    if (out && max > link_nwritable(out))
        max = link_nwritable(out);
    q->walked = 0;
    pd_prefetch_window(q, q->last_avail, 0);
    for (int round = 0; round < PD_ROUNDS; round++) {
        if (!ptx_round(q, out, max, &sent))
            break;
        pd_flush(q);
    }
    pd_publish(q, old);
    return sent;
}

/* -- guest RX: packets -> chains ---------------------------------------- */

/* The chains gathered for one RX packet: their ids, ring slots and
 * contiguous writable pieces. */
struct pgather {
    struct dr_seg seg[DR_MAX_RX_SEGMENTS];
    uint16_t id[DR_MAX_RX_BUFFERS];
    uint16_t slots[DR_MAX_RX_BUFFERS];
    uint16_t first[DR_MAX_RX_BUFFERS + 1];
    uint32_t nseg, nbuf;
    uint64_t room;
};

/* Appends the writable pieces of the chain at last_avail and takes it;
 * reason on failure (the chain taken all the same, id and slots in *w). */
static int prx_chain(struct pd_queue *q, struct pgather *g, struct pwalk *w)
{
    struct pk_desc d;
    uint32_t nseg = g->nseg;
    uint64_t room = 0;
    int r;
    pwalk_begin(q, w);
    while ((r = pwalk_next(q, w, &d)) > 0) {
        if (!(d.flags & PK_DESC_F_WRITE))
            break;
        uint64_t a = d.addr, len = d.len, part;
        while (len && nseg < DR_MAX_RX_SEGMENTS) {
            uint8_t *h = translate_part(q->mem, a, len, &part);
            if (!h) {
                r = -DR_BAD_ADDR;
                goto bad;
            }
            g->seg[nseg].p = h;
            g->seg[nseg++].len = part;
            room += part; a += part; len -= part;
        }
    }
    if (r > 0)
        r = -DR_BAD_DIRECTION;
bad:
    q->last_avail = w->pos;
    if (r < 0) {
        pwalk_skip(q, w);
        q->last_avail = w->pos;
        return -r;
    }
    g->id[g->nbuf] = w->id;
    g->slots[g->nbuf++] = (uint16_t)w->slots;
    g->first[g->nbuf] = (uint16_t)nseg;
    g->nseg = nseg;
    g->room += room;
    return DR_OK;
}

/* Takes chains until need bytes fit (one chain without MRG_RXBUF), as
 * rx_gather in device_ring.c: bad chains are returned at once with the
 * good ones before them (len 0), and a shortage rewinds to the start.
 * 1: the packet fits (or all buffers were taken), 0: out of chains, -1:
 * walk budget spent. */
static int prx_gather(struct pd_queue *q, struct pgather *g, uint64_t need)
{
    g->nseg = g->nbuf = 0;
    g->first[0] = 0;
    g->room = 0;
    uint16_t start = q->last_avail;
    while (g->room < need && g->nbuf < DR_MAX_RX_BUFFERS && g->nseg < DR_MAX_RX_SEGMENTS) {
        if (pd_avail_flags(q, q->last_avail) < 0 || q->walked >= DR_WALK_BUDGET) {
            int r = q->walked >= DR_WALK_BUDGET ? -1 : 0;
            q->last_avail = start;
            return r;
        }
        struct pwalk w;
        int r = prx_chain(q, g, &w);
        if (r && w.slots == 0) {  /* the driver took its head back */
            q->last_avail = start;
            return 0;
        }
        if (r) {
            count_reason(q->stats, r);
            for (uint32_t i = 0; i < g->nbuf; i++)
                pd_used_put(q, g->id[i], 0, g->slots[i], 0);
            pd_used_put(q, w.id, 0, w.slots, 0);
            g->nseg = g->nbuf = 0;
            g->room = 0;
            start = q->last_avail;
            continue;
        }
        if (!(q->flags & DR_F_MRG_RXBUF))
            break;
    }
    return 1;
}

/* Writes header and payload into the gathered pieces, returns the chains. */
static void prx_write(struct pd_queue *q, struct pgather *g, struct packet *p)
{
    uint32_t written[DR_MAX_RX_BUFFERS];
    rx_scatter(q->hdr_len, q->flags, g->seg, g->first, g->nbuf, p, written);
    for (uint32_t b = 0; b < g->nbuf; b++)
        pd_used_put(q, g->id[b], written[b], g->slots[b], PK_DESC_F_WRITE);
}

/* The packet n places behind the link's front into the cache: its header
 * line and its payload's first line. The packets of a link lie ten
 * kilobytes apart, each on a page of its own, so reading one cold costs a
 * page walk and a miss that the copy into the guest waits out. */
#define PRX_AHEAD 8
static inline void prx_prefetch_packet(struct link *in, int n)
{
    struct packet *p = link_peek(in, n);
    if (p) {
        __builtin_prefetch(p, 0);
        __builtin_prefetch(p->buf + PACKET_HEADROOM, 0);
    }
}

/* Four packets at once (DPDK's vhost does the like): the next PRX_BATCH
 * slots, none past the end of the ring, each a writable chain of one slot
 * (no NEXT, no INDIRECT), mapped in one region for its whole length and
 * long enough for the header and its packet of in; then the four are
 * written with no branch per slot. If any of this does not hold, nothing
 * is taken (returns 0) and the caller takes the next packet the one-slot
 * way, which checks and counts whatever the slot holds. Returns the
 * packets sent: PRX_BATCH or 0. */
#define PRX_BATCH 4
static int prx_batch(struct pd_queue *q, struct link *in)
{
    uint16_t pos = q->last_avail;
    if ((pos & (PK_WRAP - 1)) + (uint32_t)PRX_BATCH > q->size || link_nreadable(in) < PRX_BATCH
        || q->walked + PRX_BATCH > DR_WALK_BUDGET)
        return 0;
    const uint8_t *d = pd_slot(q, pos);
    const uint16_t mask = PK_DESC_F_AVAIL | PK_DESC_F_USED | PK_DESC_F_WRITE
                          | PK_DESC_F_NEXT | PK_DESC_F_INDIRECT;
    const uint16_t want = (pos & PK_WRAP ? PK_DESC_F_AVAIL : PK_DESC_F_USED) | PK_DESC_F_WRITE;
    uint16_t bad = 0;
    for (int i = 0; i < PRX_BATCH; i++)  /* acquire: the rest is read after */
        bad |= __atomic_load_n((const uint16_t *)(d + 16 * i + 14), __ATOMIC_ACQUIRE) ^ want;
    if (bad & mask)
        return 0;
    uint8_t *dst[PRX_BATCH];
    uint32_t need[PRX_BATCH];
    uint16_t id[PRX_BATCH];
    struct packet *p[PRX_BATCH];
    for (int i = 0; i < PRX_BATCH; i++) {
        uint64_t a, room;
        uint32_t len;
        memcpy(&a, d + 16 * i, 8);
        memcpy(&len, d + 16 * i + 8, 4);
        memcpy(&id[i], d + 16 * i + 12, 2);
        p[i] = link_peek(in, i);
        need[i] = q->hdr_len + p[i]->length;
        dst[i] = translate_part(q->mem, a, len, &room);
        if (!dst[i] || room != len || len < need[i] || need[i] < 12)
            return 0;
    }
    /* The header: no offloads, num_buffers 1 (read only with MRG_RXBUF). */
    static const uint8_t hdr[12] = { [10] = 1 };
    for (int i = 0; i < PRX_BATCH; i++) {
        pd_prefetch_ahead(q, pk_advance(pos, (uint32_t)i, q->size), 1);
        prx_prefetch_packet(in, PRX_AHEAD + i);
    }
    for (int i = 0; i < PRX_BATCH; i++) {
        link_receive(in);
        memcpy(dst[i], hdr, 12);  /* with hdr_len 10 the payload covers the last two */
        memcpy(dst[i] + q->hdr_len, p[i]->buf + p[i]->headroom, p[i]->length);
        pd_used_put(q, id[i], need[i], 1, PK_DESC_F_WRITE);
        q->stats->bytes += p[i]->length;
        packet_free(p[i]);
    }
    q->stats->packets += PRX_BATCH;
    q->walked += PRX_BATCH;
    q->last_avail = pk_advance(pos, PRX_BATCH, q->size);
    return PRX_BATCH;
}

int pd_rx(struct pd_queue *q, struct link *in, int max)
{
    struct pgather g;
    uint16_t old = q->used_idx;
    int sent = 0;
    q->walked = 0;
    if (q->ready && !link_empty(in)) {
        pd_prefetch_window(q, q->last_avail, 1);
        for (int k = 0; k < PRX_AHEAD; k++)
            prx_prefetch_packet(in, k);
    }
    while (q->ready && sent < max && !link_empty(in) && q->walked < DR_WALK_BUDGET) {
        if (max - sent >= PRX_BATCH) {
            int n = prx_batch(q, in);
            if (n) {
                sent += n;
                pd_batch_done(q);
                continue;
            }
        }
        struct packet *p = link_front(in);
        pd_prefetch_ahead(q, q->last_avail, 1);
        prx_prefetch_packet(in, PRX_AHEAD);
        uint64_t need = q->hdr_len + p->length;
        int r = prx_gather(q, &g, need);
        if (r <= 0) {
            q->stats->no_buffers += r == 0;
            break;
        }
        link_receive(in);
        if (g.room < need) {
            /* Too big for every buffer there is: keep them for the next
             * packet (the gathered run starts where used stands). */
            q->last_avail = q->used_idx;
            q->stats->too_long++;
            packet_free(p);
            continue;
        }
        prx_write(q, &g, p);
        q->stats->packets++;
        q->stats->bytes += p->length;
        packet_free(p);
        sent++;
        pd_batch_done(q);
    }
    pd_publish(q, old);
    return sent;
}
