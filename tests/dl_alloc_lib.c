/* dl_alloc_lib — a library that allocates, for tests/t_api_dlopen.c (built
 * as tests/bin/dl_alloc_lib.so; not a test by itself, hence not named t_*).
 * Its constructor mallocs blocks of every size range and its destructor
 * frees them (run by dlopen and dlclose, under the loader's lock); dl_make
 * returns a block the caller frees, after the library may be gone; dl_take
 * frees a block the caller allocated; the thread-local buffer is dynamic
 * TLS, which glibc allocates with malloc at a thread's first use and frees
 * at its exit or at dlclose. */
#include <stdlib.h>
#include <string.h>

#define KEPT 48
static char *kept[KEPT];
static __thread char tls_buf[4096];

__attribute__((constructor)) static void dl_init(void) {
    for (int i = 0; i < KEPT; i++) {
        size_t n = (size_t)16 << (i % 18); /* 16 B .. 2 MiB */
        kept[i] = malloc(n);
        if (kept[i]) memset(kept[i], i, n);
    }
}

__attribute__((destructor)) static void dl_fini(void) {
    for (int i = 0; i < KEPT; i++) {
        size_t n = (size_t)16 << (i % 18);
        if (kept[i] && (kept[i][0] != (char)i || kept[i][n - 1] != (char)i)) abort();
        free(kept[i]);
    }
}

char *dl_make(size_t n, int byte) {
    char *p = malloc(n);
    if (p) memset(p, byte, n);
    tls_buf[n % sizeof tls_buf] = (char)byte;
    return p;
}

void dl_take(char *p) {
    free(p);
}
