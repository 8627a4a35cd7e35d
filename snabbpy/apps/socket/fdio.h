/* Packets to and from a file descriptor, a batch per call: a raw socket
 * (snabbpy.apps.socket) or a TAP device (snabbpy.apps.tap). */

/* Counter indexes, in the order of the apps' `counters` tuple. */
#define FDIO_RX_PACKETS 0
#define FDIO_RX_BYTES 1
#define FDIO_RX_OVERSIZE 2
#define FDIO_RX_NOMEM 3
#define FDIO_RX_ERRORS 4
#define FDIO_TX_PACKETS 5
#define FDIO_TX_BYTES 6
#define FDIO_TX_AGAIN 7
#define FDIO_TX_TOOLONG 8
#define FDIO_TX_DOWN 9
#define FDIO_TX_ERRORS 10

/* Frames per recvmmsg/sendmmsg call on a socket. */
#define FDIO_BATCH 64

struct fdio {
    int fd;
    int is_socket;          /* 1: recvmmsg/sendmmsg, MSG_DONTWAIT; 0: read/write */
    int rx_errno;           /* last unexpected receive error */
    int tx_errno;           /* last unexpected send error */
    int nspare;             /* packets in spare[] */
    struct packet *spare[64]; /* allocated, not yet filled: kept across calls */
};

/* Up to max frames from the fd onto out; returns how many. */
int fdio_receive(struct fdio *f, struct link *out, int max, uint64_t *stats);
/* Up to max packets of in to the fd; returns how many were sent. A packet
 * the kernel has no room for (EAGAIN, ENOBUFS) stays on in. */
int fdio_send(struct fdio *f, struct link *in, int max, uint64_t *stats);
