/* libFuzzer harness: the record readers of the PcapReader app
 * (snabbpy/apps/pcap/pcap.c): pcap_read_batch for classic pcap and
 * pcapng_read_batch for pcapng, driven as snabbpy/apps/pcap/reader.py drives
 * them, then a write/read round trip through pcap_write_batch.
 *
 * Input: flags (1 byte: bit 0 byte order, bit 1 nanoseconds, bits 2-7 the
 * source id), snaplen (4), control (2: packets per call, bytes per read),
 * then the file after its classic global header; a file starting with the
 * pcapng section header type is read as pcapng (section header included).
 *
 * As the app's _refill does, the reader sees the file a window at a time:
 * the unread rest moved to the front and more bytes read after it. Each
 * window is its own allocation of exactly its size, so reading one byte past
 * what the reader was given is an ASan report. The harness handles the
 * section header and interface description blocks the C reader hands back
 * (PCAP_META_BLOCK) like reader._meta_block, in C. */

#include "fuzz_common.h"

#define SHB 0x0A0D0D0Au
#define ORDER_MAGIC 0x1A2B3C4Du

struct window { uint8_t *buf; const uint8_t *file; uint64_t n, base; uint32_t chunk; };

static uint32_t rd32(const uint8_t *p, uint32_t swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

static uint16_t rd16(const uint8_t *p, uint32_t swap)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return swap ? __builtin_bswap16(v) : v;
}

/* reader._refill: the rest of the window to the front of a new one with
 * at least chunk (and at least `need`) more bytes of file. 0: end of file. */
static int refill(struct window *w, struct pcap_reader_state *st, uint64_t need)
{
    uint64_t rest = st->limit - st->pos, start = w->base + st->pos;
    uint64_t left = w->n - start, want = rest + w->chunk;
    if (want < need) want = need;
    if (want > left) want = left;
    if (want <= rest)
        return 0;
    uint8_t *b = malloc(want);
    memcpy(b, w->file + start, want);
    free(w->buf);
    w->buf = b;
    w->base = start;
    st->pos = 0;
    st->limit = want;
    return 1;
}

/* reader._meta_block: a section header or interface description at st->pos.
 * 1: parsed and passed; 0: more bytes needed (st->need); -1: a bad block. */
static int meta_block(struct pcap_reader_state *st, const uint8_t *b, uint64_t have)
{
    if (rd32(b, 0) == SHB) {
        if (have < 12) { st->need = 12; return 0; }
        uint32_t swap;
        if (rd32(b + 8, 0) == ORDER_MAGIC) swap = 0;
        else if (rd32(b + 8, 1) == ORDER_MAGIC) swap = 1;
        else return -1;
        uint32_t len = rd32(b + 4, swap);
        if (len < 28 || len % 4) return -1;
        if (have < len) { st->need = len; return 0; }
        if (rd16(b + 12, swap) != 1 || rd32(b + len - 4, swap) != len) return -1;
        st->swap = swap;
        st->iface_base = st->nifaces;
        st->pos += len;
        st->blocks++;
        return 1;
    }
    /* An interface description: the C reader checked its total length,
     * multiple of 4 and 12 or more, whole in the window, and its trailer. */
    uint32_t len = rd32(b + 4, st->swap);
    FUZZ_CHECK(rd32(b, st->swap) == 1 && len >= 12 && len % 4 == 0 && len <= have);
    FUZZ_CHECK(rd32(b + len - 4, st->swap) == len);
    if (len < 20 || st->nifaces >= PCAP_MAX_IFACES) return -1;
    uint64_t units = 1000000;
    int64_t offset = 0;
    for (uint32_t o = 16; o + 4 <= len - 4;) {   /* pcapng.parse_interface's options */
        uint16_t code = rd16(b + o, st->swap), olen = rd16(b + o + 2, st->swap);
        if (code == 0) break;
        if (o + 4 + olen > len - 4) return -1;
        if (code == 9 && olen) {
            uint8_t r = b[o + 4];
            if ((r & 0x7f) > (r & 0x80 ? 63 : 19)) return -1;
            units = 1;
            for (int i = 0; i < (r & 0x7f); i++) units *= r & 0x80 ? 2 : 10;
        } else if (code == 14 && olen == 8) {
            uint64_t v;
            memcpy(&v, b + o + 4, 8);
            offset = (int64_t)(st->swap ? __builtin_bswap64(v) : v);
        }
        o += 4 + olen + (4 - olen % 4) % 4;
    }
    uint32_t n = st->nifaces;
    st->iface_units[n] = units;
    st->iface_offset[n] = offset;
    st->iface_snaplen[n] = rd32(b + 12, st->swap);
    st->nifaces = n + 1;
    st->pos += len;
    st->blocks++;
    return 1;
}

