/* Batches (see batch.h). Every loop here is the per-packet work that a
 * Python app would otherwise do one cffi call at a time. */

/* One pass over the ring: each packet's header is read once, for its
 * owner mark (link_receive's), the link's byte count and the batch's offset and length (was, if not NULL,
 * gets a second copy of the lengths: see batch_split). */
int batch_receive(struct link *l, struct packet **pk, int max, uint64_t base,
                  int64_t *offs, int32_t *lens, int32_t *was)
{
    int n = 0;
    uint64_t bytes = 0;
    uint32_t read = l->read, write = l->write;
    while (n < max && read != write) {
        struct packet *p = l->ring[read];
        read = (read + 1) & (LINK_RING_SIZE - 1);
        p->state = PACKET_OWNED;  /* the app holds it now (see link.c) */
        pk[n] = p;
        offs[n] = (int64_t)((uintptr_t)(p->buf + p->headroom) - base);
        lens[n] = p->length;
        bytes += p->length;
        n++;
    }
    l->read = read;
    l->stats->rxpackets += n;
    l->stats->rxbytes += bytes;
    if (was)
        memcpy(was, lens, (size_t)n * sizeof *was);
    return n;
}

void batch_refresh(struct packet **pk, int n, uint64_t base, int64_t *offs, int32_t *lens)
{
    for (int k = 0; k < n; k++) {
        offs[k] = (int64_t)((uintptr_t)(pk[k]->buf + pk[k]->headroom) - base);
        lens[k] = pk[k]->length;
    }
}

/* A length is valid if the payload, grown in place, stays in the buffer. */
static inline int valid_length(struct packet *p, int32_t len)
{
    return len >= 0 && len <= PACKET_PAYLOAD_SIZE
        && (uint32_t)p->headroom + (uint32_t)len <= sizeof(p->buf);
}

/* Lengths to write back: those that differ from was (the lengths as
 * received), or every one when was is NULL. Returns -(k + 1) for the
 * first packet k whose new length does not fit, else n. */
static int check_lengths(struct packet **pk, int n, const int32_t *lens, const int32_t *was)
{
    for (int k = 0; k < n; k++)
        if ((!was || lens[k] != was[k]) && !valid_length(pk[k], lens[k]))
            return -(k + 1);
    return n;
}

static inline void write_length(struct packet *p, const int32_t *lens, const int32_t *was, int k)
{
    if (!was || lens[k] != was[k])
        p->length = (uint16_t)lens[k];
}

int batch_writeback(struct packet **pk, int n, const int32_t *lens, const int32_t *was)
{
    int r = check_lengths(pk, n, lens, was);
    if (r < 0)
        return r;
    for (int k = 0; k < n; k++)
        write_length(pk[k], lens, was, k);
    return n;
}

int batch_transmit(struct link *l, struct packet **pk, int n, const int32_t *lens,
                   const int32_t *was)
{
    int r = check_lengths(pk, n, lens, was);
    if (r < 0)
        return r;
    for (int k = 0; k < n; k++) {
        write_length(pk[k], lens, was, k);
        link_transmit(l, pk[k]);
    }
    return n;
}

void batch_free(struct packet **pk, int n)
{
    for (int k = 0; k < n; k++)
        packet_free(pk[k]);
}

int batch_free_mask(struct packet **pk, int n, const uint8_t *mask, int64_t *offs, int32_t *lens)
{
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (mask[k]) {
            packet_free(pk[k]);
        } else {
            pk[m] = pk[k];
            offs[m] = offs[k];
            lens[m] = lens[k];
            m++;
        }
    }
    return m;
}

int batch_select(struct packet **pk, int n, const uint8_t *mask, int64_t *offs, int32_t *lens,
                 struct packet **out, int64_t *out_offs, int32_t *out_lens)
{
    int m = 0, kept = 0;
    for (int k = 0; k < n; k++) {
        if (mask[k]) {
            out[m] = pk[k];
            out_offs[m] = offs[k];
            out_lens[m] = lens[k];
            m++;
        } else {
            pk[kept] = pk[k];
            offs[kept] = offs[k];
            lens[kept] = lens[k];
            kept++;
        }
    }
    return m;
}

