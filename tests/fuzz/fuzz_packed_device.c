/* libFuzzer harness: the device side of the PACKED virtqueue
 * (snabbpy/lib/virtio/packed_device.c), both directions, against a guest
 * whose ring, availability flags and indirect tables come from the input.
 *
 * Guest memory is three regions, each between PROT_NONE guard pages, so a
 * read or write one byte outside a region faults:
 *   R0 (64 KiB) the driver and device event areas at its very end, data;
 *   R1 (16 KiB) right after R0 in guest physical space (a buffer crossing
 *               from R0 into R1 must be split), indirect tables at its start;
 *   R2 (16 KiB) far away, the descriptor ring at its very end.
 * Ring sizes are any of 1..256 (packed rings need no power of two); the
 * ring starts at any slot and wrap counter (a restart's SET_VRING_BASE), so
 * chains wrap past the end. Most slots are made available with the right
 * wrap bits for their lap, some with the wrong ones. A receive buffer may
 * point into the ring itself (the guest's own ring to spoil): the device
 * must stay within guest memory all the same, but the ring's flags are then
 * not checked.
 *
 * Input: config (5 bytes), per slot 6 bytes (decode_desc), the count of
 * slots made available, indirect descriptors, then per call an op byte and
 * RX packet lengths. */

#include "fuzz_common.h"

#include "fuzz_guest.h"

#define MAX_RING 256

static void put_desc(uint8_t *at, uint64_t addr, uint32_t len, uint16_t id, uint16_t flags)
{
    memcpy(at, &addr, 8);
    memcpy(at + 8, &len, 4);
    memcpy(at + 12, &id, 2);
    memcpy(at + 14, &flags, 2);
}

/* One descriptor from 6 input bytes: mode/flags, length (2), id, offset
 * (2). The mode picks where the address points: a region's data (most of
 * the time), across R0/R1, an indirect table in the pool, just outside
 * mapped memory, or anywhere. Availability bits are set by the caller. */
static void decode_desc(struct input *in, uint8_t *at, int rx, int in_table)
{
    uint8_t b0 = in_u8(in);
    uint16_t len = in_u16(in);
    uint8_t id = in_u8(in);
    uint16_t off = in_u16(in);
    uint16_t flags = 0;
    if ((b0 & 1) && !in_table)
        flags |= PK_DESC_F_NEXT;
    if ((b0 & 4) ? !rx : rx)
        flags |= PK_DESC_F_WRITE;
    uint64_t addr;
    uint32_t dlen = len & 0x1fff;
    unsigned mode = b0 >> 3;
    if (mode < 18) {
        int r = mode % 3;
        addr = gpa[r] + off % rsize[r];
    } else if (mode < 22) {
        addr = R1_GPA - 1 - (off & 0x3ff);
    } else if (mode < 27) {
        flags |= PK_DESC_F_INDIRECT;
        addr = R1_GPA + 16ull * (off % POOL_ENTRIES);
        dlen = 16u * (len % 33);
        if (len & 0x8000)
            dlen += len >> 12;
    } else if (mode < 30) {
        static const uint64_t edges[] = { R0_GPA, R1_GPA + R1_SIZE, R2_GPA, R2_GPA + R2_SIZE };
        addr = edges[off & 3] - (off >> 2 & 0xff) + 0x80;
    } else {
        addr = (uint64_t)off << (len & 63) | len;
        dlen = (uint32_t)len << (off & 15);
    }
    if (b0 & 2)
        flags |= PK_DESC_F_INDIRECT;
    put_desc(at, addr, dlen, id, flags);
}

static uint64_t reasons(const struct dr_stats *s)
{
    return s->bad_index + s->bad_addr + s->bad_chain + s->bad_indirect
         + s->bad_direction + s->bad_header + s->too_long;
}

/* Slots from position a to position b, going forward (both < one lap apart). */
static uint32_t distance(uint16_t a, uint16_t b, uint32_t size)
{
    uint32_t sa = a & (PK_WRAP - 1), sb = b & (PK_WRAP - 1);
    if ((a ^ b) & PK_WRAP)
        return sb + size - sa;
    return sb - sa;
}

/* Whether one of n descriptors at descs names memory in [lo, hi): a
 * guest may point a receive buffer at its own ring, and once the device
 * has written packets there the ring's flags say nothing about the device.
 * An address range running past 2^64 counts as overlapping. */
static int names_range(const uint8_t *descs, uint32_t n, uint64_t lo, uint64_t hi)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t a;
        uint32_t l;
        memcpy(&a, descs + 16 * i, 8);
        memcpy(&l, descs + 16 * i + 8, 4);
        if (l && a < hi && (a + l > lo || a + l < a))
            return 1;
    }
    return 0;
}

/* Makes n slots from pos available as a driver would (flags of their lap),
 * or, with lie, with whatever bits the input says. Returns the position
 * after them. */
