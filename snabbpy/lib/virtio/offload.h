/* Guest offloads on the device's TX path (frames the guest sent): the
 * virtio-net header's NEEDS_CSUM (finish a partial TCP/UDP checksum) and
 * GSO TCPv4/TCPv6 (cut a large TCP frame into segments of gso_size payload
 * bytes each, with their IP and TCP headers fixed and checksums computed).
 * Pure functions over bytes, no ring and no link, so tests call them
 * directly; device_ring_tx.c calls them for frames whose header asks.
 *
 *   offload_csum(frame, len, csum_start, csum_offset)        0 or OFF_*
 *   offload_gso_plan(frame, len, gso_type, gso_size, allowed, &plan)
 *       0 or OFF_*; plan.nseg segments of at most plan.hdrs + plan.mss
 *   offload_gso_segment(frame, &plan, i, out)   writes segment i, its length
 *
 * The frame is untrusted: every length and offset in it, and every value
 * in the header, is checked against the frame before it is used. */

/* dr_queue_start flags for the negotiated offloads (device_ring.h has the
 * ring's own DR_F_* in the low bits). */
#define DR_F_CSUM 256      /* VIRTIO_NET_F_CSUM: NEEDS_CSUM frames accepted */
#define DR_F_TSO4 512      /* VIRTIO_NET_F_HOST_TSO4: GSO_TCPV4 accepted */
#define DR_F_TSO6 1024     /* VIRTIO_NET_F_HOST_TSO6: GSO_TCPV6 accepted */
#define DR_F_ECN 2048      /* VIRTIO_NET_F_HOST_ECN: GSO_ECN accepted */

/* A GSO frame as the guest may send it: a 64 KiB IP packet, an Ethernet
 * header and one VLAN tag. */
#define DR_MAX_GSO_FRAME 65554
/* Segments of one frame: what a link holds (LINK_MAX_PACKETS). */
#define DR_MAX_GSO_SEGMENTS 1023

/* Why a frame was refused (each counted in struct dr_stats by its name). */
#define OFF_OK 0
#define OFF_BAD_CSUM 1       /* bad_csum: csum_start/csum_offset past the frame */
#define OFF_BAD_GSO_TYPE 2   /* bad_gso_type: unknown or not negotiated (UDP, ECN) */
#define OFF_BAD_GSO_FRAME 3  /* bad_gso_frame: not TCP over the IP version it names */
#define OFF_BAD_GSO_SIZE 4   /* bad_gso_size: 0, segments above a packet, or too many */

/* Where the headers of a GSO frame are and how it is cut. */
struct gso_plan {
    uint32_t l3;        /* IP header offset (14, or 18 after a VLAN tag) */
    uint32_t l4;        /* TCP header offset */
    uint32_t hdrs;      /* bytes of headers copied into every segment */
    uint32_t payload;   /* TCP payload bytes of the whole frame */
    uint32_t mss;       /* payload bytes per segment (gso_size) */
    uint32_t nseg;      /* segments (1 for a frame with no payload) */
    uint32_t ipv6;      /* 1: IPv6, 0: IPv4 */
};

int offload_csum(uint8_t *frame, uint32_t len, uint32_t csum_start, uint32_t csum_offset);
int offload_gso_plan(const uint8_t *frame, uint32_t len, uint32_t gso_type, uint32_t gso_size,
                     uint32_t allowed, struct gso_plan *plan);
uint32_t offload_gso_segment(const uint8_t *frame, const struct gso_plan *plan, uint32_t i,
                             uint8_t *out);
/* Segments plan's frame n times into a scratch buffer (the benchmark);
 * returns the bytes written. */
uint64_t offload_gso_bench(const uint8_t *frame, const struct gso_plan *plan, uint32_t n);
