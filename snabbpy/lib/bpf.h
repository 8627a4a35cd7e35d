/* Classic BPF (the programs libpcap's pcap_compile makes): an interpreter
 * over packets, arrays of packets and whole links (snabbpy.lib.bpf).
 * Programs must have passed bpf.validate() first: jumps in range, known
 * opcodes, scratch indices < 16, no constant division by zero, a RET last.
 * Packet loads are bounds-checked at run time (past the end rejects). */

struct bpf_insn {
    uint16_t code;
    uint8_t  jt;
    uint8_t  jf;
    uint32_t k;
};

/* A program translated to C and compiled (snabbpy.lib.bpf_codegen): same
 * semantics as bpf_run. The batch functions take one, or NULL to
 * interpret `prog`. */
typedef uint32_t (*bpf_match_fn)(const uint8_t *pkt, uint32_t len);

uint32_t bpf_run(const struct bpf_insn *prog, const uint8_t *pkt, uint32_t len);
int64_t bpf_match_array(const struct bpf_insn *prog, bpf_match_fn fn,
                        const uint8_t *mem, uint64_t memsize,
                        const int64_t *offsets, const int64_t *lengths, int64_t n,
                        uint8_t *mask);
int bpf_filter_link(const struct bpf_insn *prog, bpf_match_fn fn, struct link *in,
                    struct link *out, struct link *rejected, uint64_t *counters);
