/* Frames in and out of a non-blocking fd, straight into packet buffers:
 * one system call per frame but no Python per frame and no extra copy. */

static long fdio_read(struct fdio *f, uint8_t *buf, uint32_t size)
{
    /* MSG_TRUNC: a raw socket says a frame's real length even when it
     * did not fit; a tun/tap fd does that by itself. */
    return f->is_socket ? (long)recv(f->fd, buf, size, MSG_DONTWAIT | MSG_TRUNC)
                        : (long)read(f->fd, buf, size);
}

static long fdio_write(struct fdio *f, const uint8_t *buf, uint32_t size)
{
    return f->is_socket ? (long)send(f->fd, buf, size, MSG_DONTWAIT)
                        : (long)write(f->fd, buf, size);
}

int fdio_receive(struct fdio *f, struct link *out, int max, uint64_t *stats)
{
    int n = 0;
    while (n < max) {
        struct packet *p = f->spare ? f->spare : packet_allocate();
        if (!p) { stats[FDIO_RX_NOMEM]++; break; }
        f->spare = p;
        long r = fdio_read(f, p->buf + p->headroom, PACKET_PAYLOAD_SIZE);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                stats[FDIO_RX_ERRORS]++;
                f->rx_errno = errno;
            }
            break;
        }
        if (r > PACKET_PAYLOAD_SIZE) { stats[FDIO_RX_OVERSIZE]++; continue; }
        p->length = (uint16_t)r;
        f->spare = NULL;
        link_transmit(out, p);
        stats[FDIO_RX_PACKETS]++;
        stats[FDIO_RX_BYTES] += (uint64_t)r;
        n++;
    }
    return n;
}

int fdio_send(struct fdio *f, struct link *in, int max, uint64_t *stats)
{
    int n = 0;
    struct packet *p;
    while (n < max && (p = link_front(in)) != NULL) {
        long r = fdio_write(f, p->buf + p->headroom, p->length);
        if (r < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
                stats[FDIO_TX_AGAIN]++;
                break;
            }
            if (e == EMSGSIZE) stats[FDIO_TX_TOOLONG]++;
            else if (e == ENETDOWN || e == ENXIO || e == EIO) stats[FDIO_TX_DOWN]++;
            else stats[FDIO_TX_ERRORS]++;
            f->tx_errno = e;
            packet_free(link_receive(in));
            continue;
        }
        stats[FDIO_TX_PACKETS]++;
        stats[FDIO_TX_BYTES] += p->length;
        packet_free(link_receive(in));
        n++;
    }
    return n;
}
