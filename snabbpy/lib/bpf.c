/* Classic BPF interpreter (see bpf.h). The opcodes are the exact ones
 * bpf.validate() accepts; anything else returns 0 (reject). */

static inline uint32_t bpf_load32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint32_t bpf_load16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

uint32_t bpf_run(const struct bpf_insn *pc, const uint8_t *pkt, uint32_t len)
{
    uint32_t A = 0, X = 0, mem[16] = {0};
    uint64_t at;
    for (;; pc++) {
        uint32_t k = pc->k;
        switch (pc->code) {
        case 0x06: return k;                        /* ret #k */
        case 0x16: return A;                        /* ret a */
        case 0x20:                                  /* ld [k] */
            if ((uint64_t)k + 4 > len) return 0;
            A = bpf_load32(pkt + k); continue;
        case 0x28:                                  /* ldh [k] */
            if ((uint64_t)k + 2 > len) return 0;
            A = bpf_load16(pkt + k); continue;
        case 0x30:                                  /* ldb [k] */
            if ((uint64_t)k >= len) return 0;
            A = pkt[k]; continue;
        case 0x40:                                  /* ld [x + k] */
            at = (uint64_t)X + k;
            if (at + 4 > len) return 0;
            A = bpf_load32(pkt + at); continue;
        case 0x48:                                  /* ldh [x + k] */
            at = (uint64_t)X + k;
            if (at + 2 > len) return 0;
            A = bpf_load16(pkt + at); continue;
        case 0x50:                                  /* ldb [x + k] */
            at = (uint64_t)X + k;
            if (at >= len) return 0;
            A = pkt[at]; continue;
        case 0x00: A = k; continue;                 /* ld #k */
        case 0x60: A = mem[k & 15]; continue;       /* ld M[k] */
        case 0x80: A = len; continue;               /* ld #len */
        case 0x01: X = k; continue;                 /* ldx #k */
        case 0x61: X = mem[k & 15]; continue;       /* ldx M[k] */
        case 0x81: X = len; continue;               /* ldx #len */
        case 0xb1:                                  /* ldxb 4*([k]&0xf) */
            if ((uint64_t)k >= len) return 0;
            X = (pkt[k] & 0xf) << 2; continue;
        case 0x02: mem[k & 15] = A; continue;       /* st M[k] */
        case 0x03: mem[k & 15] = X; continue;       /* stx M[k] */
        case 0x04: A += k; continue;
        case 0x0c: A += X; continue;
        case 0x14: A -= k; continue;
        case 0x1c: A -= X; continue;
        case 0x24: A *= k; continue;
        case 0x2c: A *= X; continue;
        case 0x34: A /= k; continue;                /* k != 0: validated */
        case 0x3c: if (!X) return 0; A /= X; continue;
        case 0x94: A %= k; continue;
        case 0x9c: if (!X) return 0; A %= X; continue;
        case 0x44: A |= k; continue;
        case 0x4c: A |= X; continue;
        case 0x54: A &= k; continue;
        case 0x5c: A &= X; continue;
        case 0xa4: A ^= k; continue;
        case 0xac: A ^= X; continue;
        case 0x64: A <<= k; continue;               /* k < 32: validated */
        case 0x6c: A = X < 32 ? A << X : 0; continue;
        case 0x74: A >>= k; continue;
        case 0x7c: A = X < 32 ? A >> X : 0; continue;
        case 0x84: A = -A; continue;
        case 0x05: pc += k; continue;               /* ja */
        case 0x15: pc += (A == k) ? pc->jt : pc->jf; continue;
        case 0x1d: pc += (A == X) ? pc->jt : pc->jf; continue;
        case 0x25: pc += (A > k) ? pc->jt : pc->jf; continue;
        case 0x2d: pc += (A > X) ? pc->jt : pc->jf; continue;
        case 0x35: pc += (A >= k) ? pc->jt : pc->jf; continue;
        case 0x3d: pc += (A >= X) ? pc->jt : pc->jf; continue;
        case 0x45: pc += (A & k) ? pc->jt : pc->jf; continue;
        case 0x4d: pc += (A & X) ? pc->jt : pc->jf; continue;
        case 0x07: X = A; continue;                 /* tax */
        case 0x87: A = X; continue;                 /* txa */
        default: return 0;
        }
    }
}

/* mask[i] = 1 when packet i (mem[offsets[i]], lengths[i] bytes) matches.
 * A packet reaching outside mem does not match. Returns the matches. */
static inline uint32_t bpf_apply(const struct bpf_insn *prog, bpf_match_fn fn,
                                 const uint8_t *pkt, uint32_t len)
{
    return fn ? fn(pkt, len) : bpf_run(prog, pkt, len);
}

int64_t bpf_match_array(const struct bpf_insn *prog, bpf_match_fn fn,
                        const uint8_t *mem, uint64_t memsize,
                        const int64_t *offsets, const int64_t *lengths, int64_t n,
                        uint8_t *mask)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = offsets[i], len = lengths[i];
        int ok = off >= 0 && len >= 0 && (uint64_t)off <= memsize
                 && (uint64_t)len <= memsize - (uint64_t)off && len <= 0xffffffffLL
                 && bpf_apply(prog, fn, mem + off, (uint32_t)len) != 0;
        mask[i] = (uint8_t)ok;
        hits += ok;
    }
    return hits;
}

/* Moves every packet of `in` to `out` when it matches, to `rejected` (or
 * frees it, when NULL) when not. counters[0] += passed, counters[1] +=
 * rejected. Returns the packets taken. Packets are taken and given in
 * batches (the link counters are updated once), and the data of a packet
 * a few ahead is prefetched while the current one is matched. */
int bpf_filter_link(const struct bpf_insn *prog, bpf_match_fn fn, struct link *in,
                    struct link *out, struct link *rejected, uint64_t *counters)
{
    struct packet *pkts[LINK_RING_SIZE], *rej[LINK_RING_SIZE];
    int n = link_receive_batch(in, pkts, LINK_RING_SIZE), npass = 0, nrej = 0;
    for (int i = 0; i < n; i++) {
        if (i + 4 < n)
            __builtin_prefetch(pkts[i + 4]->buf + pkts[i + 4]->headroom);
        struct packet *p = pkts[i];
        if (bpf_apply(prog, fn, p->buf + p->headroom, p->length))
            pkts[npass++] = p;
        else if (rejected)
            rej[nrej++] = p;
        else {
            packet_free(p);
            nrej++;
        }
    }
    link_transmit_batch(out, pkts, npass);
    if (rejected)
        link_transmit_batch(rejected, rej, nrej);
    counters[0] += (uint64_t)npass;
    counters[1] += (uint64_t)nrej;
    return n;
}
