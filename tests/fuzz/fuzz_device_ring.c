/* libFuzzer harness: the device side of the split virtqueue
 * (snabbpy/lib/virtio/device_ring.c), both directions, against a guest
 * whose descriptors, avail ring and indirect tables come from the input.
 *
 * Guest memory is three regions, each mapped between PROT_NONE guard
 * pages, so a read or write one byte outside a region faults:
 *   R0 (64 KiB) avail ring at its start, used ring at its very end, data;
 *   R1 (16 KiB) right after R0 in guest physical space (a buffer crossing
 *               from R0 into R1 must be split), indirect tables at its start;
 *   R2 (16 KiB) far away, the descriptor table at its very end.
 * The input is decoded into structured fields so that most addresses
 * translate and chains have a controlled length: the fuzzer spends its time
 * in chain walking, indirect tables and loops, not in failed translation.
 *
 * Input: config (4 bytes), then per ring descriptor 6 bytes, the avail
 * entries, indirect descriptors, RX packet lengths. See decode_desc. */

#include "fuzz_common.h"

#include "fuzz_guest.h"

struct layout {
    uint32_t size;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint8_t *desc, *avail, *used;
};

static void put_desc(uint8_t *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    memcpy(at, &addr, 8);
    memcpy(at + 8, &len, 4);
    memcpy(at + 12, &flags, 2);
    memcpy(at + 14, &next, 2);
}

/* One descriptor from 6 input bytes: mode/flags, length (2), next, offset (2).
 * The mode picks where the address points: into a region's data (most of
 * the time), across the R0/R1 boundary, at an indirect table in the pool,
 * just outside mapped memory, or anywhere. */
static void decode_desc(struct input *in, uint8_t *at, int rx)
{
    uint8_t b0 = in_u8(in);
    uint16_t len = in_u16(in);
    uint8_t next = in_u8(in);
    uint16_t off = in_u16(in);
    uint16_t flags = 0;
    if (b0 & 1)
        flags |= DR_DESC_NEXT;
    if ((b0 & 4) ? !rx : rx)       /* bit 2: the wrong direction */
        flags |= DR_DESC_WRITE;
    uint64_t addr;
    uint32_t dlen = len & 0x1fff;
    unsigned mode = b0 >> 3;
    if (mode < 18) {                       /* data in one of the regions */
        int r = mode % 3;
        addr = gpa[r] + off % rsize[r];
    } else if (mode < 22) {                /* crossing R0 -> R1 */
        addr = R1_GPA - 1 - (off & 0x3ff);
    } else if (mode < 27) {                /* an indirect table */
        flags |= DR_DESC_INDIRECT;
        addr = R1_GPA + 16ull * (off % POOL_ENTRIES);
        dlen = 16u * (len % 33);
        if (len & 0x8000)
            dlen += len >> 12;             /* not a multiple of 16 */
    } else if (mode < 30) {                /* just outside guest memory */
        static const uint64_t edges[] = { R0_GPA, R1_GPA + R1_SIZE, R2_GPA, R2_GPA + R2_SIZE };
        addr = edges[off & 3] - (off >> 2 & 0xff) + 0x80;
    } else {                               /* anywhere, any length */
        addr = (uint64_t)off << (len & 63) | len;
        dlen = (uint32_t)len << (off & 15);
    }
    if (b0 & 2)                            /* INDIRECT where not expected */
        flags |= DR_DESC_INDIRECT;
    put_desc(at, addr, dlen, flags, next);
}

static int in_guest(const uint8_t *p, uint64_t len)
{
    for (int i = 0; i < 3; i++)
        if (p >= host[i] && p + len <= host[i] + rsize[i])
            return 1;
    return 0;
}

static uint64_t reasons(const struct dr_stats *s)
{
    return s->bad_index + s->bad_addr + s->bad_chain + s->bad_indirect
         + s->bad_direction + s->bad_header + s->too_long;
}

/* The memory table alone: whatever regions are offered, the accepted ones
 * never overlap or wrap, and a translation lands inside its region. Host
 * addresses are made up and never dereferenced here. */
