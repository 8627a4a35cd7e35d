/* Records to packets and back, a buffer at a time.
 *
 * A reader leaves each packet's capture timestamp and original length in
 * the 16 bytes of headroom just before its payload (an annotation, like
 * Click's), sealed with a check over the packet's length, headroom and
 * first bytes: an app that changes the packet breaks the seal, and the
 * writer then stamps the time of writing instead of a stale capture time.
 * Packet memory is recycled without clearing, so a freed packet's buffer
 * still holds its old annotation: a serial number lets a writer ignore
 * annotations older than itself, and the writer voids each one it uses. */

struct pcap_meta {
    uint32_t sec, nsec, orig_len, check;
    uint64_t serial;
};

static uint64_t pcap_serial_counter;

uint64_t pcap_serial(void) { return pcap_serial_counter; }

static inline uint32_t pcap_bswap(uint32_t v, uint32_t swap)
{
    return swap ? __builtin_bswap32(v) : v;
}

static uint32_t pcap_seal(const struct packet *p, const struct pcap_meta *m)
{
    uint32_t words[7] = { m->sec, m->nsec, m->orig_len, p->length, p->headroom,
                          (uint32_t)m->serial, (uint32_t)(m->serial >> 32) };
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

static void pcap_annotate(struct packet *p, uint32_t sec, uint32_t nsec, uint32_t orig_len)
{
    if (p->headroom < PCAP_META_SIZE)
        return;
    struct pcap_meta m = { sec, nsec, orig_len, 0, ++pcap_serial_counter };
    m.check = pcap_seal(p, &m);
    memcpy(p->buf + p->headroom - PCAP_META_SIZE, &m, sizeof(m));
}

int pcap_packet_timestamp(struct packet *p, uint32_t *out, uint64_t since)
{
    struct pcap_meta m;
    if (p->headroom < PCAP_META_SIZE)
        return 0;
    memcpy(&m, p->buf + p->headroom - PCAP_META_SIZE, sizeof(m));
    if (m.serial <= since || m.check != pcap_seal(p, &m) || m.orig_len < p->length)
        return 0;
    out[0] = m.sec; out[1] = m.nsec; out[2] = m.orig_len;
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
        const uint8_t *body = buf + st->pos + PCAP_RECORD_HEADER_SIZE;
        if (incl <= PACKET_PAYLOAD_SIZE) {
            struct packet *p = packet_allocate();
            if (!p) { st->status = PCAP_NO_MEMORY; break; }
            memcpy(p->buf + p->headroom, body, incl);
            p->length = incl;
            uint32_t frac = pcap_bswap(h[1], st->swap);
            uint32_t orig = pcap_bswap(h[3], st->swap);
            pcap_annotate(p, pcap_bswap(h[0], st->swap),
                          st->nanosecond ? frac : frac * 1000u, orig < incl ? incl : orig);
            link_transmit(out, p);
            st->packets++;
            st->bytes += incl;
            n++;
        } else {
            st->oversize++;
        }
        st->pos += PCAP_RECORD_HEADER_SIZE + incl;
        st->records++;
    }
    return n;
}

int pcap_write_batch(struct link *in, uint8_t *buf, uint32_t cap, uint32_t *used,
                     uint32_t sec, uint32_t nsec, uint32_t nanosecond, uint64_t since)
{
    int n = 0;
    struct packet *p;
    while ((p = link_front(in)) != NULL) {
        if (cap - *used < PCAP_RECORD_HEADER_SIZE + (uint32_t)p->length)
            break;
        uint32_t ts[3] = { sec, nsec, p->length };
        if (pcap_packet_timestamp(p, ts, since))
            memset(p->buf + p->headroom - PCAP_META_SIZE, 0, PCAP_META_SIZE);
        uint32_t h[4] = { ts[0], nanosecond ? ts[1] : ts[1] / 1000u, p->length, ts[2] };
        memcpy(buf + *used, h, sizeof(h));
        memcpy(buf + *used + sizeof(h), p->buf + p->headroom, p->length);
        *used += sizeof(h) + p->length;
        packet_free(link_receive(in));
        n++;
    }
    return n;
}
