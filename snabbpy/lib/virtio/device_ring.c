/* Device side of a split virtqueue over untrusted guest memory: see
 * device_ring.h for the API and the safety rules. This file: the ring
 * entries and the queue's life; the other device_ring_*.c files hold the
 * memory table, chain walking and the two directions. Everything the guest
 * wrote is read once into a local and checked there. */

/* Descriptor flags and ring layout, from the virtio spec (the same values
 * as lib/virtio/vring.h, which this file does not include so that both can
 * be linked into one extension in any order). */
#define DR_DESC_NEXT 1
#define DR_DESC_WRITE 2
#define DR_DESC_INDIRECT 4
#define DR_AVAIL_NO_INTERRUPT 1
#define DR_USED_NO_NOTIFY 1
#define DR_HDR_NEEDS_CSUM 1

enum dr_reason {
    DR_OK = 0, DR_BAD_INDEX, DR_BAD_ADDR, DR_BAD_CHAIN, DR_BAD_INDIRECT,
    DR_BAD_DIRECTION, DR_BAD_HEADER, DR_TOO_LONG,
};

struct dr_desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };

/* -- ring access ------------------------------------------------------- */

static inline uint16_t avail_idx(struct dr_queue *q)
{
    return __atomic_load_n((uint16_t *)(q->avail + 2), __ATOMIC_ACQUIRE);
}

static inline uint16_t avail_entry(struct dr_queue *q, uint16_t i)
{
    uint16_t v;
    memcpy(&v, q->avail + 4 + 2 * (i & (q->size - 1)), 2);
    return v;
}

static inline void used_put(struct dr_queue *q, uint32_t id, uint32_t len)
{
    uint8_t *e = q->used + 4 + 8 * (q->used_idx & (q->size - 1));
    memcpy(e, &id, 4);
    memcpy(e + 4, &len, 4);
    q->used_idx++;
    q->stats->chains++;
}

/* The buffer of the head descriptor of avail entry i into the cache, if
 * the driver has made i available (from last_avail up to idx): see
 * prefetch_buffer. */
static inline void dr_prefetch(struct dr_queue *q, uint16_t i, uint16_t idx, int write)
{
    if ((uint16_t)(i - q->last_avail) >= (uint16_t)(idx - q->last_avail))
        return;
    uint16_t head = avail_entry(q, i);
    if (head >= q->size)
        return;
    prefetch_buffer(q->mem, q->desc + 16u * head, write);
}

/* At a call's start: the buffers of the first DR_AHEAD entries. */
static void dr_prefetch_window(struct dr_queue *q, uint16_t idx, int write)
{
    for (uint16_t k = 0; k < DR_AHEAD; k++)
        dr_prefetch(q, (uint16_t)(q->last_avail + k), idx, write);
}

/* need_event of the spec: did the used index just pass event? */
static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Publishes used entries old..used_idx and decides whether to interrupt. */
static void used_publish(struct dr_queue *q, uint16_t old)
{
    q->interrupt = 0;
    if (q->used_idx == old)
        return;
    __atomic_store_n((uint16_t *)(q->used + 2), q->used_idx, __ATOMIC_RELEASE);
    /* The driver writes its flags/used_event then reads used->idx; we write
     * used->idx then read them: a full barrier keeps either from missing. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (q->flags & DR_F_EVENT_IDX) {
        uint16_t event;
        memcpy(&event, q->avail + 4 + 2 * q->size, 2);
        q->interrupt = need_event(event, q->used_idx, old);
    } else {
        uint16_t flags;
        memcpy(&flags, q->avail, 2);
        q->interrupt = !(flags & DR_AVAIL_NO_INTERRUPT);
    }
    q->stats->interrupts += q->interrupt;
}

/* Entries available now; 0 and the queue marked broken when the guest's
 * index ran further ahead than a queue can hold. */
static uint32_t take_pending(struct dr_queue *q, uint16_t *idx)
{
    if (!q->ready || q->broken)
        return 0;
    *idx = avail_idx(q);
    uint32_t n = (uint16_t)(*idx - q->last_avail);
    if (n > q->size) {
        q->broken = 1;
        q->stats->bad_avail_idx++;
        return 0;
    }
    return n;
}

uint32_t dr_queue_pending(struct dr_queue *q)
{
    if (!q->ready || q->broken)
        return 0;
    return (uint16_t)(avail_idx(q) - q->last_avail);
}

/* -- queue life -------------------------------------------------------- */

int dr_queue_start(struct dr_queue *q, struct dr_memory *m, struct dr_stats *s,
                   uint32_t size, uint64_t desc_user, uint64_t avail_user,
                   uint64_t used_user, uint16_t last_avail, uint32_t flags)
{
    memset(q, 0, sizeof *q);
    q->mem = m;
    q->stats = s;
    if (size == 0 || size > DR_MAX_QUEUE_SIZE || (size & (size - 1)))
        return DR_E_SIZE;
    uint32_t event = flags & DR_F_EVENT_IDX ? 2 : 0;
    q->desc = dr_translate_user(m, desc_user, 16ull * size);
    if (!q->desc || desc_user % 16)
        return DR_E_DESC;
    q->avail = dr_translate_user(m, avail_user, 4 + 2ull * size + event);
    if (!q->avail || avail_user % 2)
        return DR_E_AVAIL;
    q->used = dr_translate_user(m, used_user, 4 + 8ull * size + event);
    if (!q->used || used_user % 4)
        return DR_E_USED;
    q->size = size;
    q->flags = flags;
    q->hdr_len = flags & (DR_F_MRG_RXBUF | DR_F_VERSION_1) ? 12 : 10;
    q->last_avail = last_avail;
    q->used_idx = __atomic_load_n((uint16_t *)(q->used + 2), __ATOMIC_ACQUIRE);
    uint16_t used_flags = DR_USED_NO_NOTIFY;
    memcpy(q->used, &used_flags, 2);
    q->ready = 1;
    return 0;
}

uint16_t dr_queue_stop(struct dr_queue *q)
{
    q->ready = 0;
    q->interrupt = 0;
    return q->last_avail;
}
