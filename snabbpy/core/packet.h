/* Packets: the unit of work. Declarations shared by cffi's cdef and the C
 * sources, so only stdint types and integer #defines appear here. */

#define PACKET_PAYLOAD_SIZE 10240
#define PACKET_HEADROOM 248
#define PACKET_MAX_PACKETS 1048576

/* A packet's payload starts at buf + headroom and is length bytes long.
 * The header is 8 bytes and the default headroom 248, so a fresh packet's
 * payload starts on a 64-byte boundary. */
struct packet {
    uint16_t length;
    uint16_t headroom;
    uint32_t reserved;
    uint8_t  buf[10488];
};

/* Lifetime counts, for the rule "every packet is sent on or freed". */
struct packet_stats {
    uint64_t allocated;   /* taken from the freelist */
    uint64_t freed;       /* given back to the freelist */
    uint64_t freed_bytes; /* payload bytes of the packets freed */
    uint64_t created;     /* carved out of DMA memory, ever */
    uint64_t nfree;       /* on the freelist now */
};

struct packet *packet_allocate(void);
void packet_free(struct packet *p);
struct packet *packet_clone(struct packet *p);
int packet_append(struct packet *p, const uint8_t *data, uint32_t n);
int packet_prepend(struct packet *p, const uint8_t *data, uint32_t n);
int packet_shiftleft(struct packet *p, uint32_t n);
int packet_shiftright(struct packet *p, uint32_t n);
int packet_resize(struct packet *p, uint32_t n);
uint8_t *packet_data(struct packet *p);
uint64_t packet_freelist_add(uintptr_t base, uint64_t size, uint64_t boundary);
void packet_get_stats(struct packet_stats *out);
uint64_t packet_freelist_duplicates(void);
extern "Python" int snabbpy_packet_grow(void);
