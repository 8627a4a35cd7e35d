/* The DEVICE side of a virtio-net PACKED virtqueue (virtio 1.1+ section
 * 2.8) over untrusted guest memory: the packed twin of device_ring.h, with
 * the same memory table (struct dr_memory, its translation functions),
 * the same counters (struct dr_stats) and the same safety rules: every
 * guest address translated and bounds-checked for its full length, every
 * descriptor read once into a private copy, a bad chain returned to the
 * guest with len 0 and counted by reason, nothing outside the regions
 * read or written. Needs device_ring.h (and ring layout packed_ring.h)
 * before it.
 *
 *   struct pd_queue q;
 *   pd_queue_start(&q, &m, &s, qsize, desc_ua, driver_ua, device_ua,
 *                  base, DR_F_* flags);
 *   every breath:  pd_tx(&q_tx, out_link, max) / pd_rx(&q_rx, in_link, max)
 *                  if (q.interrupt) write 1 to the call eventfd
 *   pd_queue_stop(&q)  returns the ring state for GET_VRING_BASE
 *
 * Ring state (vhost-user's for packed rings): bits 0-14 the next slot to
 * take, bit 15 its wrap counter; bits 16-31 the same for the next used
 * slot. This device returns every chain it takes within the same call, so
 * both halves are equal when it stops; on start the used half follows the
 * avail half (the frontend's upper bits are not trusted).
 *
 * Chains: a chain is consecutive ring slots linked by NEXT (it may wrap
 * past the end of the ring); the buffer id is the last slot's. An
 * indirect descriptor ends its chain; its table is len/16 descriptors,
 * all of them part of the buffer (their NEXT is ignored, INDIRECT is
 * bad_indirect; on TX their WRITE too, which DPDK's virtio PMD leaves set
 * on its header entries). A chain whose NEXT leads to a slot not yet available,
 * or longer than the ring, is bad_chain and ends there.
 *
 * Publication: used descriptors are written in batches of whole packets
 * (PD_BATCH chains or more), the flags of a batch's first descriptor
 * last, so a driver sees a batch at once (DPDK's virtio PMD drops a merged
 * packet whose later buffers it cannot see yet).
 *
 * In order (PD_F_IN_ORDER, set when VIRTIO_F_IN_ORDER is negotiated):
 * the chains pd_tx takes are used in the order the driver made them
 * available, so each batch is handed back as ONE used descriptor (virtio
 * 1.1+ 2.8.20, in-order use of descriptors): at the batch's first slot,
 * with that slot's wrap counter and the buffer id of the batch's last
 * chain; the used position then skips the slots of the whole batch (the
 * driver counts them itself). A bad chain joins its batch like a good one
 * (every TX used length is 0). pd_rx still writes one used descriptor per
 * buffer, in order (their lengths differ), as the control queue does.
 *
 * Event suppression: the device area is set to DISABLE (we poll); after
 * each call the driver area decides q.interrupt (ENABLE, DISABLE, or with
 * RING_EVENT_IDX the slot it names).
 */

#define PD_E_BASE -7       /* ring state names a slot beyond the queue size */
#define PD_F_IN_ORDER 4096 /* VIRTIO_F_IN_ORDER: pd_tx writes a used descriptor a batch */
/* Used descriptors are kept back and written PD_BATCH chains (or, on RX,
 * whole packets) at a time: the ring's cache lines are read in one pass
 * and written in another, and the driver sees each batch at once while
 * the device goes on with the next. PD_SHADOW holds the largest packet. */
#define PD_BATCH 32
/* Times one pd_tx call looks again for chains while they keep coming. */
#define PD_ROUNDS 4
#define PD_SHADOW 288

struct pd_queue {
    uint8_t *desc;          /* host address of the descriptor ring */
    uint8_t *driver_event;  /* driver area: struct pk_event the driver writes */
    uint8_t *device_event;  /* device area: struct pk_event we write */
    struct dr_memory *mem;
    struct dr_stats *stats;
    uint32_t size;
    uint32_t hdr_len;       /* 10 or 12 */
    uint32_t flags;         /* DR_F_* */
    uint16_t last_avail;    /* next slot to take | its wrap counter << 15 */
    uint16_t used_idx;      /* next slot to write used | wrap << 15 */
    uint8_t ready;          /* started and not stopped */
    uint8_t broken;         /* always 0: a packed ring has no index to break
                             * (the field keeps struct dr_queue's readers) */
    uint8_t interrupt;      /* the last pd_tx/pd_rx: the guest wants a call */
    uint8_t reserved;
    uint32_t walked;        /* descriptors walked in this call (budget) */
    uint16_t flush_pos;     /* where the first shadow entry goes */
    uint16_t nshadow;       /* used descriptors not yet written (shadow) */
    uint16_t batched;       /* chains in the shadow (in order: several an entry) */
    struct pd_shadow { uint32_t len; uint16_t id; uint16_t slots; uint16_t write; }
        shadow[PD_SHADOW];
};

/* Checks and maps the ring and both event areas; 0 or DR_E_SIZE (not in
 * 1..32768, any size: packed rings need no power of two), DR_E_DESC (ring
 * not mapped or not 16-aligned), DR_E_AVAIL / DR_E_USED (driver / device
 * area not mapped or not 4-aligned), PD_E_BASE. */
int pd_queue_start(struct pd_queue *q, struct dr_memory *m, struct dr_stats *s,
                   uint32_t size, uint64_t desc_user, uint64_t driver_user,
                   uint64_t device_user, uint32_t base, uint32_t flags);
/* Stops the queue; returns the ring state (for GET_VRING_BASE). */
uint32_t pd_queue_stop(struct pd_queue *q);
/* Descriptors available at the next slots, up to the queue size (0 if
 * not ready): how far the guest is ahead of us. */
uint32_t pd_queue_pending(struct pd_queue *q);

/* As dr_tx and dr_rx, on a packed ring. */
int pd_tx(struct pd_queue *q, struct link *out, int max);
int pd_rx(struct pd_queue *q, struct link *in, int max);
