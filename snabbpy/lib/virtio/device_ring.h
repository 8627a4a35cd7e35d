/* The DEVICE side of a virtio-net split virtqueue (virtio 1.x section 2.7)
 * over guest memory that the guest (the driver) does not let us trust.
 *
 * Used by the VhostUser app (snabbpy/apps/vhost) and, as an in-process
 * device model, by vguest's tests. The calling sequence:
 *
 *   struct dr_memory m;  dr_memory_clear(&m);
 *   dr_memory_add(&m, guest_phys, user_addr, size, host_addr);  (per region)
 *   struct dr_queue q;   struct dr_stats s = {0};
 *   dr_queue_start(&q, &m, &s, qsize, desc_ua, avail_ua, used_ua,
 *                  last_avail_idx, DR_F_* flags);
 *   every breath:  dr_tx(&q_tx, out_link, max)   guest TX queue -> link
 *                  dr_rx(&q_rx, in_link, max)    link -> guest RX queue
 *                  if (q.interrupt) write 1 to the queue's call eventfd
 *   dr_queue_stop(&q)  returns the next avail index (GET_VRING_BASE)
 *
 * Addresses: descriptors carry GUEST PHYSICAL addresses (guest_phys); the
 * three ring addresses given to dr_queue_start are FRONTEND USER addresses
 * (user_addr), as vhost-user's SET_VRING_ADDR gives them. A driver whose
 * addresses are the same in both spaces passes the same value twice.
 *
 * Safety: every guest address is translated through the memory table and
 * bounds-checked for its full length (a buffer crossing from one region
 * into an adjacent one is split, a buffer leaving mapped memory is bad);
 * descriptor fields are read once into private copies, so a guest changing
 * them under us cannot move a checked address. A bad chain is consumed
 * (returned in the used ring with len 0, so the guest does not leak it) and
 * counted by reason in struct dr_stats; nothing outside the regions is ever
 * read or written. Counters only grow; none is reset by these calls.
 */

#define DR_MAX_REGIONS 8
#define DR_MAX_QUEUE_SIZE 32768
/* Payload bytes a packet may carry (snabbpy's PACKET_PAYLOAD_SIZE). */
#define DR_MAX_PACKET 10240
/* Bounds of one RX packet's gather list (dr_rx): buffers (chains) and
 * contiguous pieces of memory. A packet needing more is dropped (too_long). */
#define DR_MAX_RX_BUFFERS 256
#define DR_MAX_RX_SEGMENTS 512
/* Descriptors one dr_tx/dr_rx call may walk before it stops taking new
 * chains: a guest making every chain queue-size long cannot stall a breath
 * (legitimate traffic walks a few per packet, far below this). */
#define DR_WALK_BUDGET 65536
/* Chains (on a packed ring: slots) ahead of the walk whose buffers both
 * rings ask the cache for (prefetch_buffer in device_ring_memory.c). */
#define DR_AHEAD 8

/* dr_queue_start flags: the negotiated features that change the ring. */
#define DR_F_MRG_RXBUF 1   /* VIRTIO_NET_F_MRG_RXBUF: 12-byte header, merged RX */
#define DR_F_VERSION_1 2   /* VIRTIO_F_VERSION_1: 12-byte header */
#define DR_F_INDIRECT 4    /* VIRTIO_F_RING_INDIRECT_DESC */
#define DR_F_EVENT_IDX 8   /* VIRTIO_F_RING_EVENT_IDX: used_event/avail_event */
/* DR_F_CSUM, DR_F_TSO4, DR_F_TSO6, DR_F_ECN (offloads): see offload.h */

/* dr_queue_start errors (negative return values). */
#define DR_E_SIZE -1       /* queue size not a power of two in 1..32768 */
#define DR_E_DESC -2       /* descriptor table not mapped or not 16-aligned */
#define DR_E_AVAIL -3      /* available ring not mapped or not 2-aligned */
#define DR_E_USED -4       /* used ring not mapped or not 4-aligned */

/* dr_memory_add errors. */
#define DR_E_FULL -5       /* already DR_MAX_REGIONS regions */
#define DR_E_REGION -6     /* size 0, wraps past 2^64, or overlaps another */

/* One region of guest memory, mapped into this process at host_addr. */
struct dr_region {
    uint64_t guest_phys;   /* first guest physical address */
    uint64_t user_addr;    /* the same byte in the frontend's address space */
    uint64_t size;
    uint64_t host_addr;    /* the same byte in ours */
};

struct dr_memory {
    uint32_t nregions;
    uint32_t last;         /* region of the last hit: a lookup cache */
    struct dr_region regions[8];
};

/* Per queue counters. The VhostUser app maps them onto its own counters
 * (txq_* for the guest's TX queue, rxq_* for its RX queue), so the order
 * of the fields is the order of those names. */