int batch_split(struct packet **pk, int n, const int64_t *index, struct link **links,
                int nlinks, const int32_t *lens, const int32_t *was)
{
    for (int k = 0; k < n; k++)
        if (index[k] < -1 || index[k] >= nlinks)
            return -(k + 1);
    int r = check_lengths(pk, n, lens, was);
    if (r < 0)
        return r;
    for (int k = 0; k < n; k++) {
        write_length(pk[k], lens, was, k);
        if (index[k] < 0)
            packet_free(pk[k]);
        else
            link_transmit(links[index[k]], pk[k]);
    }
    return n;
}

/* Fields. */

#define FITS(k, end) ((int64_t)lens[k] >= (int64_t)(end))

void batch_get_u8(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                  int32_t off, uint8_t *out)
{
    for (int k = 0; k < n; k++)
        out[k] = FITS(k, off + 1) ? base[offs[k] + off] : 0;
}

static inline uint16_t load16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void store16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void store32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

void batch_get_u16be(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, uint16_t *out)
{
    for (int k = 0; k < n; k++)
        out[k] = FITS(k, off + 2) ? load16(base + offs[k] + off) : 0;
}

void batch_get_u32be(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, uint32_t *out)
{
    for (int k = 0; k < n; k++)
        out[k] = FITS(k, off + 4) ? load32(base + offs[k] + off) : 0;
}

void batch_set_u8(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                  int32_t off, const uint8_t *values)
{
    for (int k = 0; k < n; k++)
        if (FITS(k, off + 1))
            base[offs[k] + off] = values[k];
}

void batch_set_u16be(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, const uint16_t *values)
{
    for (int k = 0; k < n; k++)
        if (FITS(k, off + 2))
            store16(base + offs[k] + off, values[k]);
}

void batch_set_u32be(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, const uint32_t *values)
{
    for (int k = 0; k < n; k++)
        if (FITS(k, off + 4))
            store32(base + offs[k] + off, values[k]);
}

void batch_get_bytes(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, int32_t size, uint8_t *out)
{
    for (int k = 0; k < n; k++) {
        int64_t have = (int64_t)lens[k] - off;
        int32_t m = have <= 0 ? 0 : (have < size ? (int32_t)have : size);
        if (m)
            memcpy(out + (int64_t)k * size, base + offs[k] + off, m);
        if (m < size)
            memset(out + (int64_t)k * size + m, 0, size - m);
    }
}

void batch_set_bytes(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t off, int32_t size, const uint8_t *values, int32_t stride)
{
    for (int k = 0; k < n; k++)
        if (FITS(k, off + size))
            memcpy(base + offs[k] + off, values + (int64_t)k * stride, size);
}

/* Checksums: the Internet checksum (RFC 1071) in 32-bit accumulators. */

