/* Batch record <-> packet conversion of the pcap apps (snabbpy.apps.pcap),
 * classic pcap and pcapng. The formats are documented in snabbpy/lib/pcap.py
 * and snabbpy/lib/pcapng.py. */

#define PCAP_OK 0
#define PCAP_NEED_MORE 1
#define PCAP_BAD_LENGTH 2
#define PCAP_NO_MEMORY 3
#define PCAP_META_BLOCK 4   /* reader: a section header or interface block for Python */
#define PCAP_NEW_KEY 5      /* writer: a packet from a source/interface not yet mapped */
#define PCAP_FULL 6         /* writer: the buffer is full */
#define PCAP_RECORD_HEADER_SIZE 16
#define PCAP_META_SIZE 32
#define PCAP_MAX_IFACES 64
#define PCAP_MAX_SOURCES 1024
#define PCAP_KEYS 65536   /* PCAP_MAX_SOURCES * PCAP_MAX_IFACES */
#define PCAP_KEY_MISMATCH 0xffff

/* pcapng bad-block reasons (pcap_reader_state.bad) */
#define PCAPNG_BAD_TOTAL 1      /* block total length < 12, not a multiple of 4, too big */
#define PCAPNG_BAD_TRAILER 2    /* trailing total length differs */
#define PCAPNG_BAD_IFACE 3      /* packet on an interface not described */
#define PCAPNG_BAD_CAPLEN 4     /* captured length exceeds the block */

/* A reader's position in its buffer of file bytes. */
struct pcap_reader_state {
    uint64_t pos;         /* offset of the next record in the buffer */
    uint64_t limit;       /* bytes of file in the buffer */
    uint64_t records;     /* records (pcapng: packet blocks) consumed so far */
    uint64_t packets;     /* packets delivered */
    uint64_t bytes;       /* their payload bytes */
    uint64_t oversize;    /* records longer than a packet: skipped */
    uint64_t over_snaplen;/* records longer than the header's snaplen: read anyway */
    uint64_t blocks;      /* pcapng: blocks consumed */
    uint64_t skipped;     /* pcapng: unknown blocks skipped */
    uint32_t swap;        /* 1: the file's (section's) byte order is not ours */
    uint32_t max_incl;    /* classic: longest incl_len read at all (262144) */
    uint32_t snaplen;     /* classic: the header's snaplen (0: none) */
    uint32_t status;      /* PCAP_OK, PCAP_NEED_MORE, ... */
    uint32_t units;       /* classic: ts_frac units per second (1e6 or 1e9) */
    uint32_t source;      /* the reader's source id (annotation) */
    uint32_t bad;         /* pcapng: why a block is bad */
    uint32_t need;        /* pcapng: length of the block that needs more bytes */
    uint32_t iface_base;  /* pcapng: global index of this section's interface 0 */
    uint32_t nifaces;     /* pcapng: interfaces described so far (global) */
    uint64_t iface_units[PCAP_MAX_IFACES];   /* pcapng: timestamp units per second */
    int64_t iface_offset[PCAP_MAX_IFACES];   /* pcapng: if_tsoffset, seconds */
    uint32_t iface_snaplen[PCAP_MAX_IFACES]; /* pcapng: for simple packet blocks */
};

/* Classic records in buf[pos, limit) to packets on out, at most max of them. */
int pcap_read_batch(struct pcap_reader_state *st, const uint8_t *buf, struct link *out, int max);
/* pcapng blocks in buf[pos, limit) to packets on out; stops at a section
 * header or interface description block (PCAP_META_BLOCK) for the caller. */
int pcapng_read_batch(struct pcap_reader_state *st, const uint8_t *buf, struct link *out, int max);

/* A writer: buffer, what to stamp, how packets map to its interfaces. */
struct pcap_writer_state {
    uint64_t since;       /* ignore annotations with an older serial */
    uint64_t packets, bytes, mismatched;
    uint32_t used, cap;   /* bytes in buf, its size */
    uint32_t sec, nsec;   /* now: for packets without a capture time */
    uint32_t swap;        /* write in the other byte order */
    uint32_t snaplen;     /* cut packets to this (0: never) */
    uint32_t pcapng;      /* 1: enhanced packet blocks, else classic records */
    uint32_t status;
    uint32_t key;         /* PCAP_NEW_KEY: the key met */
    uint16_t *map;        /* key -> 0 unknown, PCAP_KEY_MISMATCH, or out interface + 1 */
    uint64_t units[PCAP_MAX_IFACES];   /* per out interface */
    int64_t offset[PCAP_MAX_IFACES];
};

/* Packets of in to records appended to buf; frees them (or drops those
 * whose key maps to PCAP_KEY_MISMATCH). Stops at PCAP_NEW_KEY / PCAP_FULL. */
int pcap_write_batch(struct pcap_writer_state *w, struct link *in, uint8_t *buf);

/* The annotation key (source * 64 + interface) of a packet, 0 without one. */
uint32_t pcap_packet_key(struct packet *p, uint64_t since);

/* The capture timestamp a packet carries: 1 and out = sec, frac, orig_len,
 * units, key when valid and newer than serial `since`, else 0. */
int pcap_packet_timestamp(struct packet *p, uint32_t *out, uint64_t since);

/* Packets annotated so far in this process. */
uint64_t pcap_serial(void);
