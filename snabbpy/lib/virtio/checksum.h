/* vguest: checksum offload on transmit (VIRTIO_NET_F_CSUM). Fills a
 * virtio-net header (hdr, 10 or 12 bytes, zeroed by the caller) for the
 * Ethernet frame at frame, and seeds its TCP/UDP checksum field with the
 * pseudo-header sum; frames it cannot offload are left alone. */

void virtq_checksum_prepare(uint8_t *hdr, uint8_t *frame, uint32_t length);