static inline uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t acc)
{
    uint64_t s = acc;
    while (len >= 2) {
        s += load16(p);
        p += 2;
        len -= 2;
    }
    if (len)
        s += (uint32_t)p[0] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

static inline uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* The IPv4 header length if an IPv4 header fits at l3, else 0. */
static inline uint32_t ipv4_header(const uint8_t *ip, int64_t avail)
{
    if (avail < 20 || (ip[0] >> 4) != 4)
        return 0;
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    return ihl >= 20 && ihl <= avail ? ihl : 0;
}

void batch_ipv4_checksum(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                         int32_t l3, uint8_t *done)
{
    for (int k = 0; k < n; k++) {
        uint8_t *ip = base + offs[k] + l3;
        uint32_t ihl = ipv4_header(ip, (int64_t)lens[k] - l3);
        done[k] = ihl != 0;
        if (!ihl)
            continue;
        store16(ip + 10, 0);
        store16(ip + 10, (uint16_t)~fold(sum16(ip, ihl, 0)));
    }
}

void batch_l4_checksum(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                       int32_t l3, uint8_t *done)
{
    for (int k = 0; k < n; k++) {
        uint8_t *ip = base + offs[k] + l3;
        int64_t avail = (int64_t)lens[k] - l3;
        uint32_t ihl = ipv4_header(ip, avail);
        done[k] = 0;
        if (!ihl || (load16(ip + 6) & 0x3fff))  /* fragments: no whole L4 here */
            continue;
        uint32_t total = load16(ip + 2), proto = ip[9];
        if (total < ihl || total > avail || (proto != 6 && proto != 17))
            continue;
        uint32_t l4len = total - ihl, at = proto == 6 ? 16 : 6;
        if (l4len < at + 2 || (proto == 6 && l4len < 20))
            continue;
        uint8_t *l4 = ip + ihl;
        store16(l4 + at, 0);
        uint32_t s = sum16(ip + 12, 8, proto + l4len);
        uint16_t c = (uint16_t)~fold(sum16(l4, l4len, s));
        if (proto == 17 && c == 0)
            c = 0xffff;
        store16(l4 + at, c);
        done[k] = 1;
    }
}

/* RFC 1624 equation 3: HC' = ~(~HC + ~m + m'). */
void batch_checksum_adjust(uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                           int32_t at, const uint16_t *old, const uint16_t *new_,
                           uint8_t *done)
{
    for (int k = 0; k < n; k++) {
        done[k] = FITS(k, at + 2);
        if (!done[k])
            continue;
        uint8_t *c = base + offs[k] + at;
        uint32_t s = (uint16_t)~load16(c) + (uint32_t)(uint16_t)~old[k] + new_[k];
        store16(c, (uint16_t)~fold(s));
    }
}

static inline uint32_t mix32(uint32_t h, uint32_t v)
{
    v *= 0xcc9e2d51u;
    v = v << 15 | v >> 17;
    v *= 0x1b873593u;
    h ^= v;
    h = h << 13 | h >> 19;
    return h * 5 + 0xe6546b64u;
}

static inline uint32_t final32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

static inline int has_ports(uint8_t proto) { return proto == 6 || proto == 17 || proto == 132; }

/* Symmetric: the two addresses (and the two ports) are taken in sorted
 * order, so a flow and its reply hash alike. 0 for non-IP packets. */
void batch_flow_hash(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t l3, uint32_t *out)
{
    for (int k = 0; k < n; k++) {
        const uint8_t *ip = base + offs[k] + l3;
        int64_t avail = (int64_t)lens[k] - l3;
        uint32_t h = 0x9747b28cu, ports = 0, hlen = 0;
        uint8_t proto = 0;
        const uint8_t *a, *b;
        int alen;
        if (avail >= 20 && (ip[0] >> 4) == 4) {
            hlen = ipv4_header(ip, avail);
            if (!hlen) { out[k] = 0; continue; }
            proto = ip[9];
            if (load16(ip + 6) & 0x3fff)
                hlen = 0;  /* a fragment: the ports are not in every piece */
            a = ip + 12; b = ip + 16; alen = 4;
        } else if (avail >= 40 && (ip[0] >> 4) == 6) {
            proto = ip[6];
            hlen = 40;
            a = ip + 8; b = ip + 24; alen = 16;
        } else {
            out[k] = 0;
            continue;
        }
        if (memcmp(a, b, alen) > 0) {
            const uint8_t *t = a; a = b; b = t;
        }
        for (int i = 0; i < alen; i += 4)
            h = mix32(h, load32(a + i));
        for (int i = 0; i < alen; i += 4)
            h = mix32(h, load32(b + i));
        if (hlen && has_ports(proto) && avail >= hlen + 4) {
            uint32_t s = load16(ip + hlen), d = load16(ip + hlen + 2);
            ports = s < d ? s << 16 | d : d << 16 | s;
        }
        h = mix32(h, ports);
        h = mix32(h, proto);
        out[k] = final32(h ^ (uint32_t)alen);
    }
}

int batch_prepend(struct packet **pk, int n, const uint8_t *data, uint32_t size)
{
    for (int k = 0; k < n; k++)
        if (pk[k]->length + size > PACKET_PAYLOAD_SIZE)
            return -(k + 1);
    for (int k = 0; k < n; k++)
        packet_prepend(pk[k], data, size);
    return n;
}

int batch_strip(struct packet **pk, int n, uint32_t size)
{
    for (int k = 0; k < n; k++)
        if (pk[k]->length < size)
            return -(k + 1);
    for (int k = 0; k < n; k++)
        packet_shiftleft(pk[k], size);
    return n;
}

/* Copies of the packets where mask is true (all when mask is NULL), in
 * order; returns how many, or -1 (having freed its copies) when packet
 * memory runs out. */
int batch_clone(struct packet **pk, int n, const uint8_t *mask, uint64_t base,
                struct packet **out, int64_t *out_offs, int32_t *out_lens)
{
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (mask && !mask[k])
            continue;
        struct packet *c = packet_clone(pk[k]);
        if (!c) {
            batch_free(out, m);
            return -1;
        }
        out[m++] = c;
    }
    batch_refresh(out, m, base, out_offs, out_lens);
    return m;
}

