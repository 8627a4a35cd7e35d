/* vguest: the driver side of a packed virtqueue; see packed_driver.h. It
 * follows virtq.c in the same translation unit and shares its
 * header preparation (vq_tx_header) and merging (vq_append).
 *
 * Ordering: a descriptor's addr, len and id are written before its flags
 * (release), which make it available; on transmit the first descriptor
 * of each round gets its flags after all the others, so the device,
 * which reads in ring order, finds the round whole; a used descriptor's id and len are
 * read after its flags (acquire); the device's notification wish is read
 * after the last flags are written (full fence). */

static inline struct pk_desc *pvq_slot(struct pvirtq *vq, uint16_t pos)
{
    return (struct pk_desc *)(vq->desc + 16u * (pos & (PK_WRAP - 1)));
}

void pvirtq_reset(struct pvirtq *vq)
{
    for (uint32_t i = 0; i < vq->size; i++) {
        vq->free_ids[i] = (uint16_t)(vq->size - 1 - i);
        vq->owner[i] = NULL;
    }
    memset(vq->desc, 0, 16ull * vq->size);
    vq->num_free = vq->size;
    vq->out = vq->seen = 0;
    vq->avail_pos = vq->used_pos = vq->kicked_pos = PK_WRAP; /* wrap counters start at 1 */
    vq->broken = 0;
    vq->driver_event->off_wrap = 0;
    vq->driver_event->flags = PK_EVENT_DISABLE;  /* we poll */
}

/* Writes one buffer (p's header at addr and len bytes after it) into the
 * next slot and returns the flags that make it available, leaving those
 * to the caller: they go last, with release (see pvq_publish). */
static inline uint16_t pvq_fill(struct pvirtq *vq, struct packet *p, uint64_t addr,
                                uint32_t len, uint16_t write, struct pk_desc **slot)
{
    uint16_t id = vq->in_order ? vq->avail_pos & (PK_WRAP - 1) : vq->free_ids[vq->num_free - 1];
    struct pk_desc *d = pvq_slot(vq, vq->avail_pos);
    vq->num_free--;
    vq->owner[id] = p;
    d->addr = addr;
    d->len = len;
    d->id = id;
    *slot = d;
    uint16_t flags = write | (vq->avail_pos & PK_WRAP ? PK_DESC_F_AVAIL : PK_DESC_F_USED);
    vq->avail_pos = pk_advance(vq->avail_pos, 1, vq->size);
    vq->out++;
    return flags;
}

