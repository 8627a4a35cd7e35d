/* Records and blocks to packets and back, a buffer at a time.
 *
 * A reader leaves each packet's capture time (seconds, fraction in the
 * file's own units), original length and origin (source id: which reader;
 * interface: which pcapng interface) in the 32 bytes of headroom just
 * before its payload, sealed with a check over the packet's length,
 * headroom and first bytes: an app that changes the packet breaks the
 * seal, and the writer then stamps the time of writing. A serial number
 * lets a writer ignore annotations older than itself (packet memory is
 * recycled without clearing), and the writer voids each one it uses.
 * Timestamps are kept in the source's units, so a writer with the same
 * units copies them bit for bit (even out-of-range fractions). */

struct pcap_meta {
    uint64_t serial;
    uint32_t sec, frac, orig_len, check;
    uint32_t key, units;
};

static uint64_t pcap_serial_counter;

uint64_t pcap_serial(void) { return pcap_serial_counter; }

static inline uint32_t pcap_bswap(uint32_t v, uint32_t swap)
{
    return swap ? __builtin_bswap32(v) : v;
}

static inline uint16_t pcap_bswap16(uint16_t v, uint32_t swap)
{
    return swap ? __builtin_bswap16(v) : v;
}

static uint32_t pcap_seal(const struct packet *p, const struct pcap_meta *m)
{
    uint32_t words[9] = { m->sec, m->frac, m->orig_len, p->length, p->headroom,
                          (uint32_t)m->serial, (uint32_t)(m->serial >> 32), m->key, m->units };
    uint32_t h = 2166136261u ^ 0x70636170u;
    const uint8_t *bytes = (const uint8_t *)words;
    for (int i = 0; i < (int)sizeof(words); i++)
        h = (h ^ bytes[i]) * 16777619u;
    const uint8_t *d = p->buf + p->headroom;
    int n = p->length < 32 ? p->length : 32;
    for (int i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

static void pcap_annotate(struct packet *p, uint32_t sec, uint32_t frac, uint32_t orig_len,
                          uint32_t key, uint32_t units)
{
    if (p->headroom < PCAP_META_SIZE)
        return;
    struct pcap_meta m = { ++pcap_serial_counter, sec, frac, orig_len, 0, key, units };
    m.check = pcap_seal(p, &m);
    memcpy(p->buf + p->headroom - PCAP_META_SIZE, &m, sizeof(m));
}

static int pcap_meta_of(struct packet *p, struct pcap_meta *m, uint64_t since)
{
    if (p->headroom < PCAP_META_SIZE)
        return 0;
    memcpy(m, p->buf + p->headroom - PCAP_META_SIZE, sizeof(*m));
    return m->serial > since && m->check == pcap_seal(p, m) && m->units != 0;
}

int pcap_packet_timestamp(struct packet *p, uint32_t *out, uint64_t since)
{
    struct pcap_meta m;
    if (!pcap_meta_of(p, &m, since))
        return 0;
    out[0] = m.sec; out[1] = m.frac; out[2] = m.orig_len; out[3] = m.units; out[4] = m.key;
    return 1;
}

uint32_t pcap_packet_key(struct packet *p, uint64_t since)
{
    struct pcap_meta m;
    return pcap_meta_of(p, &m, since) ? m.key : 0;
}

/* A packet of incl bytes from body, or counted in oversize. -1: no memory. */
static int pcap_deliver(struct pcap_reader_state *st, const uint8_t *body, uint32_t incl,
                        uint32_t sec, uint32_t frac, uint32_t orig, uint32_t key,
                        uint32_t units, struct link *out)
{
    if (incl > PACKET_PAYLOAD_SIZE) {
        st->oversize++;
        return 0;
    }
    struct packet *p = packet_allocate();
    if (!p)
        return -1;
    memcpy(p->buf + p->headroom, body, incl);
    p->length = incl;
    pcap_annotate(p, sec, frac, orig, key, units);
    link_transmit(out, p);
    st->packets++;
    st->bytes += incl;
    return 1;
}

int pcap_read_batch(struct pcap_reader_state *st, const uint8_t *buf, struct link *out, int max)
{
    int n = 0;
    st->status = PCAP_OK;
    while (n < max) {
        if (st->limit - st->pos < PCAP_RECORD_HEADER_SIZE) { st->status = PCAP_NEED_MORE; break; }
        uint32_t h[4];
        memcpy(h, buf + st->pos, sizeof(h));
        uint32_t incl = pcap_bswap(h[2], st->swap);
        if (incl > st->max_incl) { st->status = PCAP_BAD_LENGTH; break; }
        if (st->limit - st->pos - PCAP_RECORD_HEADER_SIZE < incl) {
            st->status = PCAP_NEED_MORE;
            break;
        }
        int r = pcap_deliver(st, buf + st->pos + PCAP_RECORD_HEADER_SIZE, incl,
                             pcap_bswap(h[0], st->swap), pcap_bswap(h[1], st->swap),
                             pcap_bswap(h[3], st->swap), st->source * PCAP_MAX_IFACES,
                             st->units, out);
        if (r < 0) { st->status = PCAP_NO_MEMORY; break; }
        n += r;
        if (st->snaplen && incl > st->snaplen)
            st->over_snaplen++;
        st->pos += PCAP_RECORD_HEADER_SIZE + incl;
        st->records++;
    }
    return n;
}

#define PCAPNG_MAX_BLOCK (16u << 20)  /* = reader.MAX_BLOCK */

static void pcapng_stamp(const struct pcap_reader_state *st, uint32_t iface, uint32_t hi,
                         uint32_t lo, uint32_t *sec, uint32_t *frac, uint32_t *units)
{
    uint64_t ts = ((uint64_t)hi << 32) | lo, u = st->iface_units[iface];
    if (u > 0xffffffffu) {   /* finer than a 32-bit fraction: nanoseconds */
        unsigned __int128 ns = (unsigned __int128)ts * 1000000000u / u;
        *sec = (uint32_t)(ns / 1000000000u + st->iface_offset[iface]);
        *frac = (uint32_t)(ns % 1000000000u);
        *units = 1000000000u;
    } else {
        *sec = (uint32_t)(ts / u + st->iface_offset[iface]);
        *frac = (uint32_t)(ts % u);
        *units = (uint32_t)u;
    }
}

int pcapng_read_batch(struct pcap_reader_state *st, const uint8_t *buf, struct link *out, int max)
{
    int n = 0;
    st->status = PCAP_OK;
    while (n < max) {
        uint64_t have = st->limit - st->pos;
        if (have < 12) { st->status = PCAP_NEED_MORE; st->need = 12; break; }
        const uint8_t *b = buf + st->pos;
        uint32_t w[2];
        memcpy(w, b, 8);
        uint32_t type = pcap_bswap(w[0], st->swap), len = pcap_bswap(w[1], st->swap);
        if (type == 0x0A0D0D0A) { st->status = PCAP_META_BLOCK; break; }
        if (len < 12 || len % 4 || len > PCAPNG_MAX_BLOCK) {
            st->status = PCAP_BAD_LENGTH; st->bad = PCAPNG_BAD_TOTAL; break;
        }
        if (have < len) { st->status = PCAP_NEED_MORE; st->need = len; break; }
        uint32_t trailer;
        memcpy(&trailer, b + len - 4, 4);
        if (pcap_bswap(trailer, st->swap) != len) {
            st->status = PCAP_BAD_LENGTH; st->bad = PCAPNG_BAD_TRAILER; break;
        }
        if (type == 1) { st->status = PCAP_META_BLOCK; break; }
        int r = 0;
        if (type == 6 || type == 2) {            /* enhanced / obsolete packet block */
            if (len < 32) { st->status = PCAP_BAD_LENGTH; st->bad = PCAPNG_BAD_TOTAL; break; }
            uint32_t f[5];
            memcpy(f, b + 8, sizeof(f));
            uint32_t iface = pcap_bswap(f[0], st->swap);
            if (type == 2) {               /* interface u16, drops u16 */
                uint16_t i16;
                memcpy(&i16, b + 8, 2);
                iface = pcap_bswap16(i16, st->swap);
            }
            uint32_t cap = pcap_bswap(f[3], st->swap), orig = pcap_bswap(f[4], st->swap);
            if (st->nifaces <= st->iface_base || iface >= st->nifaces - st->iface_base) {
                st->status = PCAP_BAD_LENGTH; st->bad = PCAPNG_BAD_IFACE; break;
            }
            if (cap > len - 32) {
                st->status = PCAP_BAD_LENGTH; st->bad = PCAPNG_BAD_CAPLEN; break;
            }
            iface += st->iface_base;
            uint32_t sec, frac, units;
            pcapng_stamp(st, iface, pcap_bswap(f[1], st->swap), pcap_bswap(f[2], st->swap),
                         &sec, &frac, &units);
            r = pcap_deliver(st, b + 28, cap, sec, frac, orig,
                             st->source * PCAP_MAX_IFACES + iface, units, out);
            st->records++;
        } else if (type == 3) {                  /* simple packet block: interface 0 */
            if (len < 16 || st->nifaces <= st->iface_base) {
                st->status = PCAP_BAD_LENGTH;
                st->bad = len < 16 ? PCAPNG_BAD_TOTAL : PCAPNG_BAD_IFACE;
                break;
            }
            uint32_t orig;
            memcpy(&orig, b + 8, 4);
            orig = pcap_bswap(orig, st->swap);
            uint32_t cap = orig, room = len - 16, snap = st->iface_snaplen[st->iface_base];
            if (snap && cap > snap) cap = snap;
            if (cap > room) cap = room;
            r = pcap_deliver(st, b + 12, cap, 0, 0, orig,
                             st->source * PCAP_MAX_IFACES + st->iface_base,
                             st->iface_units[st->iface_base] > 0xffffffffu ? 1000000000u
                             : (uint32_t)st->iface_units[st->iface_base], out);
            st->records++;
        } else {
            st->skipped++;
        }
        if (r < 0) { st->status = PCAP_NO_MEMORY; st->records--; break; }
        n += r;
        st->pos += len;
        st->blocks++;
    }
    return n;
}

static void pcap_put32(uint8_t *d, uint32_t v, uint32_t swap)
{
    v = pcap_bswap(v, swap);
    memcpy(d, &v, 4);
}

int pcap_write_batch(struct pcap_writer_state *w, struct link *in, uint8_t *buf)
{
    int n = 0;
    struct packet *p;
    w->status = PCAP_OK;
    while ((p = link_front(in)) != NULL) {
        struct pcap_meta m;
        int annotated = pcap_meta_of(p, &m, w->since);
        uint32_t key = annotated ? m.key : 0;
        if (key >= PCAP_KEYS) key = 0;
        uint16_t to = w->map[key];
        if (to == 0) { w->status = PCAP_NEW_KEY; w->key = key; break; }
        if (to == PCAP_KEY_MISMATCH) {
            packet_free(link_receive(in));
            w->mismatched++;
            continue;
        }
        uint32_t iface = to - 1u;
        uint32_t incl = p->length;
        if (w->snaplen && incl > w->snaplen) incl = w->snaplen;
        uint32_t pad = (4 - incl % 4) % 4;
        uint32_t need = w->pcapng ? 32 + incl + pad : PCAP_RECORD_HEADER_SIZE + incl;
        if (w->cap - w->used < need) { w->status = PCAP_FULL; break; }
        uint64_t units = w->units[iface];
        uint32_t sec = w->sec, orig = p->length;
        /* 128-bit products: units may be up to 2^63 per second. */
        uint64_t frac = (uint64_t)((unsigned __int128)w->nsec * units / 1000000000u);
        if (annotated) {
            memset(p->buf + p->headroom - PCAP_META_SIZE, 0, PCAP_META_SIZE);
            sec = m.sec;
            orig = m.orig_len;
            frac = m.units == units ? m.frac
                   : (uint64_t)((unsigned __int128)m.frac * units / m.units);
        }
        uint8_t *d = buf + w->used;
        if (w->pcapng) {
            /* Unsigned: an if_tsoffset near -2^63 wraps as the reader's sum did. */
            uint64_t ts = ((uint64_t)sec - (uint64_t)w->offset[iface]) * units + frac;
            pcap_put32(d, 6, w->swap);
            pcap_put32(d + 4, need, w->swap);
            pcap_put32(d + 8, iface, w->swap);
            pcap_put32(d + 12, (uint32_t)(ts >> 32), w->swap);
            pcap_put32(d + 16, (uint32_t)ts, w->swap);
            pcap_put32(d + 20, incl, w->swap);
            pcap_put32(d + 24, orig, w->swap);
            memcpy(d + 28, p->buf + p->headroom, incl);
            memset(d + 28 + incl, 0, pad);
            pcap_put32(d + need - 4, need, w->swap);
        } else {
            pcap_put32(d, sec, w->swap);
            pcap_put32(d + 4, (uint32_t)frac, w->swap);
            pcap_put32(d + 8, incl, w->swap);
            pcap_put32(d + 12, orig, w->swap);
            memcpy(d + 16, p->buf + p->headroom, incl);
        }
        w->used += need;
        w->packets++;
        w->bytes += incl;
        packet_free(link_receive(in));
        n++;
    }
    return n;
}
