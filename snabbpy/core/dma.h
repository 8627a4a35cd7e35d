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

/* The reservation: one range of virtual addresses, inaccessible until DMA
 * memory is mapped into it, so all packet memory is one contiguous array.
 * dma_reserve returns its start (0 on failure); dma_map_fixed maps size
 * bytes of fd from fd_offset at address (0 on success, else errno). */
uint64_t dma_reserve(uint64_t size);
int dma_map_fixed(uint64_t address, uint64_t size, int fd, uint64_t fd_offset);
