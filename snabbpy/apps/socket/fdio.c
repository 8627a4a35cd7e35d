/* Frames in and out of a non-blocking fd, straight into packet buffers: no
 * Python per frame and no extra copy. A socket moves up to FDIO_BATCH
 * frames per system call (recvmmsg/sendmmsg); a tap fd one (read/write). */

/* struct mmsghdr, which <sys/socket.h> only declares under _GNU_SOURCE;
 * the layout is the kernel's ABI. */
struct fdio_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/* struct tpacket_auxdata of <linux/if_packet.h> (kernel ABI): with
 * PACKET_AUXDATA on, the VLAN tag the kernel took out of a frame. */
struct fdio_auxdata {
    uint32_t tp_status, tp_len, tp_snaplen;
    uint16_t tp_mac, tp_net, tp_vlan_tci, tp_vlan_tpid;
};
#define FDIO_SOL_PACKET 263
#define FDIO_PACKET_AUXDATA 8
#define FDIO_TP_STATUS_VLAN_VALID 0x10
#define FDIO_TP_STATUS_VLAN_TPID_VALID 0x40
#define FDIO_CONTROL_SIZE 64

/* Puts back the VLAN tag the kernel stripped (rx VLAN offload), so a frame
 * leaves snabbpy as it was on the wire. Returns the new length. */
static long fdio_restore_vlan(struct packet *p, long len, struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        struct fdio_auxdata aux;
        if (c->cmsg_level != FDIO_SOL_PACKET || c->cmsg_type != FDIO_PACKET_AUXDATA
            || c->cmsg_len < CMSG_LEN(sizeof(aux)))
            continue;
        memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        if (!(aux.tp_status & FDIO_TP_STATUS_VLAN_VALID) || len < 12 || p->headroom < 4)
            return len;
        if (len + 4 > PACKET_PAYLOAD_SIZE)
            return len + 4;  /* does not fit with its tag: counted as oversize */
        uint16_t tpid = (aux.tp_status & FDIO_TP_STATUS_VLAN_TPID_VALID)
            ? aux.tp_vlan_tpid : 0x8100;
        uint8_t tag[4] = { tpid >> 8, tpid & 0xff, aux.tp_vlan_tci >> 8, aux.tp_vlan_tci & 0xff };
        p->headroom -= 4;
        uint8_t *d = p->buf + p->headroom;
        memmove(d, d + 4, 12);
        memcpy(d + 12, tag, 4);
        return len + 4;
    }
    return len;
}

static struct packet *fdio_take_spare(struct fdio *f)
{
    if (f->nspare == 0) {
        struct packet *p = packet_allocate();
        if (!p) return NULL;
        f->spare[f->nspare++] = p;
    }
    return f->spare[f->nspare - 1];
}

/* Fill the spares up to n packets; returns how many there are. */
static int fdio_fill_spares(struct fdio *f, int n)
{
    while (f->nspare < n) {
        struct packet *p = packet_allocate();
        if (!p) break;
        f->spare[f->nspare++] = p;
    }
    return f->nspare < n ? f->nspare : n;
}

static int fdio_rx_error(struct fdio *f, uint64_t *stats)
{
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        stats[FDIO_RX_ERRORS]++;
        f->rx_errno = errno;
    }
    return 0;
}

/* Delivers spare[i] holding a frame of len bytes (the spare leaves the
 * array: the caller compacts). Returns 1 when delivered. */
static int fdio_deliver(struct packet *p, long len, struct link *out, uint64_t *stats)
{
    if (len > PACKET_PAYLOAD_SIZE) { stats[FDIO_RX_OVERSIZE]++; return 0; }
    p->length = (uint16_t)len;
    link_transmit(out, p);
    stats[FDIO_RX_PACKETS]++;
    stats[FDIO_RX_BYTES] += (uint64_t)len;
    return 1;
}

