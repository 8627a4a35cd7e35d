/* vguest: the driver side of a split virtqueue. One call per queue per
 * breath moves a whole batch; Python only decides when to notify.
 *
 * Ordering: descriptors and avail entries are written before avail->idx
 * (release); used entries are read after used->idx (acquire); the device's
 * notification wish is read after publishing avail->idx (full fence). */

#define VQ_READ16(x) (*(volatile uint16_t *)&(x))
#define VQ_READ32(x) (*(volatile uint32_t *)&(x))

void virtq_reset(struct virtq *vq)
{
    for (uint32_t i = 0; i < vq->size; i++) {
        vq->next[i] = (uint16_t)(i + 1);
        vq->ndesc[i] = 0;
        vq->owner[i] = NULL;
    }
    vq->free_head = 0;
    vq->num_free = vq->size;
    vq->avail_idx = vq->last_used = vq->kicked_idx = 0;
    vq->broken = 0;
    vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT; /* we poll */
    vq->avail->idx = 0;
    *vq->used_event = 0xffff;
}

/* Device address of a virtual address in DMA memory, 0 if unmapped. The
 * core's table (dma.c) has one entry per hugepage for PCI, more than a
 * per-queue table could hold. */
static inline uint64_t vq_dma(struct virtq *vq, uintptr_t a)
{
    (void)vq;
    return dma_translate(a);
}

static inline uint16_t vq_take_desc(struct virtq *vq)
{
    uint16_t d = vq->free_head;
    vq->free_head = vq->next[d];
    vq->num_free--;
    return d;
}

/* Gives back the chain at head and returns its packet (now ours). */
static struct packet *vq_release(struct virtq *vq, uint16_t head)
{
    struct packet *p = vq->owner[head];
    uint16_t d = head;
    for (int n = vq->ndesc[head]; n > 0; n--) {
        uint16_t following = vq->next[d];
        vq->next[d] = vq->free_head;
        vq->free_head = d;
        vq->num_free++;
        d = following;
    }
    vq->ndesc[head] = 0;
    vq->owner[head] = NULL;
    return p;
}

static inline void vq_set_desc(struct virtq *vq, uint16_t d, uint64_t addr,
                               uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc *desc = &vq->desc[d];
    desc->addr = addr;
    desc->len = len;
    desc->flags = flags;
    desc->next = next;
}

/* Puts a buffer of one or two descriptors (header, then data) on the
 * ring; the header sits just before the data in the packet's headroom. */
static void vq_add(struct virtq *vq, struct packet *p, uint64_t hdr_addr,
                   uint32_t data_len, uint16_t write)
{
    uint16_t head = vq_take_desc(vq);
    if (vq->one_desc) {
        vq_set_desc(vq, head, hdr_addr, vq->hdr_size + data_len, write, 0);
        vq->ndesc[head] = 1;
    } else {
        uint16_t d = vq_take_desc(vq);
        vq_set_desc(vq, head, hdr_addr, vq->hdr_size, write | VRING_DESC_F_NEXT, d);
        vq_set_desc(vq, d, hdr_addr + vq->hdr_size, data_len, write, 0);
        vq->next[head] = d;
        vq->ndesc[head] = 2;
    }
    vq->owner[head] = p;
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    vq->avail_idx++;
}

static inline void vq_publish(struct virtq *vq)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
    VQ_READ16(vq->avail->idx) = vq->avail_idx;
}

static inline int vq_descs_per_buffer(struct virtq *vq) { return vq->one_desc ? 1 : 2; }

/* Zeroes a virtio-net header (10 or 12 bytes), writing only when it is
 * not zero already: a packet sent before keeps its zero header, and its
 * cache line, which the device read last, is then not taken back from
 * the device's cache for a write that changes nothing. */
static inline void vq_clear_header(uint8_t *hdr, uint16_t hdr_size)
{
    uint64_t head;
    uint32_t tail = 0;
    memcpy(&head, hdr, 8);
    if (hdr_size == 12)
        memcpy(&tail, hdr + 8, 4);
    else
        memcpy(&tail, hdr + 8, 2);
    if (head | tail)
        memset(hdr, 0, hdr_size);
}

/* Writes the virtio-net header of a packet to send into its headroom
 * (making room when someone used it up); returns the header's device
 * address, or 0 when p is outside DMA memory (p freed, counted). The
 * packed ring's driver (lib/virtio/packed_driver.c) uses it too. */
static uint64_t vq_tx_header(struct packet *p, uint16_t hdr_size, int use_checksum,
                             struct virtq_stats *stats)
{
    if (p->headroom < hdr_size) {
        memmove(p->buf + PACKET_HEADROOM, p->buf + p->headroom, p->length);
        p->headroom = PACKET_HEADROOM;
    }
    uint8_t *hdr = p->buf + p->headroom - hdr_size;
    uint64_t addr = dma_translate((uintptr_t)hdr);
    if (!addr) {
        stats->unmapped++;
        packet_free(p);
        return 0;
    }
    vq_clear_header(hdr, hdr_size);
    if (use_checksum)
        virtq_checksum_prepare(hdr, p->buf + p->headroom, p->length);
    return addr;
}

