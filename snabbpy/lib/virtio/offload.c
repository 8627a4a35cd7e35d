/* Guest offloads on the device's TX path: see offload.h. Checksums are
 * summed in host (little-endian) order: a ones' complement sum is the same
 * in either byte order, byte-swapped, so a sum taken and stored natively is
 * correct in network order; only constants added to it are swapped. */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "offload.c sums checksums in little-endian order"
#endif

#define OFF_GSO_TCPV4 1
#define OFF_GSO_TCPV6 4
#define OFF_GSO_ECN 0x80
#define OFF_TCP_FIN 0x01
#define OFF_TCP_PSH 0x08
#define OFF_TCP_CWR 0x80

static inline uint16_t off_be16(const uint8_t *b) { return (uint16_t)(b[0] << 8 | b[1]); }

static inline void off_put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

/* Native-order ones' complement sum of n bytes starting at b, added to s. */
static uint64_t off_sum(const uint8_t *b, uint32_t n, uint64_t s)
{
    uint64_t w8;
    uint32_t w4;
    uint16_t w2;
    for (; n >= 8; b += 8, n -= 8) {
        memcpy(&w8, b, 8);
        s += w8 >> 32;
        s += w8 & 0xffffffffu;
    }
    if (n >= 4) { memcpy(&w4, b, 4); s += w4; b += 4; n -= 4; }
    if (n >= 2) { memcpy(&w2, b, 2); s += w2; b += 2; n -= 2; }
    if (n) s += *b;
    return s;
}

/* Folded and complemented: the value to store (natively) in the field. */
static inline uint16_t off_fold(uint64_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* A 16-bit network-order constant as the native sum sees it. */
static inline uint64_t off_word(uint16_t v) { return (uint16_t)(v << 8 | v >> 8); }

int offload_csum(uint8_t *frame, uint32_t len, uint32_t csum_start, uint32_t csum_offset)
{
    /* The field lies inside the summed range, which ends at the frame's end. */
    if (csum_start >= len || csum_offset > len - csum_start
        || len - csum_start - csum_offset < 2)
        return OFF_BAD_CSUM;
    uint16_t c = off_fold(off_sum(frame + csum_start, len - csum_start, 0));
    /* 0 would mean "no checksum" to UDP; 0xffff is the same sum. */
    if (c == 0)
        c = 0xffff;
    memcpy(frame + csum_start + csum_offset, &c, 2);
    return OFF_OK;
}

int offload_gso_plan(const uint8_t *frame, uint32_t len, uint32_t gso_type, uint32_t gso_size,
                     uint32_t allowed, struct gso_plan *plan)
{
    uint32_t base = gso_type & ~OFF_GSO_ECN, ipend;
    if ((gso_type & OFF_GSO_ECN) && !(allowed & DR_F_ECN))
        return OFF_BAD_GSO_TYPE;
    if (!((base == OFF_GSO_TCPV4 && (allowed & DR_F_TSO4))
          || (base == OFF_GSO_TCPV6 && (allowed & DR_F_TSO6))))
        return OFF_BAD_GSO_TYPE;
    if (gso_size == 0)
        return OFF_BAD_GSO_SIZE;
    if (len < 14)
        return OFF_BAD_GSO_FRAME;
    uint32_t l3 = 14, type = off_be16(frame + 12);
    if (type == 0x8100) {
        if (len < 18)
            return OFF_BAD_GSO_FRAME;
        l3 = 18, type = off_be16(frame + 16);
    }
    const uint8_t *ip = frame + l3;
    memset(plan, 0, sizeof *plan);
    if (base == OFF_GSO_TCPV4) {
        if (type != 0x0800 || len < l3 + 20 || ip[0] >> 4 != 4)
            return OFF_BAD_GSO_FRAME;
        uint32_t ihl = (ip[0] & 15) * 4u, total = off_be16(ip + 2);
        if (ihl < 20 || ip[9] != 6 || (off_be16(ip + 6) & 0x3fff)
            || total < ihl + 20 || l3 + total > len)
            return OFF_BAD_GSO_FRAME;  /* not TCP, a fragment, or lengths that lie */
        plan->l4 = l3 + ihl, ipend = l3 + total;
    } else {
        if (type != 0x86dd || len < l3 + 40 || ip[0] >> 4 != 6 || ip[6] != 6)
            return OFF_BAD_GSO_FRAME;  /* extension headers are refused too */
        uint32_t plen = off_be16(ip + 4);
        if (plen < 20 || l3 + 40 + plen > len)
            return OFF_BAD_GSO_FRAME;
        plan->l4 = l3 + 40, ipend = l3 + 40 + plen, plan->ipv6 = 1;
    }
    uint32_t doff = (frame[plan->l4 + 12] >> 4) * 4u;
    if (doff < 20 || plan->l4 + doff > ipend)
        return OFF_BAD_GSO_FRAME;
    plan->l3 = l3;
    plan->hdrs = plan->l4 + doff;
    plan->payload = ipend - plan->hdrs;
    plan->mss = gso_size;
    plan->nseg = plan->payload ? (plan->payload + gso_size - 1) / gso_size : 1;
    uint32_t first = plan->payload < gso_size ? plan->payload : gso_size;
    if (plan->hdrs + first > DR_MAX_PACKET || plan->nseg > DR_MAX_GSO_SEGMENTS)
        return OFF_BAD_GSO_SIZE;
    return OFF_OK;
}

uint32_t offload_gso_segment(const uint8_t *frame, const struct gso_plan *plan, uint32_t i,
                             uint8_t *out)
{
    uint32_t off = i * plan->mss, hdrs = plan->hdrs, l3 = plan->l3, l4 = plan->l4;
    uint32_t n = plan->payload - off < plan->mss ? plan->payload - off : plan->mss;
    uint32_t seglen = hdrs + n, tcplen = seglen - l4;
    memcpy(out, frame, hdrs);
    memcpy(out + hdrs, frame + hdrs + off, n);
    uint8_t *ip = out + l3, *tcp = out + l4;
    uint64_t s;
    if (plan->ipv6) {
        off_put16(ip + 4, (uint16_t)(seglen - l3 - 40));
        s = off_sum(ip + 8, 32, 0);
    } else {
        off_put16(ip + 2, (uint16_t)(seglen - l3));
        off_put16(ip + 4, (uint16_t)(off_be16(ip + 4) + i));
        ip[10] = ip[11] = 0;
        uint16_t c = off_fold(off_sum(ip, l4 - l3, 0));
        memcpy(ip + 10, &c, 2);
        s = off_sum(ip + 12, 8, 0);
    }
    uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
    seq += off;
    tcp[4] = (uint8_t)(seq >> 24), tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8), tcp[7] = (uint8_t)seq;
    if (i + 1 < plan->nseg)
        tcp[13] &= (uint8_t)~(OFF_TCP_FIN | OFF_TCP_PSH);
    if (i > 0)
        tcp[13] &= (uint8_t)~OFF_TCP_CWR;
    tcp[16] = tcp[17] = 0;
    s += off_word(6) + off_word((uint16_t)tcplen);
    uint16_t c = off_fold(off_sum(tcp, tcplen, s));
    memcpy(tcp + 16, &c, 2);
    return seglen;
}

uint64_t offload_gso_bench(const uint8_t *frame, const struct gso_plan *plan, uint32_t n)
{
    static uint8_t out[DR_MAX_PACKET];
    uint64_t bytes = 0;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t i = 0; i < plan->nseg; i++)
            bytes += offload_gso_segment(frame, plan, i, out);
    return bytes;
}
