/* libFuzzer harness: vguest's driver side of the PACKED virtqueue
 * (snabbpy/lib/virtio/packed_driver.c) against a device that writes
 * whatever the input says into the ring and into the buffers it was given.
 *
 * The input is a queue setup (4 bytes) and then operations, one byte each
 * plus operands: the driver transmits (one round or a whole push),
 * refills, reclaims, receives, or the
 * device hands buffers back. A hand-back mostly writes a used descriptor
 * at the device's used position, with the right wrap bits, naming a buffer
 * really in flight with a length near the buffer's and num_buffers near
 * the truth, so the fuzzer reaches merging and reclaiming; sometimes it
 * writes any id, any flags, at any slot. With IN_ORDER (a bit of the
 * setup) the hand-backs are mostly batches: one used descriptor at the
 * device's position naming a slot a little further on, the device then
 * skipping past it. After every operation the driver's private
 * bookkeeping must stay whole (every id either free once or holding a
 * packet; slots out never above ids in flight; in order, exactly the slots
 * out hold packets), and at the end every packet comes back. */

#include "fuzz_common.h"

#define MAX_SIZE 256

static uint8_t ring[16 * MAX_SIZE] __attribute__((aligned(16)));
static struct pk_event events[2];
static struct packet *owner[MAX_SIZE];
static uint16_t free_ids[MAX_SIZE];
static uint32_t used_len[MAX_SIZE];

static void check_bookkeeping(struct pvirtq *vq)
{
    static uint8_t seen[MAX_SIZE];
    memset(seen, 0, sizeof seen);
    FUZZ_CHECK(vq->num_free <= vq->size);
    if (vq->in_order) {  /* ids are slots: the ones out hold packets, no other */
        FUZZ_CHECK(vq->seen <= vq->out && vq->num_free + vq->out == vq->size);
        for (uint32_t k = 0; k < vq->size; k++) {
            uint16_t slot = pk_advance(vq->used_pos, k, vq->size) & 0x7fff;
            FUZZ_CHECK((vq->owner[slot] != NULL) == (k < vq->out));
        }
        return;
    }
    for (uint32_t n = 0; n < vq->num_free; n++) {
        uint16_t id = vq->free_ids[n];
        FUZZ_CHECK(id < vq->size && !seen[id] && vq->owner[id] == NULL);
        seen[id] = 1;
    }
    uint32_t held = 0;
    for (uint32_t i = 0; i < vq->size; i++)
        held += vq->owner[i] != NULL;
    FUZZ_CHECK(held + vq->num_free == vq->size);
    FUZZ_CHECK(vq->out <= held);
    FUZZ_CHECK((vq->avail_pos & 0x7fff) < vq->size && (vq->used_pos & 0x7fff) < vq->size);
}

/* The ids in flight, in order; returns how many. */
static int ids_in_flight(struct pvirtq *vq, uint16_t *out)
{
    int n = 0;
    for (uint32_t i = 0; i < vq->size; i++)
        if (vq->owner[i])
            out[n++] = (uint16_t)i;
    return n;
}

/* The device writes one used descriptor at its position dev (and moves). */
static void put_used(struct pvirtq *vq, uint16_t *dev, uint16_t id, uint32_t len, uint16_t extra)
{
    struct pk_desc *d = (struct pk_desc *)(ring + 16 * (*dev & 0x7fff));
    d->id = id;
    d->len = len;
    uint16_t f = *dev & PK_WRAP ? PK_DESC_F_AVAIL | PK_DESC_F_USED : 0;
    __atomic_store_n(&d->flags, (uint16_t)(f ^ extra), __ATOMIC_RELEASE);
    *dev = pk_advance(*dev, 1, vq->size);
}

/* In order: the id of the slot k after the device's position. */
static uint16_t slot_after(struct pvirtq *vq, uint16_t dev, uint32_t k)
{
    return pk_advance(dev, k, vq->size) & 0x7fff;
}