/* What a packet read carries, for the round trip. */
struct seen { uint32_t len, off, sec, frac, orig, units, key; };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_packets_init();
    struct input in = { data, size };
    uint8_t flags = in_u8(&in);
    uint32_t snaplen = in_u32(&in);
    uint16_t ctl = in_u16(&in);
    int max = 1 + ctl % 64;
    uint64_t since = pcap_serial();
    struct window w = { NULL, in.p, in.n, 0, 16 + (ctl >> 6) * 8u };
    int ng = in.n >= 4 && rd32(in.p, 0) == SHB;

    struct pcap_reader_state st = {0};
    st.source = 1 + (flags >> 2);
    if (!ng) {   /* as PcapReader.__init__ sets it from the global header */
        st.swap = flags & 1;
        st.units = flags & 2 ? 1000000000u : 1000000u;
        st.max_incl = 262144;   /* pcap.MAXIMUM_SNAPLEN */
        st.snaplen = snaplen;
    }
    w.buf = malloc(1);
    struct link out;
    fuzz_link_init(&out);
    uint64_t records = 0, packets = 0;
    int room = link_nwritable(&out);
    for (int steps = 0; room > 0; steps++) {
        FUZZ_CHECK(steps < 100000);
        int want = max < room ? max : room;
        int got = (ng ? pcapng_read_batch : pcap_read_batch)(&st, w.buf, &out, want);
        FUZZ_CHECK(got >= 0 && got <= want);
        FUZZ_CHECK(st.pos <= st.limit);
        FUZZ_CHECK(st.records >= records && st.packets == packets + (uint64_t)got);
        records = st.records;
        packets = st.packets;
        room -= got;
        if (st.status == PCAP_NEED_MORE) {
            if (!refill(&w, &st, ng ? st.need : 0))
                break;   /* the end of the file, maybe inside a record */
        } else if (st.status == PCAP_META_BLOCK) {
            FUZZ_CHECK(ng);
            int r = meta_block(&st, w.buf + st.pos, st.limit - st.pos);
            if (r < 0 || (r == 0 && !refill(&w, &st, st.need)))
                break;   /* reader._fail */
        } else if (st.status == PCAP_BAD_LENGTH) {
            FUZZ_CHECK(!ng || (st.bad >= PCAPNG_BAD_TOTAL && st.bad <= PCAPNG_BAD_CAPLEN));
            break;
        } else {
            FUZZ_CHECK(st.status == PCAP_OK);
        }
    }
    FUZZ_CHECK(st.packets == (uint64_t)link_nreadable(&out));
    FUZZ_CHECK(st.packets + st.oversize == st.records);

    /* Round trip: the packets through the writer (classic records in the
     * file's byte order and units, or enhanced packet blocks on the same
     * interfaces), then read again. Every annotation must be intact. */
    int npkt = link_nreadable(&out);
    struct seen *want = calloc(npkt ? npkt : 1, sizeof *want);
    uint8_t *bytes = malloc(w.n ? w.n : 1);
    uint32_t at = 0, used = 0;
    struct link keep;
    fuzz_link_init(&keep);
    for (int i = 0; i < npkt; i++) {
        struct packet *p = link_receive(&out);
        FUZZ_CHECK(p->length <= PACKET_PAYLOAD_SIZE);
        uint32_t ts[5];
        FUZZ_CHECK(pcap_packet_timestamp(p, ts, since));
        FUZZ_CHECK(ts[4] / PCAP_MAX_IFACES == st.source);
        FUZZ_CHECK(ng ? ts[4] % PCAP_MAX_IFACES < st.nifaces : ts[4] % PCAP_MAX_IFACES == 0);
        FUZZ_CHECK(pcap_packet_key(p, since) == ts[4]);
        want[i] = (struct seen){ p->length, at, ts[0], ts[1], ts[2], ts[3], ts[4] };
        FUZZ_CHECK(at + p->length <= w.n);
        memcpy(bytes + at, p->buf + p->headroom, p->length);
        at += p->length;
        used += ng ? 32 + p->length + (4 - p->length % 4) % 4 : 16 + p->length;
        link_transmit(&keep, p);
    }
    static uint16_t map[PCAP_KEYS];
    memset(map, 0, sizeof map);
    struct pcap_writer_state wr = {0};
    wr.since = since;
    wr.map = map;
    wr.pcapng = ng;
    wr.swap = ng ? flags & 1 : st.swap;
    wr.cap = (uint32_t)(npkt * 36u + at);
    uint32_t nif = ng ? st.nifaces : 1;
    for (uint32_t i = 0; i < nif; i++) {
        map[st.source * PCAP_MAX_IFACES + i] = (uint16_t)(i + 1);
        wr.units[i] = ng ? st.iface_units[i] : st.units;
        wr.offset[i] = ng ? st.iface_offset[i] : 0;
    }
    uint8_t *copy = malloc(wr.cap ? wr.cap : 1);
    FUZZ_CHECK(pcap_write_batch(&wr, &keep, copy) == npkt);
    FUZZ_CHECK(link_empty(&keep) && wr.status == PCAP_OK && wr.packets == (uint64_t)npkt);
    FUZZ_CHECK(wr.used == used && wr.bytes == at);
    /* Classic, same byte order and units: the records read, byte for byte. */
    if (!ng && !st.oversize)
        FUZZ_CHECK(wr.used == w.base + st.pos && memcmp(copy, w.file, wr.used) == 0);

    struct pcap_reader_state again = {0};
    again.source = st.source;
    again.swap = wr.swap;
    again.limit = wr.used;
    if (ng) {
        again.nifaces = nif;
        memcpy(again.iface_units, wr.units, sizeof again.iface_units);
        memcpy(again.iface_offset, wr.offset, sizeof again.iface_offset);
    } else {
        again.units = st.units;
        again.max_incl = 262144;
    }
    uint64_t since2 = pcap_serial();
    int back = 0;
    while (back < npkt) {
        int got = (ng ? pcapng_read_batch : pcap_read_batch)(&again, copy, &out, npkt - back);
        FUZZ_CHECK(got > 0 && again.status == PCAP_OK);
        back += got;
        for (; got > 0; got--) {
            struct packet *p = link_receive(&out);
            struct seen *s = &want[back - got];
            uint32_t ts[5];
            FUZZ_CHECK(pcap_packet_timestamp(p, ts, since2));
            FUZZ_CHECK(p->length == s->len && ts[2] == s->orig && ts[4] == s->key);
            FUZZ_CHECK(memcmp(bytes + s->off, p->buf + p->headroom, p->length) == 0);
            uint32_t iface = s->key % PCAP_MAX_IFACES;
            /* The timestamp comes back bit for bit (classic, or the same
             * units), within a nanosecond of it (pcapng units finer than
             * 2^-32 s: carried as nanoseconds), except where the writer's
             * 64-bit count of units wraps (seconds far past the offset). */
            uint64_t u = wr.units[iface], q = (uint64_t)s->sec - (uint64_t)wr.offset[iface];
            if (!ng) {
                FUZZ_CHECK(ts[0] == s->sec && ts[1] == s->frac && ts[3] == s->units);
            } else if (u <= 0xffffffffu) {
                FUZZ_CHECK(s->units == u && ts[3] == u);
                if ((unsigned __int128)q * u + s->frac <= UINT64_MAX)
                    FUZZ_CHECK(ts[0] == s->sec && ts[1] == s->frac);
            } else {
                FUZZ_CHECK(s->units == 1000000000u && ts[3] == 1000000000u);
                unsigned __int128 f = (unsigned __int128)s->frac * u / 1000000000u;
                if ((unsigned __int128)q * u + f <= UINT64_MAX)
                    FUZZ_CHECK(ts[0] == s->sec && (ts[1] == s->frac || ts[1] + 1 == s->frac));
            }
            packet_free(p);
        }
    }
    FUZZ_CHECK(again.pos == wr.used && again.bytes == at && link_empty(&out));
    free(want);
    free(bytes);
    free(copy);
    free(w.buf);
    check_no_leak();
    return 0;
}
