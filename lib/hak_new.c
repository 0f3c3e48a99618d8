/* hak_new.c — C++ operator new/delete, every variant, served by hakmem so no
 * pointer ever crosses heaps. Written in C under their mangled names so
 * libhakmem needs no libstdc++. A failing throwing new calls the program's
 * new_handler, then throws std::bad_alloc through libstdc++ (which any
 * program calling operator new has loaded). A failing nothrow new does the
 * same inside libstdc++'s own nothrow new, which catches the throw. */
#include "hak_alloc.h"

#include <dlfcn.h>
#include <stdlib.h>

typedef void (*new_handler_fn)(void);
typedef new_handler_fn (*get_new_handler_fn)(void);

static new_handler_fn new_handler(void) {
    get_new_handler_fn get = (get_new_handler_fn)dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
    return get ? get() : NULL;
}

static void *new_fail(size_t n, size_t align) {
    for (;;) {
        new_handler_fn handler = new_handler();
        if (!handler) break;
        handler();
        void *p = align ? hak_alloc_aligned(align, n) : hak_alloc_fast(n);
        if (p) return p;
    }
    void (*throw_bad_alloc)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
    if (throw_bad_alloc) throw_bad_alloc();
    hak_log("hakmem: operator new: out of memory\n");
    abort();
}

static inline void *new_throw(size_t n) {
    void *p = hak_alloc_fast(n);
    return HAK_LIKELY(p != NULL) ? p : new_fail(n, 0);
}

static inline void *new_aligned_throw(size_t n, size_t a) {
    void *p = hak_alloc_aligned(a, n);
    return HAK_LIKELY(p != NULL) ? p : new_fail(n, a);
}

/* A nothrow new that found no memory. The standard makes it the ordinary
 * new (the new_handler called until memory comes, or it throws or is
 * removed) returning NULL where that throws; a program's handler may free
 * a reserve, or throw. The throw must be caught, which C cannot do:
 * libstdc++'s nothrow new (the one after ours, RTLD_NEXT) is a try around
 * ::operator new, which is ours again (new_throw, new_fail). Without a
 * handler (or without libstdc++) it is NULL at once, as before. */
typedef void *(*nothrow_fn)(size_t, const void *);
typedef void *(*nothrow_aligned_fn)(size_t, size_t, const void *);

static void *nothrow_fail(const char *name, size_t n, const void *t) {
    nothrow_fn next = new_handler() ? (nothrow_fn)dlsym(RTLD_NEXT, name) : NULL;
    return next ? next(n, t) : NULL;
}

static void *nothrow_aligned_fail(const char *name, size_t n, size_t a, const void *t) {
    nothrow_aligned_fn next = new_handler() ? (nothrow_aligned_fn)dlsym(RTLD_NEXT, name) : NULL;
    return next ? next(n, a, t) : NULL;
}

/* operator new(size_t) / new[](size_t) */
HAK_EXPORT void *_Znwm(size_t n) {
    return new_throw(n);
}
HAK_EXPORT void *_Znam(size_t n) {
    return new_throw(n);
}
/* nothrow */
HAK_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) {
    void *p = hak_alloc_fast(n);
    return HAK_LIKELY(p != NULL) ? p : nothrow_fail("_ZnwmRKSt9nothrow_t", n, t);
}
HAK_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) {
    void *p = hak_alloc_fast(n);
    return HAK_LIKELY(p != NULL) ? p : nothrow_fail("_ZnamRKSt9nothrow_t", n, t);
}
/* aligned (C++17) */
HAK_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) {
    return new_aligned_throw(n, a);
}
HAK_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) {
    return new_aligned_throw(n, a);
}
HAK_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    void *p = hak_alloc_aligned(a, n);
    return HAK_LIKELY(p != NULL)
               ? p
               : nothrow_aligned_fail("_ZnwmSt11align_val_tRKSt9nothrow_t", n, a, t);
}
HAK_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    void *p = hak_alloc_aligned(a, n);
    return HAK_LIKELY(p != NULL)
               ? p
               : nothrow_aligned_fail("_ZnamSt11align_val_tRKSt9nothrow_t", n, a, t);
}

/* delete: plain, sized, nothrow, aligned, aligned sized, aligned nothrow */
HAK_EXPORT void _ZdlPv(void *p) {
    hak_free_fast(p);
}
HAK_EXPORT void _ZdaPv(void *p) {
    hak_free_fast(p);
}
HAK_EXPORT void _ZdlPvm(void *p, size_t n) {
    (void)n;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdaPvm(void *p, size_t n) {
    (void)n;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) {
    (void)t;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) {
    (void)t;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) {
    (void)a;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) {
    (void)a;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) {
    (void)n, (void)a;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) {
    (void)n, (void)a;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a, (void)t;
    hak_free_fast(p);
}
HAK_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a, (void)t;
    hak_free_fast(p);
}
