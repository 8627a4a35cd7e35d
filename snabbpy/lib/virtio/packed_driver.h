/* vguest: the DRIVER side of a packed virtqueue (virtio 1.1+ section 2.8),
 * the packed twin of virtq.h with the same counters (struct
 * virtq_stats). Needs packed_ring.h, virtq.h, core/packet.h, core/link.h
 * and core/dma.h before it.
 *
 * Every buffer is ONE descriptor (header in the packet's headroom, then
 * the data: packed rings come with VERSION_1, so any layout goes), named
 * by a buffer id from a private free list. The ring and the two event
 * areas live in DMA memory shared with the device; what the driver must
 * trust (which packet an id holds, which ids are free, how many slots are
 * out) is kept in private arrays. A used descriptor is read, checked and
 * never followed blindly: an id out of range or not in flight is bad_id,
 * a length beyond the buffer (or below the header on receive) bad_len,
 * num_buffers beyond what is in flight bad_num_buffers; the slot is
 * consumed and the buffer it names (if any) freed, never given twice.
 * Used slots are read only while slots are out, so a device cannot make
 * the driver read past what it made available.
 *
 * With VIRTIO_F_IN_ORDER (in_order set before pvirtq_reset) buffer ids are
 * the slots themselves, and the device may hand back a batch with ONE used
 * descriptor, written at the batch's first slot and naming its last buffer:
 * every slot from the first to the one named is used, the skipped ones
 * with their whole length. The span is checked against the slots out: an
 * id beyond them is bad_id, counted once, and the queue stalls there
 * (broken) with nothing freed, since which buffers the device still holds
 * is then unknown; it goes on if the device writes that slot again right.
 */

struct pvirtq {
    uint8_t *desc;           /* the ring: size struct pk_desc */
    struct pk_event *driver_event; /* driver area: we write (DISABLE: we poll) */
    struct pk_event *device_event; /* device area: the device's wish for kicks */
    struct packet **owner;   /* private: packet held by each buffer id */
    uint16_t *free_ids;      /* private: stack of free buffer ids */
    uint32_t *used_len;      /* private, in order: length of each slot seen used */
    struct virtq_stats *stats;
    uint32_t size;
    uint32_t num_free;       /* ids on the free stack */
    uint32_t out;            /* slots made available and not yet seen used */
    uint32_t rx_buffer_size; /* payload bytes offered per receive buffer */
    uint32_t seen;           /* in order: slots from used_pos known to be used */
    uint16_t avail_pos;      /* next slot to make available | wrap << 15 */
    uint16_t used_pos;       /* next slot to read used | wrap << 15 */
    uint16_t kicked_pos;     /* avail_pos when notification was last decided */
    uint16_t hdr_size;       /* virtio-net header: 10 or 12 bytes */
    uint8_t event_idx;       /* RING_EVENT_IDX negotiated */
    uint8_t mrg_rxbuf;       /* MRG_RXBUF negotiated */
    uint8_t use_checksum;    /* fill the header for CSUM offload on transmit */
    uint8_t in_order;        /* IN_ORDER negotiated: ids are slots, batches skip */
    uint8_t broken;          /* in order: stalled on a used id beyond the slots out */
};

void pvirtq_reset(struct pvirtq *vq);
int pvirtq_tx_packets(struct pvirtq *vq, struct link *in, int max);
int pvirtq_tx_reclaim(struct pvirtq *vq);
int pvirtq_tx_push(struct pvirtq *vq, struct link *in, int max);
int pvirtq_rx_refill(struct pvirtq *vq);
int pvirtq_rx_packets(struct pvirtq *vq, struct link *out, int max);
int pvirtq_notify_needed(struct pvirtq *vq);
int pvirtq_in_flight(struct pvirtq *vq);
int pvirtq_release_all(struct pvirtq *vq);
