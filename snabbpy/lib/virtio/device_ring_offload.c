/* Device side of a split virtqueue (see device_ring.h): what the guest's
 * TX path does for a frame whose virtio-net header asks for an offload
 * (offload.h has the byte work). A frame that asks for GSO is copied whole
 * into one scratch frame (it may be 64 KiB), then cut into packets; one
 * asking only for a checksum is finished in its packet.
 * Compiled before device_ring_tx.c: see C_PARTS in __init__.py. */

/* The GSO frame being cut: one at a time per process (a breath runs one
 * app at a time; workers are processes). */
static uint8_t dr_gso_frame[DR_MAX_GSO_FRAME];

static void count_offload(struct dr_stats *s, int reason)
{
    switch (reason) {
    case OFF_BAD_CSUM: s->bad_csum++; break;
    case OFF_BAD_GSO_TYPE: s->bad_gso_type++; break;
    case OFF_BAD_GSO_FRAME: s->bad_gso_frame++; break;
    case OFF_BAD_GSO_SIZE: s->bad_gso_size++; break;
    }
}

/* Header fields (little-endian, virtio 1.x; legacy headers are the same
 * on every host snabbpy runs on). */
static inline uint32_t hdr16(const uint8_t *hdr, int at) { return hdr[at] | hdr[at + 1] << 8; }

/* True when the header (complete) sends the frame to the GSO path; flags:
 * the queue's DR_F_* (split and packed rings share this). */
static inline int tx_wants_gso(uint32_t flags, const uint8_t *hdr)
{
    return hdr[1] != 0 && (flags & (DR_F_TSO4 | DR_F_TSO6));
}

/* The header asks for something not negotiated: today's refusal. */
static inline int tx_header_refused(uint32_t flags, const uint8_t *hdr)
{
    return (hdr[1] != 0 && !(flags & (DR_F_TSO4 | DR_F_TSO6)))
        || ((hdr[0] & DR_HDR_NEEDS_CSUM) && !(flags & DR_F_CSUM));
}

/* Finishes a NEEDS_CSUM frame in place; nonzero (counted) when refused. */
static int tx_finish_csum(struct dr_stats *s, const uint8_t *hdr, uint8_t *frame, uint32_t len)
{
    int r = offload_csum(frame, len, hdr16(hdr, 6), hdr16(hdr, 8));
    if (r)
        count_offload(s, r);
    else
        s->csum_finished++;
    return r;
}

/* Cuts the GSO frame into packets on out; returns the segments sent, 0 for
 * a frame refused (counted) or discarded (out NULL), -1 when the segments
 * do not fit the link or packets run out now (the chain is left queued). */
static int tx_segment(uint32_t flags, struct dr_stats *s, const uint8_t *hdr,
                      const uint8_t *frame, uint32_t len, struct link *out)
{
    struct gso_plan plan;
    int r = offload_gso_plan(frame, len, hdr[1], hdr16(hdr, 4), flags, &plan);
    if (r) {
        count_offload(s, r);
        return 0;
    }
    if (!out) {
        s->discarded++;
        return 0;
    }
    if ((int)plan.nseg > link_nwritable(out))
        return -1;
    struct packet *segs[DR_MAX_GSO_SEGMENTS];
    for (uint32_t i = 0; i < plan.nseg; i++) {
        if (!(segs[i] = packet_allocate())) {
            while (i)
                packet_free(segs[--i]);
            s->no_memory++;
            return -1;
        }
    }
    for (uint32_t i = 0; i < plan.nseg; i++) {
        struct packet *p = segs[i];
        p->length = (uint16_t)offload_gso_segment(frame, &plan, i, p->buf + p->headroom);
        s->packets++;
        s->bytes += p->length;
        link_transmit(out, p);
    }
    s->gso_frames++;
    s->gso_segments += plan.nseg;
    return (int)plan.nseg;
}
