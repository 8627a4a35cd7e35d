/* Checksum offload on transmit (CSUM negotiated): for TCP or UDP over IPv4
 * or IPv6 in an untagged Ethernet frame, seed the checksum field with the
 * pseudo-header sum and ask the device to finish it from csum_start. Any
 * other frame goes as it is. */
static uint32_t vq_sum16(const uint8_t *b, uint32_t n, uint32_t sum)
{
    for (uint32_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)b[i] << 8 | b[i + 1];
    if (n & 1)
        sum += (uint32_t)b[n - 1] << 8;
    return sum;
}

/* The device sums to the end of the frame: padding must add nothing. */
static int vq_zero_padding(const uint8_t *frame, uint32_t end, uint32_t length)
{
    for (uint32_t i = end; i < length; i++)
        if (frame[i])
            return 0;
    return 1;
}

void virtq_checksum_prepare(uint8_t *hdr, uint8_t *frame, uint32_t length)
{
    uint32_t l4, sum, proto, l4len;
    if (length < 14)
        return;
    uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
    uint8_t *ip = frame + 14;
    if (type == 0x0800 && length >= 34) {
        uint32_t ihl = (ip[0] & 15) * 4, total = (uint32_t)(ip[2] << 8 | ip[3]);
        if (ihl < 20 || (ip[6] & 0x3f) || ip[7] || total < ihl || 14 + total > length
            || !vq_zero_padding(frame, 14 + total, length))
            return; /* bad header, a fragment, or padding the sum would cover */
        proto = ip[9], l4 = 14 + ihl, l4len = total - ihl;
        sum = vq_sum16(ip + 12, 8, 0);
    } else if (type == 0x86dd && length >= 54) {
        proto = ip[6], l4 = 54, l4len = (uint32_t)(ip[4] << 8 | ip[5]);
        if (14 + 40 + l4len > length || !vq_zero_padding(frame, 54 + l4len, length))
            return;
        sum = vq_sum16(ip + 8, 32, 0);
    } else {
        return;
    }
    uint32_t field = proto == 6 ? 16 : proto == 17 ? 6 : 0;
    if (!field || l4len < field + 2)
        return;
    sum += proto + l4len;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    frame[l4 + field] = (uint8_t)(sum >> 8);
    frame[l4 + field + 1] = (uint8_t)sum;
    struct virtio_net_hdr_mrg_rxbuf *h = (struct virtio_net_hdr_mrg_rxbuf *)hdr;
    h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h->csum_start = (uint16_t)l4;
    h->csum_offset = (uint16_t)field;
}
