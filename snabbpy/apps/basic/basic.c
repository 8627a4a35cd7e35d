/* Batch operations of the basic apps: each moves a whole link's worth of
 * packets per call. */

/* Round-robin over the outputs, skipping full ones; stops when all are
 * full, leaving the rest on the input. */
int basic_split(struct link *in, struct link **outs, int nouts, uint32_t *next)
{
    int moved = 0, full = 0;
    while (!link_empty(in) && full < nouts) {
        struct link *o = outs[*next];
        *next = (*next + 1) % nouts;
        if (link_full(o)) { full++; continue; }
        full = 0;
        link_transmit(o, link_receive(in));
        moved++;
    }
    return moved;
}

/* Cuts or zero-pads every packet to exactly size bytes. */
int basic_truncate(struct link *in, struct link *out, uint32_t size)
{
    int n = link_nreadable(in);
    if (n > link_nwritable(out)) n = link_nwritable(out);
    for (int i = 0; i < n; i++) {
        struct packet *p = link_receive(in);
        packet_resize(p, size);
        link_transmit(out, p);
    }
    return n;
}

/* Passes one packet in every `every`, frees the others. */
int basic_sample(struct link *in, struct link *out, uint64_t every, uint64_t *seen)
{
    int n = link_nreadable(in);
    for (int i = 0; i < n; i++) {
        struct packet *p = link_receive(in);
        if (++*seen % every == 0)
            link_transmit(out, p);
        else
            packet_free(p);
    }
    return n;
}

/* Fills the output with clones of pkts, in order, round and round. */
int basic_repeat(struct link *out, struct packet **pkts, int npkts, uint32_t *next)
{
    int n = link_nwritable(out), i;
    for (i = 0; i < n; i++) {
        struct packet *p = packet_clone(pkts[*next]);
        if (!p) break;
        link_transmit(out, p);
        *next = (*next + 1) % npkts;
    }
    return i;
}