struct dr_stats {
    uint64_t packets;       /* delivered (TX: onto the link; RX: to the guest) */
    uint64_t bytes;         /* their payload bytes, headers not counted */
    uint64_t chains;        /* descriptor chains returned to the guest */
    uint64_t interrupts;    /* calls the guest asked for (dr_queue.interrupt) */
    uint64_t bad_avail_idx; /* avail idx ran more than the queue size ahead:
                             * the queue stops until restarted */
    uint64_t bad_index;     /* head or next index outside its table */
    uint64_t bad_addr;      /* buffer outside the memory table */
    uint64_t bad_chain;     /* loop or chain longer than the queue */
    uint64_t bad_indirect;  /* indirect not negotiated, nested, with NEXT, or
                             * a table size not a multiple of 16 / too big */
    uint64_t bad_direction; /* TX: device-writable buffer; RX: readable one */
    uint64_t bad_header;    /* TX: chain shorter than the virtio-net header,
                             * or an offload (GSO, checksum) not negotiated */
    uint64_t too_long;      /* TX: packet above DR_MAX_PACKET bytes;
                             * RX: packet larger than the guest's buffers */
    uint64_t no_memory;     /* TX: no packet to copy into (chain left queued) */
    uint64_t no_buffers;    /* RX: calls that left packets on the link for
                             * lack of guest buffers */
    uint64_t discarded;     /* TX: packets consumed while disabled (no link) */
    /* TX offloads (offload.h; zero unless negotiated): */
    uint64_t csum_finished; /* NEEDS_CSUM checksums completed */
    uint64_t gso_frames;    /* GSO frames cut into segments */
    uint64_t gso_segments;  /* the segments they made (also in packets) */
    uint64_t bad_csum;      /* csum_start/csum_offset outside the frame */
    uint64_t bad_gso_type;  /* gso_type unknown or not negotiated (UDP, ECN) */
    uint64_t bad_gso_frame; /* not TCP over the IP version gso_type names */
    uint64_t bad_gso_size;  /* gso_size 0, segments too big or too many */
};

/* One virtqueue as the device sees it. Fields are set by dr_queue_start;
 * callers read last_avail/used_idx/ready/broken/interrupt. */
struct dr_queue {
    uint8_t *desc;          /* host addresses of the three parts */
    uint8_t *avail;
    uint8_t *used;
    struct dr_memory *mem;
    struct dr_stats *stats;
    uint32_t size;
    uint32_t hdr_len;       /* 10 or 12 */
    uint32_t flags;         /* DR_F_* */
    uint16_t last_avail;    /* next available entry to take */
    uint16_t used_idx;      /* next used entry to fill (shadow of used->idx) */
    uint8_t ready;          /* started and not stopped */
    uint8_t broken;         /* stopped by a bad avail idx until restarted */
    uint8_t interrupt;      /* the last dr_tx/dr_rx: the guest wants a call */
    uint8_t reserved;
    uint32_t walked;        /* descriptors walked in this call (budget) */
};

void dr_memory_clear(struct dr_memory *m);
int dr_memory_add(struct dr_memory *m, uint64_t guest_phys, uint64_t user_addr,
                  uint64_t size, uint64_t host_addr);
/* Host address of [guest_phys, +len) if it lies in ONE region, else NULL. */
uint8_t *dr_translate(struct dr_memory *m, uint64_t guest_phys, uint64_t len);
/* The same for a frontend user address. */
uint8_t *dr_translate_user(struct dr_memory *m, uint64_t user_addr, uint64_t len);

/* Checks and maps the rings; 0 or DR_E_*. Reads used->idx from guest memory
 * as the next used index, sets VRING_USED_F_NO_NOTIFY (we poll). */
int dr_queue_start(struct dr_queue *q, struct dr_memory *m, struct dr_stats *s,
                   uint32_t size, uint64_t desc_user, uint64_t avail_user,
                   uint64_t used_user, uint16_t last_avail, uint32_t flags);
/* Stops the queue; returns the next avail index to take (for GET_VRING_BASE). */
uint16_t dr_queue_stop(struct dr_queue *q);
/* Entries the guest has made available and we have not taken (0 if not ready). */
uint32_t dr_queue_pending(struct dr_queue *q);

/* Guest TX queue -> packets on out (out NULL: consume and discard, for a
 * disabled queue). Takes up to max chains, never more than out has room for;
 * returns packets transmitted on out. */
int dr_tx(struct dr_queue *q, struct link *out, int max);
/* Packets on in -> guest RX queue. Delivers up to max packets; one that
 * finds no guest buffers stays on the link (counted in no_buffers once per
 * call). Returns packets delivered. */
int dr_rx(struct dr_queue *q, struct link *in, int max);
