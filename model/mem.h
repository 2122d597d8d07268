/* model/mem.h -- 64-byte aligned, zeroed buffers for the numeric core
 * (tensors, activations, gradients): mem_aligned returns one, freed with
 * mem_free; NULL on failure. Everything else calls malloc and free directly.
 *
 * Which allocator serves them all is chosen when linking, not here: normal
 * builds link jemalloc, which takes over malloc/free for the whole process
 * (memory is kept and reused, so steady-state serving and training do not
 * fault pages in and out); sanitizer builds use libc so ASan/UBSan see every
 * allocation (Makefile, MALLOC). */
#ifndef MNISTD_MEM_H
#define MNISTD_MEM_H

#include <stdlib.h>
#include <string.h>

static inline void *mem_aligned(size_t n)
{
    void *p = NULL;
    if (n == 0)
        n = 64;
    n = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, n) != 0)
        return NULL;
    memset(p, 0, n);
    return p;
}

static inline void mem_free(void *p) { free(p); }

#endif
