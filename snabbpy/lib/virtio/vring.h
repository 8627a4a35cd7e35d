/* Split virtqueue structures (virtio 1.x section 2.7) and the virtio-net
 * header, laid out exactly as in guest memory (little-endian).
 *
 * This one file serves two readers, so it keeps to what both accept:
 *   - cffi's ffi.cdef(): no #include, no #if/#ifndef (so no include guard:
 *     include it once), #define only with plain integer literals;
 *   - a C compiler: include <stdint.h> before this file.
 * Python-side names for the same constants: snabbpy/lib/virtio/constants.py.
 */

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 128

struct vring_desc {
    uint64_t addr;   /* buffer address, as the device sees it */
    uint32_t len;
    uint16_t flags;  /* VRING_DESC_F_* */
    uint16_t next;   /* next descriptor of the chain when F_NEXT */
};

struct vring_avail {
    uint16_t flags;  /* VRING_AVAIL_F_* */
    uint16_t idx;    /* free-running: where the driver puts the next entry */
    uint16_t ring[]; /* queue size entries, then used_event (EVENT_IDX) */
};

struct vring_used_elem {
    uint32_t id;     /* head of the descriptor chain handed back */
    uint32_t len;    /* bytes the device wrote into the chain */
};

struct vring_used {
    uint16_t flags;  /* VRING_USED_F_* */
    uint16_t idx;
    struct vring_used_elem ring[]; /* queue size entries, then avail_event */
};

/* The 10-byte header is the first 10 bytes of this one; the 12-byte form is
 * used with VIRTIO_NET_F_MRG_RXBUF or VIRTIO_F_VERSION_1. */
struct virtio_net_hdr_mrg_rxbuf {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
