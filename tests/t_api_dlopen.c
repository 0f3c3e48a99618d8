/* t_api_dlopen — dlopen and dlclose of a library that allocates
 * (tests/dl_alloc_lib.c), from several threads at once.
 *
 * 4 threads each dlopen tests/bin/dl_alloc_lib.so 200 times: its
 * constructor mallocs 48 blocks of 16 B-2 MiB, which its destructor checks
 * and frees at the dlclose; in between the thread takes a block the
 * library made (freed here, after the dlclose: a block outlives the code
 * that allocated it) and gives the library one of its own to free, and the
 * library's thread-local buffer makes glibc allocate the thread's dynamic
 * TLS with malloc (freed by glibc at dlclose or at the thread's exit).
 * Half the threads exit with the library still open. Every block is
 * checked before it is freed. Passes on glibc too.
 * Why: the loader allocates and frees under its own lock, and glibc frees
 * what it allocated through the preloaded malloc; blocks of a library
 * outlive it.
 */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 200

static char lib_path[4096];

static void *worker(void *arg) {
    long t = (long)arg;
    char *(*make)(size_t, int);
    void (*take)(char *);
    for (int r = 0; r < ROUNDS; r++) {
        void *h = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
        CHECKF(h != NULL, "dlopen(%s): %s", lib_path, dlerror());
        if (!h) return NULL;
        make = (char *(*)(size_t, int))dlsym(h, "dl_make");
        take = (void (*)(char *))dlsym(h, "dl_take");
        REQUIRE(make && take);
        size_t n = (size_t)1 << (4 + (r + t) % 20); /* 16 B .. 8 MiB */
        char *p = make(n, r & 0xff);
        char *mine = malloc(n / 2 + 1);
        REQUIRE(p && mine);
        memset(mine, 0x5a, n / 2 + 1);
        take(mine);
        if (t >= THREADS / 2 && r == ROUNDS - 1) {
            free(p);
            return NULL; /* exits with the library open: glibc frees its TLS */
        }
        CHECK(dlclose(h) == 0);
        CHECKF((unsigned char)p[0] == (r & 0xff) && (unsigned char)p[n - 1] == (r & 0xff),
               "block of %zu B made by the library, after dlclose", n);
        free(p);
    }
    return NULL;
}

int main(void) {
    tu_init("t_api_dlopen");
    ssize_t len = readlink("/proc/self/exe", lib_path, sizeof lib_path - 32);
    REQUIRE(len > 0);
    lib_path[len] = 0;
    char *slash = strrchr(lib_path, '/');
    REQUIRE(slash);
    strcpy(slash + 1, "dl_alloc_lib.so");
    if (access(lib_path, R_OK) != 0) {
        printf("%s not built (make test builds it)\n", lib_path);
        return 1;
    }
    for (int round = 0; round < 2; round++) {
        pthread_t th[THREADS];
        for (long i = 0; i < THREADS; i++)
            REQUIRE(pthread_create(&th[i], NULL, worker, (void *)i) == 0);
        for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    }
    return tu_done();
}