static inline void pvq_publish(struct pk_desc *d, uint16_t flags)
{
    __atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

/* Makes one buffer available: p's header (at addr) and len bytes after it. */
static void pvq_add(struct pvirtq *vq, struct packet *p, uint64_t addr, uint32_t len,
                    uint16_t write)
{
    struct pk_desc *d;
    uint16_t flags = pvq_fill(vq, p, addr, len, write, &d);
    pvq_publish(d, flags);
}

/* Gives buffer id back to the free list and returns its packet. (In order
 * the list is not read: the ids are the slots, free again once used.) */
static struct packet *pvq_release(struct pvirtq *vq, uint16_t id)
{
    struct packet *p = vq->owner[id];
    vq->owner[id] = NULL;
    vq->free_ids[vq->num_free++] = id;
    return p;
}

/* 1 with the id and len of the used descriptor the device has written at
 * pos (AVAIL == USED == that slot's wrap), else 0. */
static inline int pvq_written(struct pvirtq *vq, uint16_t pos, uint16_t *id, uint32_t *len)
{
    struct pk_desc *d = pvq_slot(vq, pos);
    uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
    int wrap = !!(pos & PK_WRAP);
    if (!!(f & PK_DESC_F_AVAIL) != wrap || !!(f & PK_DESC_F_USED) != wrap)
        return 0;
    *id = *(volatile uint16_t *)&d->id;
    *len = *(volatile uint32_t *)&d->len;
    return 1;
}

/* In order: reads the used descriptor at the first slot not yet known to
 * be used, which names the last slot of its batch, and adds the batch to
 * the slots known (the skipped ones with the whole buffer's length).
 * Returns 1 when it did, 0 when the device has not written it yet or it
 * names a slot that is not out (bad_id, counted once: the queue stalls). */
static int pvq_in_order_batch(struct pvirtq *vq)
{
    uint16_t id;
    uint32_t len;
    if (vq->seen >= vq->out)
        return 0;
    uint16_t pos = pk_advance(vq->used_pos, vq->seen, vq->size);
    if (!pvq_written(vq, pos, &id, &len))
        return 0;
    uint32_t first = pos & (PK_WRAP - 1);
    uint32_t span = id >= first ? id - first : id + vq->size - first;
    if (id >= vq->size || span >= vq->out - vq->seen) {
        vq->stats->bad_id += !vq->broken;
        vq->broken = 1;
        return 0;
    }
    vq->broken = 0;
    uint32_t whole = vq->hdr_size + vq->rx_buffer_size;
    for (uint32_t s = first; s != id; s = s + 1 == vq->size ? 0 : s + 1)
        vq->used_len[s] = whole;
    vq->used_len[id] = len;
    vq->seen += span + 1;
    return 1;
}

/* The k-th used slot after used_pos: 1 with its id and len when the device
 * has written it (in order: it, or a later slot of its batch), else 0. */
static int pvq_used_at(struct pvirtq *vq, uint32_t k, uint16_t *id, uint32_t *len)
{
    if (k >= vq->out)
        return 0;
    uint16_t pos = pk_advance(vq->used_pos, k, vq->size);
    if (!vq->in_order)
        return pvq_written(vq, pos, id, len);
    while (k >= vq->seen)
        if (!pvq_in_order_batch(vq))
            return 0;
    *id = pos & (PK_WRAP - 1);
    *len = vq->used_len[*id];
    return 1;
}

/* The packet an id from the device names, or NULL (counted) when the id
 * is out of range or not in flight. */
static inline struct packet *pvq_owner(struct pvirtq *vq, uint16_t id)
{
    if (id >= vq->size || vq->owner[id] == NULL) {
        vq->stats->bad_id++;
        return NULL;
    }
    return vq->owner[id];
}

static void pvq_consume(struct pvirtq *vq, uint32_t n)
{
    vq->used_pos = pk_advance(vq->used_pos, n, vq->size);
    vq->out -= n;
    if (vq->in_order)
        vq->seen -= n;
}

/* Packets taken from the link per round: one round's buffers become
 * available together (the first one's flags written last), so a device
 * that reads four descriptors (a cache line) at a time finds them whole. */
#define PVQ_TX_ROUND 32

int pvirtq_tx_packets(struct pvirtq *vq, struct link *in, int max)
{
    int sent = 0;
    uint64_t bytes = 0;
    struct packet *round[PVQ_TX_ROUND];
    while (sent < max && vq->num_free) {
        uint32_t want = (uint32_t)(max - sent);
        if (want > vq->num_free) want = vq->num_free;
        if (want > PVQ_TX_ROUND) want = PVQ_TX_ROUND;
        int n = link_receive_batch(in, round, (int)want);
        if (n == 0)
            break;
        vq_prefetch_headers(round, n);
        struct pk_desc *first = NULL, *d;
        uint16_t first_flags = 0;
        for (int i = 0; i < n; i++) {
            struct packet *p = round[i];
            uint64_t addr = vq_tx_header(p, vq->hdr_size, vq->use_checksum, vq->stats);
            if (!addr)
                continue;
            uint16_t flags = pvq_fill(vq, p, addr, vq->hdr_size + p->length, 0, &d);
            if (first)
                pvq_publish(d, flags);
            else
                first = d, first_flags = flags;
            bytes += p->length;
            sent++;
        }
        if (first)
            pvq_publish(first, first_flags);
    }
    vq->stats->packets += sent;
    vq->stats->bytes += bytes;
    return sent;
}

int pvirtq_tx_reclaim(struct pvirtq *vq)
{
    uint16_t id;
    uint32_t len;
    int freed = 0;
    while (pvq_used_at(vq, 0, &id, &len)) {
        if (pvq_owner(vq, id)) {
            packet_free(pvq_release(vq, id));
            freed++;
        }
        pvq_consume(vq, 1);
    }
    return freed;
}

int pvirtq_rx_refill(struct pvirtq *vq)
{
    int added = 0;
    while (vq->num_free) {
        struct packet *p = packet_allocate();
        if (!p) {
            vq->stats->nomem++;
            break;
        }
        uint64_t addr = dma_translate((uintptr_t)(p->buf + p->headroom - vq->hdr_size));
        if (!addr) {
            vq->stats->unmapped++;
            packet_free(p);
            break;
        }
        pvq_add(vq, p, addr, vq->hdr_size + vq->rx_buffer_size, PK_DESC_F_WRITE);
        added++;
    }
    return added;
}

/* Appends the buffers of used slots 1..nbuf-1 to p (verdict 0), or only
 * gives them back (verdict < 0). Returns the final verdict. */
static int pvq_merge(struct pvirtq *vq, struct packet *p, int nbuf, int verdict)
{
    uint32_t cap = vq->hdr_size + vq->rx_buffer_size;
    for (int k = 1; k < nbuf; k++) {
        uint16_t id = 0;
        uint32_t len = 0;
        pvq_used_at(vq, (uint32_t)k, &id, &len);  /* seen by the caller */
        if (!pvq_owner(vq, id)) {
            verdict = -1;
            continue;
        }
        verdict = vq_append(vq->stats, vq->hdr_size, cap, p, pvq_release(vq, id), len,
                            verdict);
    }
    return verdict;
}

/* Used slots the packet whose first buffer is p spans (num_buffers), or -1
 * (counted) when the device claims more than the slots that are out. */
static int pvq_num_buffers(struct pvirtq *vq, struct packet *p)
{
    if (!vq->mrg_rxbuf)
        return 1;
    struct virtio_net_hdr_mrg_rxbuf *h =
        (struct virtio_net_hdr_mrg_rxbuf *)(p->buf + p->headroom - vq->hdr_size);
    int nbuf = *(volatile uint16_t *)&h->num_buffers;
    if (nbuf > (int)vq->out) {
        vq->stats->bad_num_buffers++;
        return -1;
    }
    return nbuf ? nbuf : 1;
}

/* Takes the used buffers of one packet at used_pos. Returns the used slots
 * consumed (0: nothing, or the rest of a merged packet is not there yet)
 * and sets *out to the packet, or NULL when it was dropped. */
static int pvq_rx_one(struct pvirtq *vq, struct packet **out)
{
    uint16_t id;
    uint32_t len;
    *out = NULL;
    if (!pvq_used_at(vq, 0, &id, &len))
        return 0;
    struct packet *p = pvq_owner(vq, id);
    if (!p)
        return 1;
    if (len > vq->hdr_size + vq->rx_buffer_size || len < vq->hdr_size) {
        vq->stats->bad_len++; /* and its header is not worth reading */
        packet_free(pvq_release(vq, id));
        return 1;
    }
    int nbuf = pvq_num_buffers(vq, p);
    uint16_t later_id = 0;
    uint32_t later_len = 0;
    if (nbuf > 1 && !pvq_used_at(vq, (uint32_t)nbuf - 1, &later_id, &later_len))
        return 0;
    for (int k = 1; k < nbuf - 1; k++)  /* written in order, but not trusted */
        if (!pvq_used_at(vq, (uint32_t)k, &later_id, &later_len))
            return 0;
    pvq_release(vq, id);
    int verdict = 0;
    if (nbuf < 0) {
        nbuf = 1;
        verdict = -1;
    } else {
        p->length = (uint16_t)(len - vq->hdr_size);
    }
    if (pvq_merge(vq, p, nbuf, verdict) < 0)
        packet_free(p);
    else
        *out = p;
    return nbuf;
}

int pvirtq_rx_packets(struct pvirtq *vq, struct link *out, int max)
{
    int got = 0;
    uint64_t bytes = 0;
    while (got < max && !link_full(out)) {
        struct packet *p;
        int used = pvq_rx_one(vq, &p);
        if (used == 0)
            break;
        pvq_consume(vq, (uint32_t)used);
        if (p) {
            bytes += p->length;
            link_transmit(out, p);
            got++;
        }
    }
    vq->stats->packets += got;
    vq->stats->bytes += bytes;
    return got;
}

int pvirtq_notify_needed(struct pvirtq *vq)
{
    uint16_t old = vq->kicked_pos, new_pos = vq->avail_pos;
    if (old == new_pos)
        return 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vq->kicked_pos = new_pos;
    struct pk_event e;
    memcpy(&e, (void *)vq->device_event, 4);
    int need = pk_need_event(e.flags, e.off_wrap, old, new_pos, vq->size, vq->event_idx);
    vq->stats->notifications += need;
    return need;
}

/* One breath of a transmit queue in one call: reclaims what the device
 * finished, puts packets from in (NULL: none) on the ring, and goes round
 * again while the link has packets, fewer than max went and the device
 * gave back at least a quarter of the ring meanwhile (a round for a few
 * slots would only spin on the lines the device is writing). Every round
 * sends at least one packet from the link, so it ends. Returns 1 when the
 * device wants a kick (then at once: the kick comes before more is added). */
int pvirtq_tx_push(struct pvirtq *vq, struct link *in, int max)
{
    int enough = vq->size >= 4 ? (int)(vq->size / 4) : 1;
    for (int round = 0;; round++) {
        int freed = pvirtq_tx_reclaim(vq);
        if (in == NULL || max <= 0 || vq->num_free == 0 || (round && freed < enough))
            return 0;
        int sent = pvirtq_tx_packets(vq, in, max);
        if (pvirtq_notify_needed(vq))
            return 1;
        if (sent == 0 || link_empty(in))
            return 0;
        max -= sent;
    }
}

int pvirtq_in_flight(struct pvirtq *vq)
{
    return (int)(vq->size - vq->num_free);
}

/* After the device is reset: frees every packet still on the ring. */
int pvirtq_release_all(struct pvirtq *vq)
{
    int n = 0;
    for (uint32_t i = 0; i < vq->size; i++) {
        if (vq->owner[i]) {
            packet_free(pvq_release(vq, (uint16_t)i));
            n++;
        }
    }
    vq->out = vq->seen = 0;
    vq->broken = 0;
    return n;
}
