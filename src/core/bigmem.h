/* bigmem: large zeroed buffers (committed copies of arrays) on transparent
 * huge pages where the kernel offers them (THP "madvise" mode, Debian's
 * default). Fresh memory costs its first touch: on these VMs 4 KiB pages
 * fault in at about 2 GB/s, 2 MiB pages at 7-8 GB/s, and a fuze_protect or
 * a replacement's recovery writes every byte of a fresh committed copy. */
#ifndef FUZE_BIGMEM_H
#define FUZE_BIGMEM_H

#include <stddef.h>

/* n zeroed bytes (at least 1); NULL when out of memory. From FUZE_BIG_MIN
 * bytes on, a private anonymous mapping aligned to 2 MiB, with
 * MADV_HUGEPAGE when huge; below, calloc. huge = 0 where a stall matters
 * more than the bulk rate: a huge page's first fault may compact memory
 * first (THP defrag "madvise"), which made a ULFM replacement's decode
 * slower (docs/benchmarks.md section 14). */
#define FUZE_BIG_MIN ((size_t)4 << 20)
void *fuze__big_zalloc(size_t n, int huge);
/* Frees what fuze__big_zalloc(n) returned, with the same n; NULL is a no-op. */
void fuze__big_free(void *p, size_t n);

#endif
