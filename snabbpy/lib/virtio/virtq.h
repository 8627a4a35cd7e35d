/* vguest: the driver side of a split virtqueue (virtio 1.x section 2.7).
 * Needs lib/virtio/vring.h, core/packet.h, core/link.h and core/dma.h before
 * it; descriptor addresses come from the core's dma_translate().
 *
 * The descriptor table and the two rings live in DMA memory shared with
 * the device; everything the driver must trust (free list, which packet a
 * descriptor holds, chain lengths) is kept in private arrays the device
 * cannot reach. The used ring is read, checked and never followed blindly.
 */

#define VIRTQ_MAX_SIZE 32768

/* One queue's counters. The VGuest app lays its rx_* and tx_* counters out
 * in this order so C updates them in place. */
struct virtq_stats {
    uint64_t packets;         /* packets moved (sent, or delivered to the link) */
    uint64_t bytes;           /* their payload bytes */
    uint64_t bad_id;          /* used entry: id out of range or not in flight */
    uint64_t bad_len;         /* used entry: length beyond the buffer or below the header */
    uint64_t bad_idx;         /* used idx moved by more than the queue size */
    uint64_t oversize;        /* merged packet longer than PACKET_PAYLOAD_SIZE */
    uint64_t bad_num_buffers; /* num_buffers larger than the queue */
    uint64_t notifications;   /* kicks the device asked for */
    uint64_t nomem;           /* refills short of packet memory */
    uint64_t unmapped;        /* packets outside the announced DMA memory */
};

struct virtq {
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t *used_event;    /* in the avail ring, after its entries */
    uint16_t *avail_event;   /* in the used ring, after its entries */
    struct packet **owner;   /* private: packet held by each chain head */
    uint16_t *next;          /* private: chain links and the free list */
    uint8_t *ndesc;          /* private: descriptors in the chain at a head, 0 if none */
    struct virtq_stats *stats;
    uint32_t size;
    uint32_t num_free;
    uint32_t rx_buffer_size; /* payload bytes offered per receive buffer */
    uint16_t free_head;
    uint16_t avail_idx;      /* next avail slot (free-running) */
    uint16_t last_used;      /* next used slot to read (free-running) */
    uint16_t kicked_idx;     /* avail_idx when notification was last decided */
    uint16_t hdr_size;       /* virtio-net header: 10 or 12 bytes */
    uint8_t event_idx;       /* RING_EVENT_IDX negotiated */
    uint8_t one_desc;        /* header and data share one descriptor */
    uint8_t mrg_rxbuf;       /* MRG_RXBUF negotiated */
    uint8_t use_checksum;    /* fill the header for CSUM offload on transmit */
    uint8_t broken;          /* used idx is impossibly far ahead (now) */
    uint8_t pad;
};

void virtq_reset(struct virtq *vq);
int virtq_tx_packets(struct virtq *vq, struct link *in, int max);
int virtq_tx_reclaim(struct virtq *vq);
int virtq_tx_push(struct virtq *vq, struct link *in, int max);
int virtq_rx_refill(struct virtq *vq);
int virtq_rx_packets(struct virtq *vq, struct link *out, int max);
int virtq_notify_needed(struct virtq *vq);
int virtq_in_flight(struct virtq *vq);
int virtq_release_all(struct virtq *vq);
