/* RSS: the symmetric flow hash of an Ethernet frame, and the spreading of
 * a whole link over N outputs by it.
 *
 * The hash is taken over a key built from the frame:
 *   kind 1  TCP, UDP or SCTP over IPv4/IPv6, not a fragment:
 *           [1, proto, lo endpoint, hi endpoint], endpoint = address then
 *           port (network order), lo/hi by memcmp;
 *   kind 2  other IP, every fragment, or ports cut off: [2, lo addr, hi addr];
 *   kind 3  non-IP, or an IP header cut off: [3, lo MAC, hi MAC];
 *   kind 0  shorter than two MACs: [0, the bytes there are].
 * Up to two 802.1Q / 802.1ad / 0x9100 tags are skipped. Sorting the two
 * endpoints makes the key, and so the hash, the same in both directions.
 * The key (zero-padded to 8-byte words) is folded by multiply-xorshift
 * steps and finished by MurmurHash3's 64-bit finaliser; the hash is the
 * top 32 bits. Nothing is read past `length`. */

#include <endian.h>

#define RSS_KEY_MAX 40  /* 2 + 2 * (16 + 2) = 38, padded to whole words */

static inline uint32_t rss_be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }

static inline uint64_t rss_be64(const uint8_t *p) { uint64_t w; memcpy(&w, p, 8); return be64toh(w); }
static inline uint64_t rss_be32(const uint8_t *p) { uint32_t w; memcpy(&w, p, 4); return be32toh(w); }
static inline uint64_t rss_be48(const uint8_t *p) { return (rss_be32(p) << 16) | rss_be16(p + 4); }

/* Is IPv6 endpoint a (16 bytes of address, then 2 of port, or no port:
 * NULL) after b in memcmp order? Compared as big-endian words. */
static inline int rss_after6(const uint8_t *aaddr, const uint8_t *aport,
                             const uint8_t *baddr, const uint8_t *bport)
{
    uint64_t a = rss_be64(aaddr), b = rss_be64(baddr);
    if (a != b) return a > b;
    a = rss_be64(aaddr + 8); b = rss_be64(baddr + 8);
    if (a != b) return a > b;
    return aport && rss_be16(aport) > rss_be16(bport);
}

/* Writes IPv6 endpoints a and b (alen = 16 bytes of address, plen = 2 or
 * 0 of port) into key in memcmp order. */
static inline void rss_pair(uint8_t *key, const uint8_t *aaddr, const uint8_t *aport,
                            const uint8_t *baddr, const uint8_t *bport,
                            uint32_t alen, uint32_t plen)
{
    if (rss_after6(aaddr, aport, baddr, bport)) {
        const uint8_t *t = aaddr; aaddr = baddr; baddr = t;
        t = aport; aport = bport; bport = t;
    }
    memcpy(key, aaddr, alen);
    if (plen) memcpy(key + alen, aport, 2);
    memcpy(key + alen + plen, baddr, alen);
    if (plen) memcpy(key + 2 * alen + plen, bport, 2);
}

static inline uint32_t rss_mix(const uint8_t *key, uint32_t n)
{
    uint64_t h = 0x243F6A8885A308D3ull ^ n;
    for (uint32_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ le64toh(w)) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)(h >> 32);
}

static inline int rss_has_ports(uint32_t proto) { return proto == 6 || proto == 17 || proto == 132; }

/* Key of an L4 flow: endpoints are (addr, port) of alen + 2 bytes. */
static inline uint32_t rss_l4_key(uint8_t *key, uint32_t proto, const uint8_t *saddr,
                                  const uint8_t *daddr, uint32_t alen, const uint8_t *ports)
{
    key[0] = 1;
    key[1] = (uint8_t)proto;
    rss_pair(key + 2, saddr, ports, daddr, ports + 2, alen, 2);
    return 2 + 2 * (alen + 2);
}

