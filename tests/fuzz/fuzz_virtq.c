/* libFuzzer harness: vguest's driver side of the split virtqueue
 * (snabbpy/lib/virtio/virtq.c) against a device that writes whatever the
 * input says into the used ring and into the buffers it was given.
 *
 * The input is a queue setup (4 bytes) and then operations, one byte each
 * plus operands: the driver transmits (one round or a whole push),
 * refills, reclaims, receives, or the device completes a buffer. A completion mostly names a buffer really in
 * flight (picked among them by the input), with a length near the buffer's
 * and a num_buffers field near the truth, so the fuzzer reaches merging and
 * reclaiming instead of stopping at bad_id. After every operation the
 * driver's private bookkeeping must stay whole: every descriptor is either
 * free or in exactly one chain, and at the end every packet comes back. */

#include "fuzz_common.h"

#define MAX_SIZE 256

static struct vring_desc desc[MAX_SIZE];
static uint8_t avail_mem[4 + 2 * MAX_SIZE + 2] __attribute__((aligned(8)));
static uint8_t used_mem[4 + 8 * MAX_SIZE + 2] __attribute__((aligned(8)));
static struct packet *owner[MAX_SIZE];
static uint16_t next_[MAX_SIZE];
static uint8_t ndesc[MAX_SIZE];

static void check_bookkeeping(struct virtq *vq)
{
    uint32_t in_chains = 0;
    for (uint32_t i = 0; i < vq->size; i++) {
        FUZZ_CHECK(vq->ndesc[i] <= 2);
        FUZZ_CHECK((vq->ndesc[i] != 0) == (vq->owner[i] != NULL));
        in_chains += vq->ndesc[i];
    }
    FUZZ_CHECK(in_chains + vq->num_free == vq->size);
    /* The free list holds num_free distinct descriptors. */
    static uint8_t seen[MAX_SIZE];
    memset(seen, 0, sizeof seen);
    uint16_t d = vq->free_head;
    for (uint32_t n = 0; n < vq->num_free; n++) {
        FUZZ_CHECK(d < vq->size && !seen[d]);
        seen[d] = 1;
        d = vq->next[d];
    }
}

/* The in-flight heads, in index order; returns how many. */
static int heads_in_flight(struct virtq *vq, uint16_t *out)
{
    int n = 0;
    for (uint32_t i = 0; i < vq->size; i++)
        if (vq->ndesc[i])
            out[n++] = (uint16_t)i;
    return n;
}

/* FUZZ_STATS=1 in the environment: at exit, the counters summed over every
 * input, to see how deep the inputs reach. */
static struct virtq_stats total;
static uint64_t merged;   /* packets received from more than one buffer */

