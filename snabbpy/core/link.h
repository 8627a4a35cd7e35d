/* Links: single-producer single-consumer rings of packet pointers. */

#define LINK_RING_SIZE 1024
#define LINK_MAX_PACKETS 1023

struct link_stats {
    uint64_t txpackets;
    uint64_t txbytes;
    uint64_t rxpackets;
    uint64_t rxbytes;
    uint64_t txdrop;
};

struct link {
    struct packet *ring[1024];
    uint32_t read;
    uint32_t write;
    struct link_stats *stats;   /* lives in a shared-memory counter file */
};

int link_empty(struct link *l);
int link_full(struct link *l);
int link_nreadable(struct link *l);
int link_nwritable(struct link *l);
struct packet *link_receive(struct link *l);
struct packet *link_front(struct link *l);
/* The packet n places behind the front (0: the front) without taking it;
 * NULL if fewer are waiting. */
struct packet *link_peek(struct link *l, int n);
void link_transmit(struct link *l, struct packet *p);

/* Batch forms: many packets per call, so per-packet work runs in C. */
int link_receive_batch(struct link *l, struct packet **out, int max);
int link_transmit_batch(struct link *l, struct packet **in, int n);
int link_forward(struct link *in, struct link *out, int max);
int link_free_all(struct link *l);
int link_fill_clone(struct link *out, struct packet *tmpl, int n);
int link_tee(struct link *in, struct link **outs, int nouts);
uint64_t link_progress(void);
