/* Batch operations of the basic apps (snabbpy.apps.basic). */

int basic_split(struct link *in, struct link **outs, int nouts, uint32_t *next);
int basic_truncate(struct link *in, struct link *out, uint32_t size);
int basic_sample(struct link *in, struct link *out, uint64_t every, uint64_t *seen);
int basic_repeat(struct link *out, struct packet **pkts, int npkts, uint32_t *next);
