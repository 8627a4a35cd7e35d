/* Batch record <-> packet conversion of the pcap apps (snabbpy.apps.pcap).
 * The file format itself is documented in snabbpy/lib/pcap.py. */

#define PCAP_OK 0
#define PCAP_NEED_MORE 1
#define PCAP_BAD_LENGTH 2
#define PCAP_NO_MEMORY 3
#define PCAP_RECORD_HEADER_SIZE 16
#define PCAP_META_SIZE 24

/* A reader's position in its buffer of file bytes. */
struct pcap_reader_state {
    uint64_t pos;         /* offset of the next record in the buffer */
    uint64_t limit;       /* bytes of file in the buffer */
    uint64_t records;     /* records consumed so far (packets and skipped) */
    uint64_t packets;     /* packets delivered */
    uint64_t bytes;       /* their payload bytes */
    uint64_t oversize;    /* records longer than a packet: skipped */
    uint32_t swap;        /* 1: the file's byte order is not ours */
    uint32_t max_incl;    /* longest incl_len allowed (snaplen) */
    uint32_t status;      /* PCAP_OK, PCAP_NEED_MORE, ... */
    uint32_t nanosecond;  /* 1: ts_frac is nanoseconds */
};

/* Records in buf[pos, limit) to packets on out, at most max of them. */
int pcap_read_batch(struct pcap_reader_state *st, const uint8_t *buf, struct link *out, int max);

/* Packets of in to records appended to buf[*used, cap); frees them. A
 * packet without a capture timestamp read since serial `since` gets
 * (sec, nsec). */
int pcap_write_batch(struct link *in, uint8_t *buf, uint32_t cap, uint32_t *used,
                     uint32_t sec, uint32_t nsec, uint32_t nanosecond, uint64_t since);

/* The capture timestamp a packet carries from a PcapReader: 1 and
 * out[0..2] = sec, nsec, orig_len when it has a valid one annotated after
 * serial `since`, else 0. */
int pcap_packet_timestamp(struct packet *p, uint32_t *out, uint64_t since);

/* Packets annotated so far in this process: a writer starting now
 * ignores every older annotation. */
uint64_t pcap_serial(void);