static void print_totals(void)
{
    fprintf(stderr, "virtq: packets=%llu bytes=%llu bad_id=%llu bad_len=%llu bad_idx=%llu "
            "oversize=%llu bad_num_buffers=%llu notifications=%llu nomem=%llu merged=%llu\n",
            (unsigned long long)total.packets, (unsigned long long)total.bytes,
            (unsigned long long)total.bad_id, (unsigned long long)total.bad_len,
            (unsigned long long)total.bad_idx, (unsigned long long)total.oversize,
            (unsigned long long)total.bad_num_buffers,
            (unsigned long long)total.notifications, (unsigned long long)total.nomem,
            (unsigned long long)merged);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready && getenv("FUZZ_STATS"))
        atexit(print_totals);
    ready = 1;
    fuzz_packets_init();
    struct input in = { data, size };
    uint8_t c0 = in_u8(&in), c1 = in_u8(&in);
    uint16_t rx_buf = in_u16(&in);

    struct virtq_stats stats = {0};
    struct virtq vq = {0};
    vq.desc = desc;
    vq.avail = (struct vring_avail *)avail_mem;
    vq.used = (struct vring_used *)used_mem;
    vq.size = 1u << (c1 % 9);
    vq.used_event = (uint16_t *)(avail_mem + 4 + 2 * vq.size);
    vq.avail_event = (uint16_t *)(used_mem + 4 + 8 * vq.size);
    vq.owner = owner;
    vq.next = next_;
    vq.ndesc = ndesc;
    vq.stats = &stats;
    vq.hdr_size = c0 & 1 ? 12 : 10;
    vq.event_idx = c0 >> 1 & 1;
    vq.one_desc = c0 >> 2 & 1;
    vq.mrg_rxbuf = (c0 >> 3 & 1) && vq.hdr_size == 12;
    vq.use_checksum = c0 >> 4 & 1;
    /* As the VGuest app sets it: up to a packet, at least a header's worth. */
    vq.rx_buffer_size = 64 + rx_buf % (PACKET_PAYLOAD_SIZE - 64 + 1);
    memset(desc, 0, sizeof desc);
    memset(used_mem, 0, sizeof used_mem);
    virtq_reset(&vq);

    struct link tx, rx;
    fuzz_link_init(&tx);
    fuzz_link_init(&rx);
    uint16_t heads[MAX_SIZE];
    uint16_t dev_used = 0;   /* the device's used idx */
    int ops = 0;
    while (in.n && ops++ < 256) {
        uint8_t op = in_u8(&in);
        switch (op % 8) {
        case 0: {                                   /* transmit */
            fuzz_fill(&in, &tx, 1 + in_u8(&in) % 16, PACKET_PAYLOAD_SIZE, op & 0x80);
            if (op & 0x40) {                        /* the breath's one call */
                FUZZ_CHECK(virtq_tx_push(&vq, &tx, in_u8(&in)) <= 1);
            } else {
                int sent = virtq_tx_packets(&vq, &tx, in_u8(&in));
                FUZZ_CHECK(sent >= 0);
            }
            fuzz_link_free(&tx);
            break;
        }
        case 1:
            FUZZ_CHECK(virtq_rx_refill(&vq) >= 0);
            break;
        case 3: if (vq.mrg_rxbuf && op & 0x40) {     /* a whole merged packet */
            int n = heads_in_flight(&vq, heads);
            int k = 1 + in_u8(&in) % 5;
            if (k > n)
                k = n;
            for (int j = 0; j < k; j++) {
                uint16_t id = heads[(in_u8(&in) + j) % n];
                uint32_t len = vq.hdr_size + in_u16(&in) % (vq.rx_buffer_size + 1);
                if (j == 0) {
                    uint16_t nb = (uint16_t)k;
                    struct packet *p = vq.owner[id];
                    memcpy(p->buf + p->headroom - vq.hdr_size + 10, &nb, 2);
                } else {
                    len -= vq.hdr_size;
                }
                struct vring_used_elem *e = &vq.used->ring[dev_used & (vq.size - 1)];
                e->id = id;
                e->len = len;
                dev_used++;
            }
            __atomic_store_n(&vq.used->idx, dev_used, __ATOMIC_RELEASE);
            break;
        }
        /* fall through */
        case 2: {                                   /* the device completes */
            int n = heads_in_flight(&vq, heads);
            uint8_t how = in_u8(&in);
            uint32_t id = n && how < 224 ? heads[in_u8(&in) % n] : in_u16(&in);
            uint32_t len = in_u16(&in);
            if (how & 1)
                len = vq.hdr_size + len % (vq.rx_buffer_size + 2);
            if (id < vq.size && vq.ndesc[id]) {
                /* The device writes the header it owns: num_buffers. */
                uint16_t nb = in_u8(&in) % 5;
                struct packet *p = vq.owner[id];
                memcpy(p->buf + p->headroom - vq.hdr_size + 10, &nb, vq.hdr_size == 12 ? 2 : 0);
            }
            struct vring_used_elem *e = &vq.used->ring[dev_used & (vq.size - 1)];
            e->id = id;
            e->len = len;
            dev_used++;
            __atomic_store_n(&vq.used->idx, dev_used, __ATOMIC_RELEASE);
            break;
        }
        case 4:
            if (op & 0x40)                          /* push with no input link */
                FUZZ_CHECK(virtq_tx_push(&vq, NULL, 1 << 20) == 0);
            else
                FUZZ_CHECK(virtq_tx_reclaim(&vq) >= 0);
            break;
        case 5: {
            int got = virtq_rx_packets(&vq, &rx, 1 + in_u8(&in));
            FUZZ_CHECK(got >= 0 && got == link_nreadable(&rx));
            while (!link_empty(&rx)) {
                struct packet *p = link_receive(&rx);
                FUZZ_CHECK(p->length <= PACKET_PAYLOAD_SIZE);
                merged += p->length > vq.rx_buffer_size;
                packet_free(p);
            }
            break;
        }
        case 6:                                     /* the device lies about idx */
            dev_used = (uint16_t)(dev_used + in_u16(&in));
            __atomic_store_n(&vq.used->idx, dev_used, __ATOMIC_RELEASE);
            break;
        case 7: {                                   /* notification wishes */
            uint16_t v = in_u16(&in);
            *vq.avail_event = v;
            vq.used->flags = v & 1;
            FUZZ_CHECK(virtq_notify_needed(&vq) <= 1);
            break;
        }
        }
        check_bookkeeping(&vq);
        FUZZ_CHECK(virtq_in_flight(&vq) <= (int)vq.size);
    }
    const uint64_t *from = (const uint64_t *)&stats;
    uint64_t *to = (uint64_t *)&total;
    for (size_t i = 0; i < sizeof stats / 8; i++)
        to[i] += from[i];
    virtq_release_all(&vq);
    check_bookkeeping(&vq);
    FUZZ_CHECK(vq.num_free == vq.size);
    fuzz_link_free(&tx);
    fuzz_link_free(&rx);
    check_no_leak();
    return 0;
}
