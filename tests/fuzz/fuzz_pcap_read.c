/* libFuzzer harness: the classic-pcap record reader of the PcapReader app
 * (pcap_read_batch in snabbpy/apps/pcap/pcap.c) over a buffer of file
 * bytes taken from the input, in the chunks the app would hand it.
 *
 * Input: byte order (1 byte), snaplen (4), chunk size (2), then the records.
 * The buffer is allocated at its exact size, so reading one byte past it is
 * an ASan report. Packets read are written back with pcap_write_batch and
 * read again: the round trip must give the same payloads. */

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_packets_init();
    struct input in = { data, size };
    uint8_t c0 = in_u8(&in);
    uint32_t snaplen = in_u32(&in);
    int max = 1 + in_u16(&in) % 64;
    size_t n = in.n;
    uint8_t *buf = malloc(n ? n : 1);
    memcpy(buf, in.p, n);

    struct pcap_reader_state st = {0};
    st.swap = c0 & 1;
    st.nanosecond = c0 >> 1 & 1;
    /* As parse_file_header bounds it: a snaplen of 0 or above a packet
     * still allows records up to a packet's size and more. */
    st.max_incl = snaplen;
    st.limit = n;
    struct link out;
    fuzz_link_init(&out);
    uint64_t records = 0;
    while (!link_full(&out)) {
        int room = link_nwritable(&out);
        int got = pcap_read_batch(&st, buf, &out, max < room ? max : room);
        FUZZ_CHECK(got >= 0 && got <= max);
        FUZZ_CHECK(st.pos <= st.limit);
        FUZZ_CHECK(st.records >= records);
        records = st.records;
        if (st.status != PCAP_OK)
            break;
    }
    FUZZ_CHECK(st.packets == (uint64_t)link_nreadable(&out));
    FUZZ_CHECK(st.packets + st.oversize == st.records);

    /* Round trip through the writer. */
    int npkt = link_nreadable(&out);
    uint32_t cap = (uint32_t)(n + 16), used = 0;
    uint8_t *copy = malloc(cap);
    struct link keep;
    fuzz_link_init(&keep);
    uint8_t *want = malloc(n ? n : 1);
    uint32_t want_len = 0;
    for (int i = 0; i < npkt; i++) {
        struct packet *p = link_receive(&out);
        FUZZ_CHECK(p->length <= PACKET_PAYLOAD_SIZE && p->length <= st.max_incl);
        memcpy(want + want_len, p->buf + p->headroom, p->length);
        want_len += p->length;
        link_transmit(&keep, p);
    }
    FUZZ_CHECK(pcap_write_batch(&keep, copy, cap, &used, 1, 2, 0, 0) == npkt);
    FUZZ_CHECK(link_empty(&keep));
    struct pcap_reader_state again = {0};
    again.max_incl = PACKET_PAYLOAD_SIZE;
    again.limit = used;
    FUZZ_CHECK(pcap_read_batch(&again, copy, &out, npkt) == npkt);
    FUZZ_CHECK(again.pos == used && again.bytes == want_len);
    uint32_t at = 0;
    while (!link_empty(&out)) {
        struct packet *p = link_receive(&out);
        FUZZ_CHECK(memcmp(want + at, p->buf + p->headroom, p->length) == 0);
        at += p->length;
        packet_free(p);
    }
    free(want);
    free(copy);
    free(buf);
    check_no_leak();
    return 0;
}