static void fuzz_memory_table(struct input *in)
{
    struct dr_memory m;
    dr_memory_clear(&m);
    int n = in_u8(in) % 12;
    for (int i = 0; i < n; i++) {
        uint64_t g = in_u64(in), u = in_u64(in), sz = in_u64(in) >> (in_u8(in) & 63);
        int r = dr_memory_add(&m, g, u, sz, 0x1000000ull * (i + 1));
        FUZZ_CHECK(r == 0 || r == DR_E_FULL || r == DR_E_REGION);
        FUZZ_CHECK(r != DR_E_FULL || m.nregions == DR_MAX_REGIONS);
    }
    for (uint32_t i = 0; i < m.nregions; i++) {
        struct dr_region *a = &m.regions[i];
        FUZZ_CHECK(a->size && a->guest_phys + a->size - 1 >= a->guest_phys);
        for (uint32_t j = i + 1; j < m.nregions; j++) {
            struct dr_region *b = &m.regions[j];
            FUZZ_CHECK(!(a->guest_phys < b->guest_phys + b->size
                         && b->guest_phys < a->guest_phys + a->size));
        }
    }
    for (int k = 0; k < 8 && in->n; k++) {
        uint64_t a = in_u64(in), len = in_u16(in);
        uint8_t *h = (k & 1) ? dr_translate_user(&m, a, len) : dr_translate(&m, a, len);
        if (!h)
            continue;
        int found = 0;
        for (uint32_t i = 0; i < m.nregions; i++) {
            struct dr_region *r = &m.regions[i];
            uint64_t base = (k & 1) ? r->user_addr : r->guest_phys;
            if (a - base < r->size) {
                FUZZ_CHECK(len <= r->size - (a - base));
                FUZZ_CHECK((uint64_t)(uintptr_t)h == r->host_addr + (a - base));
                found = 1;
            }
        }
        FUZZ_CHECK(found);
    }
}

/* FUZZ_STATS=1 in the environment: at exit, the ring counters summed over
 * every input run, to see how deep the inputs reach (docs/fuzzing.md). */
static struct dr_stats total[2];

static void print_totals(void)
{
    static const char *names[] = { "packets", "bytes", "chains", "interrupts",
        "bad_avail_idx", "bad_index", "bad_addr", "bad_chain", "bad_indirect",
        "bad_direction", "bad_header", "too_long", "no_memory", "no_buffers", "discarded" };
    for (int d = 0; d < 2; d++) {
        const uint64_t *v = (const uint64_t *)&total[d];
        fprintf(stderr, "%s:", d ? "rx" : "tx");
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            fprintf(stderr, " %s=%llu", names[i], (unsigned long long)v[i]);
        fprintf(stderr, "\n");
    }
}