static void set_num_buffers(struct pvirtq *vq, uint16_t id, uint16_t nb)
{
    struct packet *p = vq->owner[id];
    if (p && vq->hdr_size == 12)
        memcpy(p->buf + p->headroom - vq->hdr_size + 10, &nb, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_packets_init();
    struct input in = { data, size };
    uint8_t c0 = in_u8(&in), c1 = in_u8(&in);
    uint16_t rx_buf = in_u16(&in);

    struct virtq_stats stats = {0};
    struct pvirtq vq = {0};
    vq.desc = ring;
    vq.driver_event = &events[0];
    vq.device_event = &events[1];
    vq.owner = owner;
    vq.free_ids = free_ids;
    vq.used_len = used_len;
    vq.in_order = c0 >> 5 & 1;
    vq.stats = &stats;
    vq.size = c1 & 0x80 ? 1u << (c1 % 9) : 1 + c1 % MAX_SIZE;
    vq.hdr_size = c0 & 1 ? 12 : 10;
    vq.event_idx = c0 >> 1 & 1;
    vq.mrg_rxbuf = (c0 >> 3 & 1) && vq.hdr_size == 12;
    vq.use_checksum = c0 >> 4 & 1;
    vq.rx_buffer_size = 64 + rx_buf % (PACKET_PAYLOAD_SIZE - 64 + 1);
    memset(events, 0, sizeof events);
    pvirtq_reset(&vq);
    FUZZ_CHECK(events[0].flags == PK_EVENT_DISABLE);

    struct link tx, rx;
    fuzz_link_init(&tx);
    fuzz_link_init(&rx);
    uint16_t ids[MAX_SIZE];
    uint16_t dev = PK_WRAP;  /* the device's used position */
    int ops = 0;
    while (in.n && ops++ < 256) {
        uint8_t op = in_u8(&in);
        switch (op % 8) {
        case 0: {                                   /* transmit */
            fuzz_fill(&in, &tx, 1 + in_u8(&in) % 16, PACKET_PAYLOAD_SIZE, op & 0x80);
            if (op & 0x40)                          /* the breath's one call */
                FUZZ_CHECK(pvirtq_tx_push(&vq, &tx, in_u8(&in)) <= 1);
            else
                FUZZ_CHECK(pvirtq_tx_packets(&vq, &tx, in_u8(&in)) >= 0);
            fuzz_link_free(&tx);
            break;
        }
        case 1:
            FUZZ_CHECK(pvirtq_rx_refill(&vq) >= 0);
            break;
        case 2: {                                   /* the device hands one back */
            int n = ids_in_flight(&vq, ids);
            uint8_t how = in_u8(&in);
            uint8_t skip = in_u8(&in) % 5;          /* in order: the batch's slots - 1 */
            uint16_t id = n && how < 224 ? ids[in_u8(&in) % n] : in_u16(&in);
            if (vq.in_order && how < 224)
                id = slot_after(&vq, dev, skip);
            uint32_t len = in_u16(&in);
            if (how & 1)
                len = vq.hdr_size + len % (vq.rx_buffer_size + 2);
            if (id < vq.size)
                set_num_buffers(&vq, id, in_u8(&in) % 5);
            put_used(&vq, &dev, id, len, how & 2 ? in_u16(&in) & (PK_DESC_F_AVAIL | PK_DESC_F_USED) : 0);
            if (vq.in_order && how < 224)
                dev = pk_advance(dev, skip, vq.size);
            break;
        }
        case 3: {                                   /* a whole merged packet */
            int n = ids_in_flight(&vq, ids);
            int k = 1 + in_u8(&in) % 5;
            if (k > n)
                k = n;
            if (vq.in_order && k && in_u8(&in) & 1) { /* one descriptor for all k */
                set_num_buffers(&vq, slot_after(&vq, dev, 0), (uint16_t)k);
                uint32_t len = in_u16(&in) % (vq.rx_buffer_size + 1);
                put_used(&vq, &dev, slot_after(&vq, dev, (uint32_t)k - 1), len, 0);
                dev = pk_advance(dev, (uint32_t)k - 1, vq.size);
                break;
            }
            for (int j = 0; j < k; j++) {
                uint16_t id = vq.in_order ? slot_after(&vq, dev, 0) : ids[(in_u8(&in) + j) % n];
                uint32_t len = in_u16(&in) % (vq.rx_buffer_size + 1);
                if (j == 0) {
                    set_num_buffers(&vq, id, (uint16_t)k);
                    len += vq.hdr_size;
                }
                put_used(&vq, &dev, id, len, 0);
            }
            break;
        }
        case 4:
            if (op & 0x40)                          /* push with no input link */
                FUZZ_CHECK(pvirtq_tx_push(&vq, NULL, 1 << 20) == 0);
            else
                FUZZ_CHECK(pvirtq_tx_reclaim(&vq) >= 0);
            break;
        case 5: {
            int got = pvirtq_rx_packets(&vq, &rx, 1 + in_u8(&in));
            FUZZ_CHECK(got >= 0 && got == link_nreadable(&rx));
            while (!link_empty(&rx)) {
                struct packet *p = link_receive(&rx);
                FUZZ_CHECK(p->length <= PACKET_PAYLOAD_SIZE);
                packet_free(p);
            }
            break;
        }
        case 6: {                                   /* scribbles on any slot */
            uint16_t slot = in_u16(&in) % vq.size;
            struct pk_desc *d = (struct pk_desc *)(ring + 16 * slot);
            d->id = in_u16(&in);
            d->len = in_u32(&in);
            d->flags = in_u16(&in);
            if (op & 0x40)                          /* and moves its position */
                dev = (uint16_t)(in_u16(&in) % vq.size | (op & 0x20 ? PK_WRAP : 0));
            break;
        }
        case 7: {                                   /* notification wishes */
            events[1].off_wrap = in_u16(&in);
            events[1].flags = in_u8(&in) & 3;
            FUZZ_CHECK(pvirtq_notify_needed(&vq) <= 1);
            break;
        }
        }
        check_bookkeeping(&vq);
        FUZZ_CHECK(pvirtq_in_flight(&vq) <= (int)vq.size);
    }
    pvirtq_release_all(&vq);
    check_bookkeeping(&vq);
    FUZZ_CHECK(vq.num_free == vq.size && vq.out == 0);
    fuzz_link_free(&tx);
    fuzz_link_free(&rx);
    check_no_leak();
    return 0;
}