static inline uint32_t rss_addr_key(uint8_t *key, const uint8_t *saddr, const uint8_t *daddr,
                                    uint32_t alen)
{
    key[0] = 2;
    rss_pair(key + 1, saddr, NULL, daddr, NULL, alen, 0);
    return 1 + 2 * alen;
}

/* The IPv4 and MAC keys, laid out as rss_l4_key and rss_addr_key lay out
 * the IPv6 ones (the key table above), but built
 * in registers and stored as whole words: the words rss_mix loads then
 * come straight from the stores (no store-forwarding stall). */
static inline void rss_store(uint8_t *key, uint64_t w0, uint64_t w1)
{
    w0 = htole64(w0); w1 = htole64(w1);
    memcpy(key, &w0, 8);
    memcpy(key + 8, &w1, 8);
}

static inline uint32_t rss_l4_key4(uint8_t *key, uint32_t proto, const uint8_t *saddr,
                                   const uint8_t *daddr, const uint8_t *ports)
{
    uint64_t a = rss_be32(saddr) << 16 | rss_be16(ports);
    uint64_t b = rss_be32(daddr) << 16 | rss_be16(ports + 2);
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    /* [1, proto, lo as 6 bytes big-endian, hi likewise, 0, 0] */
    rss_store(key, 1 | (uint64_t)proto << 8 | __builtin_bswap64(lo << 16) << 16,
              __builtin_bswap64(hi << 16));
    return 14;
}

static inline uint32_t rss_addr_key4(uint8_t *key, const uint8_t *saddr, const uint8_t *daddr)
{
    uint32_t a = (uint32_t)rss_be32(saddr), b = (uint32_t)rss_be32(daddr);
    uint64_t lo = __builtin_bswap32(a < b ? a : b), hi = __builtin_bswap32(a < b ? b : a);
    /* [2, lo as 4 bytes big-endian, hi likewise, 0 ...] */
    rss_store(key, 2 | lo << 8 | hi << 40, hi >> 24);
    return 9;
}

static inline uint32_t rss_mac_key(uint8_t *key, const uint8_t *a, const uint8_t *b)
{
    uint64_t x = rss_be48(a), y = rss_be48(b);
    uint64_t lo = x < y ? x : y, hi = x < y ? y : x;
    /* [3, lo as 6 bytes big-endian, hi likewise, 0 ...] */
    rss_store(key, 3 | __builtin_bswap64(lo << 16) << 8 | (hi >> 40) << 56,
              __builtin_bswap64(hi << 24));
    return 13;
}

static uint32_t rss_key(const uint8_t *p, uint32_t len, uint8_t *key)
{
    if (len < 12) {
        key[0] = 0;
        memcpy(key + 1, p, len);
        return 1 + len;
    }
    uint32_t off = 12, type = 0;
    for (int tags = 0; off + 2 <= len; tags++) {
        type = rss_be16(p + off);
        off += 2;
        if (tags == 2 || (type != 0x8100 && type != 0x88a8 && type != 0x9100)) break;
        off += 2;  /* the tag's TCI */
    }
    if (off <= len && type == 0x0800 && off + 20 <= len && (p[off] >> 4) == 4) {
        const uint8_t *ip = p + off;
        uint32_t ihl = (ip[0] & 15) * 4, proto = ip[9];
        int frag = (rss_be16(ip + 6) & 0x3fff) != 0;
        if (!frag && ihl >= 20 && rss_has_ports(proto) && off + ihl + 4 <= len)
            return rss_l4_key4(key, proto, ip + 12, ip + 16, ip + ihl);
        return rss_addr_key4(key, ip + 12, ip + 16);
    }
    if (off <= len && type == 0x86dd && off + 40 <= len && (p[off] >> 4) == 6) {
        const uint8_t *ip = p + off;
        uint32_t nh = ip[6], l4 = off + 40;
        /* Hop-by-hop, routing, destination options, AH: skipped (at most 8). */
        for (int i = 0; i < 8 && l4 + 2 <= len; i++) {
            if (nh == 0 || nh == 43 || nh == 60) {
                uint32_t next = p[l4];
                l4 += (p[l4 + 1] + 1) * 8;
                nh = next;
            } else if (nh == 51) {
                uint32_t next = p[l4];
                l4 += (p[l4 + 1] + 2) * 4;
                nh = next;
            } else {
                break;
            }
        }
        if (rss_has_ports(nh) && l4 + 4 <= len)
            return rss_l4_key(key, nh, ip + 8, ip + 24, 16, p + l4);
        return rss_addr_key(key, ip + 8, ip + 24, 16);
    }
    return rss_mac_key(key, p, p + 6);
}

