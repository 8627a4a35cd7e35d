/* Packed virtqueue layout (virtio 1.1+ section 2.8), shared by both ends:
 * the device side (packed_device.c) and vguest's driver side
 * (packed_driver.c). Laid out exactly as in guest memory (little-endian).
 *
 * A packed ring is ONE array of descriptors that both sides write: the
 * driver makes a descriptor available by writing it with flags
 * AVAIL = its wrap counter, USED = the inverse; the device hands a buffer
 * back by overwriting one descriptor (at its own used position) with the
 * buffer id, the length written and AVAIL = USED = its wrap counter. Each
 * side's wrap counter starts at 1 and flips each time its position passes
 * the end of the ring. Two 4-byte event suppression structures sit beside
 * the ring: the driver's (the driver area: when it wants interrupts) and
 * the device's (the device area: when it wants notifications).
 *
 * Positions are kept as vhost-user carries them: bits 0-14 the slot,
 * bit 15 the wrap counter (PK_WRAP).
 *
 * Same rules as vring.h: readable by cffi's cdef (no #include, no #if,
 * plain integer #defines), include <stdint.h> before it.
 */

#define PK_DESC_F_NEXT 1
#define PK_DESC_F_WRITE 2
#define PK_DESC_F_INDIRECT 4
#define PK_DESC_F_AVAIL 128
#define PK_DESC_F_USED 32768
#define PK_WRAP 32768
#define PK_MAX_QUEUE_SIZE 32768

/* Event suppression flags (the low two bits of pk_event.flags). */
#define PK_EVENT_ENABLE 0
#define PK_EVENT_DISABLE 1
#define PK_EVENT_DESC 2    /* only with VIRTIO_F_RING_EVENT_IDX: at off_wrap */

struct pk_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;     /* buffer id: the driver's name for the buffer */
    uint16_t flags;  /* PK_DESC_F_* */
};

struct pk_event {
    uint16_t off_wrap; /* bits 0-14 slot, bit 15 wrap counter */
    uint16_t flags;    /* PK_EVENT_* */
};

/* Did the side writing positions old..new (with new's wrap counter) pass
 * the slot the other side asked to hear of (event: its off_wrap, flags:
 * its PK_EVENT_*)? event_idx: RING_EVENT_IDX negotiated; size: ring size;
 * old == new means nothing was written. */
int pk_need_event(uint16_t flags, uint16_t off_wrap, uint16_t old, uint16_t new_pos,
                  uint32_t size, int event_idx);
/* Position one ring slot, or n slots (n <= size), after pos. */
uint16_t pk_advance(uint16_t pos, uint32_t n, uint32_t size);