/* Asks for the lines of a round of packets to send that the driver is
 * about to write: each packet's own header and the end of its headroom,
 * where the virtio-net header goes. */
static inline void vq_prefetch_headers(struct packet **round, int n)
{
    for (int i = 0; i < n; i++) {
        struct packet *p = round[i];
        __builtin_prefetch(p, 1);
        __builtin_prefetch(p->buf + PACKET_HEADROOM - 16, 1);
    }
}

/* Appends the len bytes a merged packet's later buffer q holds to p
 * (verdict 0) or only drops them (verdict < 0); frees q. Returns the
 * verdict: -1 once the length is impossible or p would grow too long
 * (counted). The packed ring's driver uses it too. */
static int vq_append(struct virtq_stats *stats, uint16_t hdr_size, uint32_t cap,
                     struct packet *p, struct packet *q, uint32_t len, int verdict)
{
    if (len > cap) {
        stats->bad_len++;
        verdict = -1;
    } else if (verdict == 0 && p->length + len > PACKET_PAYLOAD_SIZE) {
        stats->oversize++;
        verdict = -1;
    } else if (verdict == 0) {
        memcpy(p->buf + p->headroom + p->length, q->buf + q->headroom - hdr_size, len);
        p->length += len;
    }
    packet_free(q);
    return verdict;
}

/* Packets taken from the link per round (one call of link_receive_batch). */
#define VQ_TX_ROUND 32

int virtq_tx_packets(struct virtq *vq, struct link *in, int max)
{
    int room = vq->num_free / vq_descs_per_buffer(vq), sent = 0;
    uint64_t bytes = 0;
    struct packet *round[VQ_TX_ROUND];
    if (max > room) max = room;
    while (sent < max) {
        int want = max - sent < VQ_TX_ROUND ? max - sent : VQ_TX_ROUND;
        int n = link_receive_batch(in, round, want);
        if (n == 0)
            break;
        vq_prefetch_headers(round, n);
        for (int i = 0; i < n; i++) {
            struct packet *p = round[i];
            uint64_t addr = vq_tx_header(p, vq->hdr_size, vq->use_checksum, vq->stats);
            if (!addr)
                continue;
            vq_add(vq, p, addr, p->length, 0);
            bytes += p->length;
            sent++;
        }
    }
    if (sent)
        vq_publish(vq);
    vq->stats->packets += sent;
    vq->stats->bytes += bytes;
    return sent;
}

/* Reads used idx and returns how many entries are new; 0 when the device
 * claims more than the ring holds: the queue is marked broken (counted once
 * each time it breaks) until used idx is sane again. */
static int vq_used_pending(struct virtq *vq)
{
    uint16_t used_idx = VQ_READ16(vq->used->idx);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t n = (uint16_t)(used_idx - vq->last_used);
    if (n > vq->size) {
        vq->stats->bad_idx += !vq->broken;
        vq->broken = 1;
        return 0;
    }
    vq->broken = 0;
    return n;
}

/* The head named by a used entry, or -1 (counted) if the device made it up. */
static inline int vq_used_head(struct virtq *vq, uint16_t slot, uint32_t *len)
{
    struct vring_used_elem *e = &vq->used->ring[slot & (vq->size - 1)];
    uint32_t id = VQ_READ32(e->id);
    *len = VQ_READ32(e->len);
    if (id >= vq->size || vq->ndesc[id] == 0) {
        vq->stats->bad_id++;
        return -1;
    }
    return (int)id;
}

int virtq_tx_reclaim(struct virtq *vq)
{
    int n = vq_used_pending(vq), freed = 0;
    for (int i = 0; i < n; i++) {
        uint32_t len;
        int head = vq_used_head(vq, vq->last_used++, &len);
        if (head >= 0) {
            packet_free(vq_release(vq, (uint16_t)head));
            freed++;
        }
    }
    return freed;
}

int virtq_rx_refill(struct virtq *vq)
{
    int added = 0, per = vq_descs_per_buffer(vq);
    while ((int)vq->num_free >= per) {
        struct packet *p = packet_allocate();
        if (!p) {
            vq->stats->nomem++;
            break;
        }
        uint64_t addr = vq_dma(vq, (uintptr_t)(p->buf + p->headroom - vq->hdr_size));
        if (!addr) {
            vq->stats->unmapped++;
            packet_free(p);
            break;
        }
        vq_add(vq, p, addr, vq->rx_buffer_size, VRING_DESC_F_WRITE);
        added++;
    }
    if (added)
        vq_publish(vq);
    return added;
}

/* Takes the extra buffers of a merged packet (used slots first+1 ..
 * first+nbuf-1) and appends their data to p; with verdict < 0 (p already
 * dropped) only gives them back. Returns the final verdict: 0 keep p, -1
 * drop it (counted). */
