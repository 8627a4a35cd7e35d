/* The translation table is sorted by address: a lookup checks the region
 * that answered last (packets come from few regions in a row), then
 * searches. With the default memfd memory there is one region per 1 GiB
 * chunk; with hugepages, one per 2 MiB page. */

static struct dma_region regions[DMA_MAX_REGIONS];
static uint32_t nregions, last_hit;

int dma_map_add(uint64_t start, uint64_t size, int64_t offset)
{
    if (nregions == DMA_MAX_REGIONS || size == 0)
        return -1;
    uint32_t at = nregions;
    while (at > 0 && regions[at - 1].start > start) {
        regions[at] = regions[at - 1];
        at--;
    }
    regions[at] = (struct dma_region){start, start + size, offset};
    nregions++;
    last_hit = at;
    return 0;
}

/* Returns 0 for an address outside DMA memory. */
uint64_t dma_translate(uint64_t address)
{
    struct dma_region *r = &regions[last_hit];
    if (__builtin_expect(address >= r->start && address < r->end, 1))
        return address + r->offset;
    uint32_t lo = 0, hi = nregions;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (address < regions[mid].start)
            hi = mid;
        else if (address >= regions[mid].end)
            lo = mid + 1;
        else {
            last_hit = mid;
            return address + regions[mid].offset;
        }
    }
    return 0;
}

uint32_t dma_map_count(void) { return nregions; }

#include <sys/mman.h>

uint64_t dma_reserve(uint64_t size)
{
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? 0 : (uint64_t)(uintptr_t)p;
}

int dma_map_fixed(uint64_t address, uint64_t size, int fd, uint64_t fd_offset)
{
    void *p = mmap((void *)(uintptr_t)address, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, (off_t)fd_offset);
    return p == MAP_FAILED ? errno : 0;
}
