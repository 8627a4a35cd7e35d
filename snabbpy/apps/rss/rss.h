/* RSS: a symmetric flow hash and the spreading of a link over outputs
 * (snabbpy.apps.rss). */

uint32_t rss_hash(const uint8_t *frame, uint32_t length);
int rss_spread(struct link *in, struct link **outs, int nouts);
int rss_spread_lossless(struct link *in, struct link **outs, int nouts);
int rss_flows_fill(struct link *out, const uint8_t *frames, uint32_t size, uint32_t n,
                   uint32_t *next);