static uint16_t make_avail(struct input *in, uint8_t *ring, uint32_t size, uint16_t pos,
                           uint32_t n, int lie)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *d = ring + 16 * (pos & (PK_WRAP - 1));
        uint16_t f;
        memcpy(&f, d + 14, 2);
        f &= PK_DESC_F_NEXT | PK_DESC_F_WRITE | PK_DESC_F_INDIRECT;
        if (lie && (in_u8(in) & 7) == 0)
            f |= in_u16(in) & (PK_DESC_F_AVAIL | PK_DESC_F_USED);
        else
            f |= pos & PK_WRAP ? PK_DESC_F_AVAIL : PK_DESC_F_USED;
        memcpy(d + 14, &f, 2);
        pos = pk_advance(pos, 1, size);
    }
    return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        map_guest();
        fuzz_packets_init();
        ready = 1;
    }
    struct input in = { data, size };
    uint8_t c0 = in_u8(&in), c1 = in_u8(&in), c2 = in_u8(&in);
    uint16_t b = in_u16(&in);
    int rx = c0 >> 4 & 1, lie = c0 >> 5 & 1;
    uint32_t flags = (c0 & 15) | (c2 & 0x40 ? PD_F_IN_ORDER : 0), qsize = 1 + c1 % MAX_RING;
    if (c2 & 0x80)
        qsize = 1u << (c2 % 9);
    for (int i = 0; i < 3; i++)
        memset(host[i], 0, rsize[i]);
    uint64_t ring_gpa = R2_GPA + R2_SIZE - 16ull * qsize;
    uint64_t driver_gpa = R0_GPA + R0_SIZE - 8, device_gpa = R0_GPA + R0_SIZE - 4;
    uint8_t *ring = host[2] + (ring_gpa - R2_GPA);
    uint8_t *driver_ev = host[0] + R0_SIZE - 8, *device_ev = host[0] + R0_SIZE - 4;

    struct dr_memory m;
    dr_memory_clear(&m);
    for (int i = 0; i < 3; i++)
        FUZZ_CHECK(dr_memory_add(&m, gpa[i], gpa[i] + USER_OFFSET, rsize[i],
                                 (uint64_t)(uintptr_t)host[i]) == 0);
    for (uint32_t i = 0; i < qsize; i++)
        decode_desc(&in, ring + 16 * i, rx, 0);
    for (uint32_t i = 0; i < POOL_ENTRIES && in.n; i++)
        decode_desc(&in, host[1] + 16 * i, rx, in_u8(&in) & 1);
    uint64_t ring_end = ring_gpa + 16ull * qsize;
    int aliased = rx && (names_range(ring, qsize, ring_gpa, ring_end)
                         || names_range(host[1], POOL_ENTRIES, ring_gpa, ring_end));
    /* Where the ring starts: any slot, any wrap counter. A slot past the
     * queue size must be refused. */
    uint16_t start = (uint16_t)((b & 0x7fff) % (qsize + (c2 & 1)) | (b & PK_WRAP));
    struct dr_stats s = {0};
    struct pd_queue q;
    int err = pd_queue_start(&q, &m, &s, qsize, ring_gpa + USER_OFFSET,
                             driver_gpa + USER_OFFSET, device_gpa + USER_OFFSET, start, flags);
    if ((start & 0x7fff) >= qsize) {
        FUZZ_CHECK(err == PD_E_BASE);
        return 0;
    }
    FUZZ_CHECK(err == 0 && q.device_event == device_ev);
    uint16_t dev_flags;
    memcpy(&dev_flags, device_ev + 2, 2);
    FUZZ_CHECK(dev_flags == PK_EVENT_DISABLE);
    uint16_t driver_pos = make_avail(&in, ring, qsize, start, in_u8(&in) % (qsize + 1), lie);
    memcpy(driver_ev, (uint16_t[]){ in_u16(&in), in_u16(&in) & 3 }, 4);

    struct link link;
    fuzz_link_init(&link);
    for (int call = 0; call < 4 && in.n; call++) {
        struct dr_stats before = s;
        uint16_t avail0 = q.last_avail;
        int max = in_u8(&in) % 70;
        int got;
        if (rx) {
            fuzz_fill(&in, &link, in_u8(&in) % 8, DR_MAX_PACKET, 0);
            int queued = link_nreadable(&link);
            got = pd_rx(&q, &link, max);
            FUZZ_CHECK(got >= 0 && got <= max && got <= queued);
            FUZZ_CHECK(queued - link_nreadable(&link)
                       == (int)(got + (s.too_long - before.too_long)));
            FUZZ_CHECK(s.packets - before.packets == (uint64_t)got);
        } else {
            got = pd_tx(&q, call & 1 ? NULL : &link, max);
            FUZZ_CHECK(got >= 0 && got <= max && link_nreadable(&link) == got);
            FUZZ_CHECK(s.chains - before.chains == (s.packets - before.packets)
                       + (s.discarded - before.discarded) + (reasons(&s) - reasons(&before)));
            fuzz_link_free(&link);
        }
        /* Every chain taken is handed back within the call, in ring order. */
        FUZZ_CHECK(q.used_idx == q.last_avail);
        uint32_t taken = distance(avail0, q.last_avail, qsize);
        FUZZ_CHECK(taken <= qsize);
        FUZZ_CHECK(s.chains - before.chains <= taken);
        FUZZ_CHECK(q.interrupt <= 1 && q.broken == 0);
        /* TX hands back len 0 with no WRITE; every used slot's flags say used. */
        for (uint16_t pos = avail0; pos != q.used_idx; pos = pk_advance(pos, 1, qsize)) {
            uint16_t f;
            memcpy(&f, ring + 16 * (pos & 0x7fff) + 14, 2);
            if (f & PK_DESC_F_USED) {
                FUZZ_CHECK(!!(f & PK_DESC_F_AVAIL) == !!(pos & PK_WRAP) || lie || aliased);
            }
        }
        FUZZ_CHECK(pd_queue_pending(&q) <= qsize);
        /* The guest makes more slots available (those it got back). */
        uint32_t room = qsize - distance(q.used_idx, driver_pos, qsize);
        if (in_u8(&in) & 1 && room)
            driver_pos = make_avail(&in, ring, qsize, driver_pos, 1 + in_u8(&in) % room, lie);
    }
    uint32_t state = pd_queue_stop(&q);
    FUZZ_CHECK((state & 0xffff) == q.last_avail && state >> 16 == q.used_idx);
    FUZZ_CHECK(pd_tx(&q, &link, 10) == 0);
    fuzz_link_free(&link);
    check_no_leak();
    return 0;
}
