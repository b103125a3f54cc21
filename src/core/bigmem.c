#include "core/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE ((size_t)2 << 20)

static size_t span(size_t n) { return (n + HUGE - 1) & ~(HUGE - 1); }

void *fuze__big_zalloc(size_t n, int huge) {
  if (n < FUZE_BIG_MIN) return calloc(n ? n : 1, 1);
  size_t len = span(n);
  unsigned char *m = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  unsigned char *p = (unsigned char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
  if (p > m) munmap(m, (size_t)(p - m));
  if (m + len + HUGE > p + len) munmap(p + len, (size_t)(m + len + HUGE - (p + len)));
#ifdef MADV_HUGEPAGE
  if (huge) (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: without THP, 4 KiB pages */
#else
  (void)huge;
#endif
  return p;
}

void fuze__big_free(void *p, size_t n) {
  if (!p) return;
  if (n < FUZE_BIG_MIN) free(p);
  else munmap(p, span(n));
}
