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
    uint32_t state;     /* who holds it: PACKET_OWNED, _FREE or _ON_LINK */
    uint8_t  buf[10488];
};

/* packet.state: checked on free and transmit, so that a packet freed twice,
 * or freed (or sent again) while a link holds it, is refused and reported
 * instead of corrupting the freelist. */
#define PACKET_OWNED 0
#define PACKET_FREE 1
#define PACKET_ON_LINK 2

/* Per-app packet counts: the engine sets packet_app to the slot of the app
 * it calls (0: no app), and allocation and free count into that slot. */
#define PACKET_MAX_APPS 4096
struct packet_account {
    uint64_t allocated;
    uint64_t freed;
};
extern uint32_t packet_app;
extern struct packet_account packet_accounts[4096];

/* The first misuse of a packet since the last packet_take_fault(). */
#define PACKET_FAULT_FREED_TWICE 1
#define PACKET_FAULT_FREED_ON_LINK 2
#define PACKET_FAULT_SENT_FREE 3
#define PACKET_FAULT_SENT_TWICE 4
struct packet_fault {
    uint64_t count;     /* misuses refused since the last take; 0: none */
    uintptr_t packet;   /* the first one's packet */
    uint32_t app;       /* and the slot of the app running then */
    uint32_t kind;      /* PACKET_FAULT_* */
};
/* Nonzero once a fault or an exhaustion waits to be taken: the engine reads
 * this one word after every breath. */
extern uint32_t packet_alarm;

/* Lifetime counts, for the rule "every packet is sent on or freed". */
struct packet_stats {
    uint64_t allocated;   /* taken from the freelist */
    uint64_t freed;       /* given back to the freelist */
    uint64_t freed_bytes; /* payload bytes of the packets freed */
    uint64_t created;     /* carved out of DMA memory, ever */
    uint64_t nfree;       /* on the freelist now */
    uint64_t max;         /* most packets that may be created */
    uint64_t exhausted;   /* allocations refused: packet memory exhausted */
    uint32_t exhausted_app; /* slot of the app refused first */
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
uint64_t packet_stride(void);
uint64_t packet_freelist_add(uintptr_t base, uint64_t size, uint64_t boundary);
void packet_get_stats(struct packet_stats *out);
uint64_t packet_freelist_duplicates(void);
void packet_set_max(uint64_t max);
int packet_take_fault(struct packet_fault *out);
void packet_misused(struct packet *p, uint32_t kind);
extern "Python" int snabbpy_packet_grow(void);