/* MAC tables: open addressing with linear probing over keys (a slot holds
 * mac | MAC_USED, 0 when empty; size - 1 == mask, a power of two minus
 * one) and values. The table is never full (it has twice the slots of its
 * limit), and a probe is bounded by its size all the same. */

#define MAC_USED (1ULL << 48)

static inline uint64_t load_mac(const uint8_t *p)
{
    return (uint64_t)load16(p) << 32 | load32(p + 2);
}

/* The slot of mac, or of the empty slot where it would go; -1 if neither
 * (a table without an empty slot). */
static inline int64_t mac_slot(const uint64_t *keys, uint64_t mask, uint64_t mac)
{
    uint64_t h = (mac * 0x9E3779B97F4A7C15ULL) >> 32 & mask, want = mac | MAC_USED;
    for (uint64_t i = 0; i <= mask; i++, h = (h + 1) & mask)
        if (keys[h] == 0 || keys[h] == want)
            return (int64_t)h;
    return -1;
}

/* out[k]: the value of the MAC at byte at of packet k; missing for an
 * unknown MAC, short_ for a packet shorter than at + 6 or min_len; with
 * use_group, group for a group address (multicast, broadcast: the I/G
 * bit set). */
void batch_mac_lookup(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                      int32_t at, int32_t min_len, const uint64_t *keys, const int32_t *values,
                      uint64_t mask, int32_t missing, int32_t short_, int use_group,
                      int32_t group, int32_t *out)
{
    int32_t need = at + 6 > min_len ? at + 6 : min_len;
    for (int k = 0; k < n; k++) {
        out[k] = short_;
        if (!FITS(k, need))
            continue;
        out[k] = missing;
        const uint8_t *mac = base + offs[k] + at;
        if (use_group && (mac[0] & 1)) {
            out[k] = group;
            continue;
        }
        int64_t h = mac_slot(keys, mask, load_mac(mac));
        if (h >= 0 && keys[h])
            out[k] = values[h];
    }
}

/* A known MAC takes the new value; a new one is added while
 * count[0] < count[1]. */
static inline void mac_learn_one(uint64_t *keys, int32_t *values, uint64_t tmask, uint64_t mac,
                                 int32_t value, int64_t *count)
{
    int64_t h = mac_slot(keys, tmask, mac);
    if (h < 0)
        return;
    if (keys[h]) {
        values[h] = value;
    } else if (count[0] < count[1]) {
        keys[h] = mac | MAC_USED;
        values[h] = value;
        count[0]++;
    }
}

/* Learns the MAC at byte at of each packet (where mask, if not NULL, is
 * true, and that has at + 6 and min_len bytes) with value, in order. */
void batch_mac_learn(const uint8_t *base, const int64_t *offs, const int32_t *lens, int n,
                     int32_t at, int32_t min_len, const uint8_t *mask, uint64_t *keys,
                     int32_t *values, uint64_t tmask, int32_t value, int64_t *count)
{
    int32_t need = at + 6 > min_len ? at + 6 : min_len;
    for (int k = 0; k < n; k++)
        if ((!mask || mask[k]) && FITS(k, need))
            mac_learn_one(keys, values, tmask, load_mac(base + offs[k] + at), value, count);
}

/* The same for MACs given as numbers (a table's Python side). */
void mac_lookup(const uint64_t *macs, int n, const uint64_t *keys, const int32_t *values,
                uint64_t mask, int32_t missing, int32_t *out)
{
    for (int k = 0; k < n; k++) {
        int64_t h = mac_slot(keys, mask, macs[k] & (MAC_USED - 1));
        out[k] = h >= 0 && keys[h] ? values[h] : missing;
    }
}

void mac_learn(const uint64_t *macs, int n, uint64_t *keys, int32_t *values, uint64_t tmask,
               int32_t value, int64_t *count)
{
    for (int k = 0; k < n; k++)
        mac_learn_one(keys, values, tmask, macs[k] & (MAC_USED - 1), value, count);
}