static int vq_merge(struct virtq *vq, struct packet *p, uint16_t first, int nbuf, int verdict)
{
    uint32_t cap = vq->hdr_size + vq->rx_buffer_size;
    for (int k = 1; k < nbuf; k++) {
        uint32_t len;
        int head = vq_used_head(vq, (uint16_t)(first + k), &len);
        if (head < 0) {
            verdict = -1;
            continue;
        }
        verdict = vq_append(vq->stats, vq->hdr_size, cap, p, vq_release(vq, (uint16_t)head),
                            len, verdict);
    }
    return verdict;
}

/* How many used entries the packet at a head spans (num_buffers), or -1
 * (counted) when the device claims more buffers than are in flight. */
static int vq_num_buffers(struct virtq *vq, struct packet *p)
{
    if (!vq->mrg_rxbuf)
        return 1;
    struct virtio_net_hdr_mrg_rxbuf *h =
        (struct virtio_net_hdr_mrg_rxbuf *)(p->buf + p->headroom - vq->hdr_size);
    int nbuf = VQ_READ16(h->num_buffers);
    if (nbuf > (int)(vq->size - vq->num_free)) { /* more than we ever posted */
        vq->stats->bad_num_buffers++;
        return -1;
    }
    return nbuf ? nbuf : 1;
}

/* Takes the used buffers of one packet at last_used. Returns the number of
 * used entries consumed (0: the rest of a merged packet is not there yet)
 * and sets *out to the packet, or NULL when it was dropped. */
static int vq_rx_one(struct virtq *vq, int pending, struct packet **out)
{
    uint32_t len;
    uint16_t first = vq->last_used;
    *out = NULL;
    int head = vq_used_head(vq, first, &len);
    if (head < 0)
        return 1;
    struct packet *p = vq->owner[head];
    if (len > vq->hdr_size + vq->rx_buffer_size || len < vq->hdr_size) {
        vq->stats->bad_len++; /* and its header is not worth reading */
        packet_free(vq_release(vq, (uint16_t)head));
        return 1;
    }
    int nbuf = vq_num_buffers(vq, p);
    if (nbuf > pending)
        return 0;
    vq_release(vq, (uint16_t)head);
    int verdict = 0;
    if (nbuf < 0) {
        nbuf = 1;
        verdict = -1;
    } else {
        p->length = (uint16_t)(len - vq->hdr_size);
    }
    if (vq_merge(vq, p, first, nbuf, verdict) < 0)
        packet_free(p);
    else
        *out = p;
    return nbuf;
}

int virtq_rx_packets(struct virtq *vq, struct link *out, int max)
{
    int pending = vq_used_pending(vq), got = 0;
    uint64_t bytes = 0;
    while (pending > 0 && got < max && !link_full(out)) {
        struct packet *p;
        int used = vq_rx_one(vq, pending, &p);
        if (used == 0)
            break;
        vq->last_used = (uint16_t)(vq->last_used + used);
        pending -= used;
        if (p) {
            bytes += p->length;
            link_transmit(out, p);
            got++;
        }
    }
    if (vq->event_idx) /* stay just behind: the device never signals us */
        VQ_READ16(*vq->used_event) = (uint16_t)(vq->last_used - 1);
    vq->stats->packets += got;
    vq->stats->bytes += bytes;
    return got;
}

int virtq_notify_needed(struct virtq *vq)
{
    uint16_t new_idx = vq->avail_idx, old_idx = vq->kicked_idx;
    if (new_idx == old_idx)
        return 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vq->kicked_idx = new_idx;
    int need;
    if (vq->event_idx) {
        uint16_t event = VQ_READ16(*vq->avail_event);
        need = (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
    } else {
        need = !(VQ_READ16(vq->used->flags) & VRING_USED_F_NO_NOTIFY);
    }
    vq->stats->notifications += need;
    return need;
}

/* One breath of a transmit queue in one call, as pvirtq_tx_push: reclaim,
 * transmit from in (NULL: none), and again while the link has packets,
 * fewer than max went and the device gave back a quarter of the ring.
 * Returns 1 when the device wants a kick. */
int virtq_tx_push(struct virtq *vq, struct link *in, int max)
{
    int per = vq_descs_per_buffer(vq);
    int enough = vq->size >= 4 ? (int)(vq->size / 4) : 1;
    for (int round = 0;; round++) {
        int freed = virtq_tx_reclaim(vq);
        if (in == NULL || max <= 0 || (int)vq->num_free < per || (round && freed < enough))
            return 0;
        int sent = virtq_tx_packets(vq, in, max);
        if (virtq_notify_needed(vq))
            return 1;
        if (sent == 0 || link_empty(in))
            return 0;
        max -= sent;
    }
}

int virtq_in_flight(struct virtq *vq)
{
    int n = 0;
    for (uint32_t i = 0; i < vq->size; i++)
        n += vq->owner[i] != NULL;
    return n;
}

/* After the device is reset: frees every packet still on the ring. */
int virtq_release_all(struct virtq *vq)
{
    int n = 0;
    for (uint32_t i = 0; i < vq->size; i++) {
        if (vq->ndesc[i]) {
            packet_free(vq_release(vq, (uint16_t)i));
            n++;
        }
    }
    return n;
}
