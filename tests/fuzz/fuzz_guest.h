/* Guest memory of the device-ring harnesses (fuzz_device_ring.c,
 * fuzz_packed_device.c): three regions, each between PROT_NONE guard
 * pages, so a read or write one byte outside a region faults:
 *   R0 (64 KiB), R1 (16 KiB) right after R0 in guest physical space (a
 *   buffer crossing from R0 into R1 must be split; indirect tables at its
 *   start), R2 (16 KiB) far away (the descriptor table at its very end).
 * Include after fuzz_common.h. */

#define PAGE 4096ull
#define R0_SIZE (16 * PAGE)
#define R1_SIZE (4 * PAGE)
#define R2_SIZE (4 * PAGE)
#define R0_GPA 0x100000ull
#define R1_GPA (R0_GPA + R0_SIZE)
#define R2_GPA 0x40000000ull
#define USER_OFFSET 0x7f0000000000ull
#define POOL_ENTRIES 256   /* indirect descriptors at the start of R1 */

static uint8_t *host[3];
static const uint64_t gpa[3] = { R0_GPA, R1_GPA, R2_GPA };
static const uint64_t rsize[3] = { R0_SIZE, R1_SIZE, R2_SIZE };

static void map_guest(void)
{
    uint64_t total = PAGE + R0_SIZE + PAGE + R1_SIZE + PAGE + R2_SIZE + PAGE;
    uint8_t *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FUZZ_CHECK(base != MAP_FAILED);
    uint8_t *at = base + PAGE;
    for (int i = 0; i < 3; i++) {
        FUZZ_CHECK(mprotect(at, rsize[i], PROT_READ | PROT_WRITE) == 0);
        host[i] = at;
        at += rsize[i] + PAGE;
    }
}