/* The symmetric flow hash of one frame. */
uint32_t rss_hash(const uint8_t *frame, uint32_t length)
{
    uint8_t key[RSS_KEY_MAX] = {0};
    return rss_mix(key, rss_key(frame, length, key));
}

/* Moves every packet of `in` to outs[hash * nouts >> 32]; a full output
 * drops and counts (link_transmit). Returns the number of packets moved.
 * The headers of the packet RSS_AHEAD places on are fetched early. */
#define RSS_AHEAD 4
static int spread(struct link *in, int max, struct link **outs, int nouts)
{
    struct packet *pkts[LINK_RING_SIZE];
    int n = link_receive_batch(in, pkts, max);
    for (int i = 0; i < n && i < RSS_AHEAD; i++)
        __builtin_prefetch(packet_data(pkts[i]));
    for (int i = 0; i < n; i++) {
        struct packet *p = pkts[i];
        if (i + RSS_AHEAD < n)
            __builtin_prefetch(packet_data(pkts[i + RSS_AHEAD]));
        uint64_t h = rss_hash(packet_data(p), p->length);
        link_transmit(outs[(h * (uint64_t)nouts) >> 32], p);
    }
    return n;
}

int rss_spread(struct link *in, struct link **outs, int nouts)
{
    return spread(in, LINK_RING_SIZE, outs, nouts);
}

/* As rss_spread, but never drops: moves the packets of `in` in order while
 * the output each one hashes to has room. The first one whose output is
 * full stays at the front of `in`, and all behind it, so a full output
 * holds packets back upstream. (Taking only as many as every output has
 * room for would be simpler but moves half as many each time: the room of
 * the fuller output halves at every call, when a packet can go to any.)
 * The headers and payloads of the packets ahead are fetched early. */
int rss_spread_lossless(struct link *in, struct link **outs, int nouts)
{
    int n = 0, waiting = link_nreadable(in);
    for (; n < waiting; n++) {
        uint32_t read = in->read;
        if (n + 2 * RSS_AHEAD < waiting)
            __builtin_prefetch(in->ring[(read + 2 * RSS_AHEAD) & (LINK_RING_SIZE - 1)]);
        if (n + RSS_AHEAD < waiting)
            __builtin_prefetch(packet_data(in->ring[(read + RSS_AHEAD) & (LINK_RING_SIZE - 1)]));
        struct packet *p = in->ring[read];
        uint64_t h = rss_hash(packet_data(p), p->length);
        struct link *out = outs[(h * (uint64_t)nouts) >> 32];
        if (link_full(out))
            break;
        link_transmit(out, link_receive(in));
    }
    return n;
}

/* Fills `out` (as far as it has room) with fresh packets copied from the
 * n frames of `size` bytes laid end to end in `frames`, from frame *next
 * on, round and round: one small block to copy from, where packets as
 * templates would each be a page of their own to reach. Returns how many
 * (fewer when packet memory runs out). */
int rss_flows_fill(struct link *out, const uint8_t *frames, uint32_t size, uint32_t n,
                   uint32_t *next)
{
    int room = link_nwritable(out), i;
    uint32_t k = *next;
    for (i = 0; i < room; i++) {
        struct packet *p = packet_allocate();
        if (!p)
            break;
        memcpy(packet_data(p), frames + (size_t)k * size, size);
        p->length = size;
        link_transmit(out, p);
        if (++k == n)
            k = 0;
    }
    *next = k;
    return i;
}