static int fdio_receive_socket(struct fdio *f, struct link *out, int max, uint64_t *stats)
{
    struct fdio_mmsghdr msgs[FDIO_BATCH];
    struct iovec iov[FDIO_BATCH];
    uint64_t control[FDIO_BATCH][FDIO_CONTROL_SIZE / 8];  /* aligned for cmsghdr */
    int want = fdio_fill_spares(f, max < FDIO_BATCH ? max : FDIO_BATCH);
    if (want == 0) { if (max > 0) stats[FDIO_RX_NOMEM]++; return 0; }
    memset(msgs, 0, sizeof(msgs[0]) * want);
    for (int i = 0; i < want; i++) {
        struct packet *p = f->spare[f->nspare - 1 - i];
        iov[i].iov_base = p->buf + p->headroom;
        iov[i].iov_len = PACKET_PAYLOAD_SIZE;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = FDIO_CONTROL_SIZE;
    }
    /* MSG_TRUNC: msg_len is a frame's real length even when it did not fit. */
    long got = syscall(SYS_recvmmsg, f->fd, msgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (got <= 0) return got < 0 ? fdio_rx_error(f, stats) : 0;
    /* Take the filled buffers out of the spares first: an oversize frame's
     * buffer goes back on top, and must not land on one not yet handled. */
    struct packet *filled[FDIO_BATCH];
    for (int i = 0; i < got; i++)
        filled[i] = f->spare[f->nspare - 1 - i];
    f->nspare -= (int)got;
    int n = 0;
    for (int i = 0; i < got; i++) {
        struct packet *p = filled[i];
        long len = msgs[i].msg_len;
        if (len <= PACKET_PAYLOAD_SIZE)
            len = fdio_restore_vlan(p, len, &msgs[i].msg_hdr);
        if (fdio_deliver(p, len, out, stats)) n++;
        else f->spare[f->nspare++] = p;  /* oversize: the buffer is reused */
    }
    return n;
}

static int fdio_receive_fd(struct fdio *f, struct link *out, int max, uint64_t *stats)
{
    int n = 0;
    uint8_t overflow; /* a frame that reaches it did not fit in a packet */
    while (n < max) {
        struct packet *p = fdio_take_spare(f);
        if (!p) { stats[FDIO_RX_NOMEM]++; break; }
        /* A tap fd truncates a frame to the buffer and returns only what it
         * copied: one byte more than a packet holds tells a long frame
         * from one that fits exactly. */
        struct iovec iov[2] = { { p->buf + p->headroom, PACKET_PAYLOAD_SIZE },
                                { &overflow, 1 } };
        long r = syscall(SYS_readv, f->fd, iov, 2);
        if (r < 0) {
            if (errno == EINTR) continue;
            fdio_rx_error(f, stats);
            break;
        }
        if (fdio_deliver(p, r, out, stats)) { f->nspare--; n++; }
    }
    return n;
}

int fdio_receive(struct fdio *f, struct link *out, int max, uint64_t *stats)
{
    if (!f->is_socket)
        return fdio_receive_fd(f, out, max, stats);
    int n = 0, got;
    while (n < max && (got = fdio_receive_socket(f, out, max - n, stats)) > 0)
        n += got;
    return n;
}

/* Handles a failed send of the front packet: 1 when the caller should
 * go on (the packet was dropped and counted), 0 to stop (no room now). */
static int fdio_tx_error(struct fdio *f, struct link *in, uint64_t *stats)
{
    int e = errno;
    if (e == EINTR) return 1;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
        stats[FDIO_TX_AGAIN]++;
        return 0;
    }
    if (e == EMSGSIZE) stats[FDIO_TX_TOOLONG]++;
    else if (e == ENETDOWN || e == ENXIO || e == EIO) stats[FDIO_TX_DOWN]++;
    else stats[FDIO_TX_ERRORS]++;
    f->tx_errno = e;
    packet_free(link_receive(in));
    return 1;
}

static void fdio_sent(struct link *in, uint64_t *stats)
{
    struct packet *p = link_receive(in);
    stats[FDIO_TX_PACKETS]++;
    stats[FDIO_TX_BYTES] += p->length;
    packet_free(p);
}

/* Up to FDIO_BATCH packets from the front of in, in one sendmmsg. */
static int fdio_send_socket(struct fdio *f, struct link *in, int max, uint64_t *stats)
{
    struct fdio_mmsghdr msgs[FDIO_BATCH];
    struct iovec iov[FDIO_BATCH];
    int n = link_nreadable(in);
    if (n > max) n = max;
    if (n > FDIO_BATCH) n = FDIO_BATCH;
    memset(msgs, 0, sizeof(msgs[0]) * n);
    for (int i = 0; i < n; i++) {
        struct packet *p = in->ring[(in->read + i) & (LINK_RING_SIZE - 1)];
        iov[i].iov_base = p->buf + p->headroom;
        iov[i].iov_len = p->length;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = syscall(SYS_sendmmsg, f->fd, msgs, n, MSG_DONTWAIT);
    if (sent < 0)
        return fdio_tx_error(f, in, stats) ? 0 : -1;
    for (long i = 0; i < sent; i++)
        fdio_sent(in, stats);
    return (int)sent;
}

int fdio_send(struct fdio *f, struct link *in, int max, uint64_t *stats)
{
    int n = 0;
    while (n < max && !link_empty(in)) {
        if (f->is_socket) {
            int sent = fdio_send_socket(f, in, max - n, stats);
            if (sent < 0) break;
            n += sent;
            continue;
        }
        struct packet *p = link_front(in);
        if (write(f->fd, p->buf + p->headroom, p->length) < 0) {
            if (!fdio_tx_error(f, in, stats)) break;
            continue;
        }
        fdio_sent(in, stats);
        n++;
    }
    return n;
}
