/* The DEVICE side of a virtio-net control virtqueue (virtio 1.x 5.1.6.5):
 * a chain of driver-readable bytes (class u8, command u8, data) followed
 * by one device-writable ack byte. Built on device_ring.c's queue (start
 * and stop it with dr_queue_start/dr_queue_stop) and its checked chain
 * walk, so a hostile chain is refused as a data-queue chain would be; on
 * a packed ring (pd_ctrl_*) on packed_device.c's queue and walk, with the
 * same rules for what a command is.
 *
 *   struct dr_ctrl_cmd c;
 *   while (dr_ctrl_take(&q, &c) != 0)      1: c holds a command, -1: a bad
 *       if (taken == 1) {                      chain was consumed (counted)
 *           ... decide ack from c.data / c.len ...
 *           dr_ctrl_complete(&q, &c, ack);  writes ack, returns the chain
 *       }
 *   if (q.interrupt) write 1 to the queue's call eventfd
 *
 * One command at a time: dr_ctrl_complete before the next dr_ctrl_take.
 * Packed rings: the same with pd_ctrl_take / pd_ctrl_complete on a pd_queue.
 */

/* Bytes of a command kept in struct dr_ctrl_cmd.data; longer commands are
 * still taken (len says how long) but only their start is readable. */
#define DR_CTRL_MAX 64

struct dr_ctrl_cmd {
    uint32_t len;            /* driver-readable bytes of the chain */
    uint16_t head;           /* the chain (packed: its buffer id), to complete it */
    uint16_t slots;          /* packed: ring slots the chain took */
    uint8_t *ack;            /* host address of the ack byte */
    uint8_t data[64];        /* the first DR_CTRL_MAX readable bytes */
};

/* Takes the next chain: 1 with a command in *c, 0 when none is pending,
 * -1 when the chain was malformed (no writable byte after the readable
 * part, a readable buffer after a writable one, a bad index, address or
 * loop): it is returned with length 0 at once and counted in q->stats. */
int dr_ctrl_take(struct dr_queue *q, struct dr_ctrl_cmd *c);
/* Writes ack into the command's ack byte, returns its chain in the used
 * ring (length 1) and publishes it (q->interrupt says whether to call). */
void dr_ctrl_complete(struct dr_queue *q, struct dr_ctrl_cmd *c, uint8_t ack);
/* As dr_ctrl_take and dr_ctrl_complete, on a packed ring: a bad chain
 * (also one whose NEXT leads to a slot not yet available, or longer than
 * the ring) is taken whole and returned with length 0. */
int pd_ctrl_take(struct pd_queue *q, struct dr_ctrl_cmd *c);
void pd_ctrl_complete(struct pd_queue *q, struct dr_ctrl_cmd *c, uint8_t ack);
