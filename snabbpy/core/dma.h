/* DMA address translation: virtual address in DMA memory -> the address a
 * device uses. One table for the process, kept by snabbpy.core.memory. */

#define DMA_MAX_REGIONS 65536

struct dma_region {
    uint64_t start;    /* first virtual address */
    uint64_t end;      /* one past the last */
    int64_t offset;    /* device address = virtual address + offset */
};

int dma_map_add(uint64_t start, uint64_t size, int64_t offset);
uint64_t dma_translate(uint64_t address);
uint32_t dma_map_count(void);