static void add_totals(struct dr_stats *t, const struct dr_stats *s)
{
    uint64_t *a = (uint64_t *)t;
    const uint64_t *b = (const uint64_t *)s;
    for (size_t i = 0; i < sizeof *s / 8; i++)
        a[i] += b[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        map_guest();
        fuzz_packets_init();
        if (getenv("FUZZ_STATS"))
            atexit(print_totals);
        ready = 1;
    }
    struct input in = { data, size };
    uint8_t c0 = in_u8(&in), c1 = in_u8(&in);
    uint16_t base = in_u16(&in);
    if (c1 == 0xff) {
        fuzz_memory_table(&in);
        return 0;
    }
    int rx = c0 >> 4 & 1, ring_flags = c0 & 15;
    struct layout L;
    L.size = 1u << (c1 % 9);
    for (int i = 0; i < 3; i++)
        memset(host[i], 0, rsize[i]);
    uint32_t event = ring_flags & DR_F_EVENT_IDX ? 2 : 0;
    L.avail_gpa = R0_GPA;
    L.used_gpa = (R0_GPA + R0_SIZE - (4 + 8ull * L.size + event)) & ~3ull;
    L.desc_gpa = R2_GPA + R2_SIZE - 16ull * L.size;
    L.avail = host[0];
    L.used = host[0] + (L.used_gpa - R0_GPA);
    L.desc = host[2] + (L.desc_gpa - R2_GPA);

    struct dr_memory m;
    dr_memory_clear(&m);
    for (int i = 0; i < 3; i++)
        FUZZ_CHECK(dr_memory_add(&m, gpa[i], gpa[i] + USER_OFFSET, rsize[i],
                                 (uint64_t)(uintptr_t)host[i]) == 0);
    /* Overlaps and empty regions are refused. */
    FUZZ_CHECK(dr_memory_add(&m, R1_GPA - 1, 0x1000, 2, 0x1000) == DR_E_REGION);
    FUZZ_CHECK(dr_memory_add(&m, 0, 0, 0, 0x1000) == DR_E_REGION);

    for (uint32_t i = 0; i < L.size; i++)
        decode_desc(&in, L.desc + 16 * i, rx);
    /* Avail entries: a count, then heads (mostly in range). 255: the guest
     * moves its index impossibly far. */
    uint8_t k = in_u8(&in);
    uint16_t avail_index = base;
    uint32_t navail = k == 255 ? in_u16(&in) : k % (L.size + 1);
    for (uint32_t i = 0; i < navail && i < L.size; i++) {
        uint16_t head = in_u8(&in);
        if (head & 0x80 && L.size <= 128)
            head &= (uint16_t)(L.size - 1);
        memcpy(L.avail + 4 + 2 * ((base + i) & (L.size - 1)), &head, 2);
    }
    avail_index = (uint16_t)(base + navail);
    memcpy(L.avail + 2, &avail_index, 2);
    uint16_t avail_flags = c0 >> 5 & 1;  /* NO_INTERRUPT */
    memcpy(L.avail, &avail_flags, 2);
    uint16_t used_event = in_u16(&in);
    memcpy(L.avail + 4 + 2 * L.size, &used_event, 2);
    uint16_t used_start = in_u16(&in);
    memcpy(L.used + 2, &used_start, 2);

    int npool = in_u8(&in) % (POOL_ENTRIES / 4);
    for (int i = 0; i < npool; i++)
        decode_desc(&in, host[1] + 16 * i, rx);

    struct dr_stats s = {0};
    struct dr_queue q;
    int r = dr_queue_start(&q, &m, &s, L.size, L.desc_gpa + USER_OFFSET,
                           L.avail_gpa + USER_OFFSET, L.used_gpa + USER_OFFSET,
                           base, (uint32_t)ring_flags);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(q.desc == L.desc && q.avail == L.avail && q.used == L.used);

    struct link link;
    fuzz_link_init(&link);
    int max = (c0 >> 6) == 3 ? 1 << 20 : (c0 >> 6) * 64 + 1;
    int calls = 1 + (in_u8(&in) & 3);
    for (int call = 0; call < calls; call++) {
        struct dr_stats before = s;
        uint16_t last_avail = q.last_avail, used_idx = q.used_idx;
        uint16_t offered = (uint16_t)(avail_index - q.last_avail);
        int got;
        if (rx) {
            int npkt = 1 + in_u8(&in) % 32;
            FUZZ_CHECK(fuzz_fill(&in, &link, npkt, DR_MAX_PACKET, 0) == npkt
                       || link_full(&link));
            int queued = link_nreadable(&link);
            got = dr_rx(&q, &link, max);
            FUZZ_CHECK(got >= 0 && got <= max && got <= queued);
            FUZZ_CHECK(queued - link_nreadable(&link)
                       == (int)(got + (s.too_long - before.too_long)));
            FUZZ_CHECK(s.packets - before.packets == (uint64_t)got);
        } else {
            got = dr_tx(&q, call & 1 ? NULL : &link, max);
            FUZZ_CHECK(got >= 0 && got <= max);
            FUZZ_CHECK(link_nreadable(&link) == got);
            /* TX gives back every chain it takes, each one way or another. */
            uint64_t chains = s.chains - before.chains;
            FUZZ_CHECK(chains == (uint16_t)(q.last_avail - last_avail));
            FUZZ_CHECK(chains == (s.packets - before.packets)
                       + (s.discarded - before.discarded)
                       + (reasons(&s) - reasons(&before)));
            while (!link_empty(&link)) {
                struct packet *p = link_receive(&link);
                FUZZ_CHECK(p->length <= DR_MAX_PACKET);
                packet_free(p);
            }
        }
        /* Used entries: one per chain given back, published to the guest. */
        uint16_t guest_used;
        memcpy(&guest_used, L.used + 2, 2);
        uint16_t put = (uint16_t)(q.used_idx - used_idx);
        FUZZ_CHECK(put == s.chains - before.chains);
        FUZZ_CHECK(put <= L.size);
        FUZZ_CHECK(guest_used == q.used_idx || put == 0);
        FUZZ_CHECK((uint16_t)(q.last_avail - last_avail) <= L.size);
        FUZZ_CHECK(q.interrupt <= 1);
        /* TX writes nothing but used entries, of length 0. (RX buffers may
         * overlap the used ring: the guest's own loss, not checked.) */
        for (uint16_t i = used_idx; !rx && i != q.used_idx; i++) {
            uint32_t len;
            memcpy(&len, L.used + 4 + 8 * (i & (L.size - 1)) + 4, 4);
            FUZZ_CHECK(len == 0);
        }
        /* A guest index further ahead than the queue holds stops the queue. */
        FUZZ_CHECK(offered <= L.size || (q.broken && put == 0));
        FUZZ_CHECK(!q.broken || dr_queue_pending(&q) == 0);
        /* The guest may hand more buffers for the next call. */
        if (in_u8(&in) & 1) {
            avail_index = (uint16_t)(avail_index + in_u8(&in) % (L.size + 1));
            memcpy(L.avail + 2, &avail_index, 2);
        }
    }
    add_totals(&total[rx], &s);
    FUZZ_CHECK(dr_queue_stop(&q) == q.last_avail);
    FUZZ_CHECK(in_guest(q.used, 4 + 8ull * L.size));
    fuzz_link_free(&link);
    check_no_leak();
    return 0;
}
