/* detect_helper — commits one invalid free (or realloc, or
 * malloc_usable_size of a freed block), chosen by argv[1]; driven by
 * tests/t_detect.sh (not a test by itself, hence not named t_*).
 *
 * Prints "ADDR <pointer passed to the bad free>" on stdout (flushed) before
 * the bad call. If the process is still alive afterwards it prints SURVIVED
 * and exits 0, so the script can tell "not detected" from "detected".
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void (*volatile p_free)(void *) = free;
static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static char global_buf[256] __attribute__((aligned(64)));

static void announce(void *p) {
    printf("ADDR %p\n", p);
    fflush(stdout);
}

static void warm(void) {
    /* some ordinary traffic first so the heap is set up */
    void *v[100];
    for (int i = 0; i < 100; i++) {
        v[i] = p_malloc((size_t)(i * 37 % 3000));
        if (!v[i]) exit(2);
    }
    for (int i = 0; i < 100; i++) p_free(v[i]);
}

static void double_free(size_t n) {
    char *p = p_malloc(n);
    if (!p) exit(2);
    memset(p, 1, n);
    p_free(p);
    announce(p);
    p_free(p);
}

static void interior(size_t n, size_t off) {
    char *p = p_malloc(n);
    if (!p) exit(2);
    memset(p, 1, n);
    announce(p + off);
    p_free(p + off);
}

/* Frees its argument in another thread (a remote free: the block goes
 * through that thread's cache and, at its exit, to the owner's span). */
static void *free_there(void *p) {
    p_free(p);
    return NULL;
}

static void free_in_thread(void *p) {
    pthread_t t;
    if (pthread_create(&t, NULL, free_there, p) || pthread_join(t, NULL)) exit(2);
}

/* A small block freed, its page returned to the OS by malloc_trim (the
 * page reads as zero, the block's free-key too), then freed again. */
static void double_free_purged(bool remote) {
    enum { N = 2048, SIZE = 48 };
    static char *v[N];
    for (int i = 0; i < N; i++)
        if (!(v[i] = p_malloc(SIZE))) exit(2);
    p_free(v[0]); /* keep v[N - 1] and v[N / 2] live: their spans stay */
    for (int i = 1; i < N - 1; i++)
        if (i != N / 2) p_free(v[i]);
    malloc_trim(0);
    /* a freed block whose page went back (the scenario needs one; none
     * means the purge did not happen and the case proves nothing) */
    char *victim = NULL;
    for (int i = N / 4; i < N - 1 && !victim; i++) {
        unsigned char in_core = 1;
        uintptr_t page = (uintptr_t)v[i] & ~(uintptr_t)4095;
        if (i != N / 2 && mincore((void *)page, 4096, &in_core) == 0 && !(in_core & 1))
            victim = v[i];
    }
    if (!victim) {
        printf("SETUP: no freed block's page was returned by malloc_trim\n");
        fflush(stdout);
        exit(3);
    }
    announce(victim);
    if (remote)
        free_in_thread(victim); /* its fast path reads the page window too */
    else
        p_free(victim);
    /* undetected: the block is in the thread cache and, once its span lists
     * the purged page again, on its free list too: handed out twice */
    for (int i = 0; i < N; i++)
        if (!(v[i] = p_malloc(SIZE))) exit(2);
    int twice = 0;
    for (int i = 0; i < N; i++) twice += v[i] == victim;
    printf("victim handed out %d times\n", twice);
}

static void *double_free_cancel_pending(void *arg) {
    (void)arg;
    char *p = p_malloc(24);
    if (!p) exit(2);
    p_free(p);
    announce(p);
    pthread_cancel(pthread_self());
    p_free(p);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    warm();
    const char *c = argv[1];
    if (!strcmp(c, "double-small"))
        double_free(24);
    else if (!strcmp(c, "double-mid"))
        double_free(20000);
    else if (!strcmp(c, "double-large"))
        double_free(3u << 20);
    else if (!strcmp(c, "double-interleaved")) {
        /* a b a: the second free of a is not the most recent free */
        char *a = p_malloc(40), *b = p_malloc(40);
        if (!a || !b) exit(2);
        p_free(a);
        p_free(b);
        announce(a);
        p_free(a);
    } else if (!strcmp(c, "double-aligned")) {
        void *p = NULL;
        if (posix_memalign(&p, 4096, 100)) exit(2);
        announce(p); /* before the first free: stdio's 4 KiB buffer would take p again */
        p_free(p);
        p_free(p);
    } else if (!strcmp(c, "double-purged")) {
        double_free_purged(false);
    } else if (!strcmp(c, "double-purged-remote")) {
        double_free_purged(true);
    } else if (!strcmp(c, "stack")) {
        char buf[64] __attribute__((aligned(16)));
        memset(buf, 0, sizeof buf);
        announce(buf);
        p_free(buf);
    } else if (!strcmp(c, "global")) {
        announce(global_buf);
        p_free(global_buf);
    } else if (!strcmp(c, "mmap")) {
        char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) exit(2);
        announce(m + 4096);
        p_free(m + 4096);
    } else if (!strcmp(c, "interior-small"))
        interior(100, 8);
    else if (!strcmp(c, "interior-mid"))
        interior(20000, 8);
    else if (!strcmp(c, "interior-large"))
        interior(3u << 20, 8);
    else if (!strcmp(c, "double-remote")) {
        /* freed by another thread (now on this heap's remote list or span),
         * then again here */
        char *p = p_malloc(24);
        if (!p) exit(2);
        memset(p, 1, 24);
        free_in_thread(p);
        announce(p);
        p_free(p);
    } else if (!strcmp(c, "interior-remote")) {
        /* another thread frees an interior pointer: caught when that
         * thread's cache goes back to the spans (at its exit at the latest) */
        char *p = p_malloc(100);
        if (!p) exit(2);
        memset(p, 1, 100);
        announce(p + 16);
        free_in_thread(p + 16);
    } else if (!strcmp(c, "realloc-interior-small") || !strcmp(c, "realloc-interior-mid")) {
        /* a 16-aligned pointer into a live block: free()'s fast path takes
         * it (docs/allocator.md, "Errors"), realloc must not: it would copy
         * from past the block and give the pointer to its span as a block */
        size_t n = c[17] == 's' ? 100 : 20000;
        char *p = p_malloc(n);
        if (!p) exit(2);
        memset(p, 1, n);
        announce(p + 16);
        p_realloc(p + 16, 4 * n);
    } else if (!strcmp(c, "double-cancel-pending")) {
        /* by a thread with a pending pthread_cancel: the report's write
         * must not act on it (the thread would end there, unreported) */
        pthread_t t;
        if (pthread_create(&t, NULL, double_free_cancel_pending, NULL) != 0) exit(2);
        pthread_join(t, NULL);
    } else if (!strcmp(c, "realloc-freed")) {
        char *p = p_malloc(24);
        if (!p) exit(2);
        p_free(p);
        announce(p);
        p_realloc(p, 100);
    } else if (!strcmp(c, "usable-freed")) {
        char *p = p_malloc(24);
        if (!p) exit(2);
        p_free(p);
        announce(p);
        printf("usable %zu\n", malloc_usable_size(p));
    } else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    printf("SURVIVED\n");
    fflush(stdout);
    return 0;
}
