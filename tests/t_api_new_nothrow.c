/* t_api_new_nothrow — a failing nothrow operator new calls the program's
 * new_handler, as the ordinary new does (C++ [new.delete.single]: it
 * behaves as operator new(size) and returns NULL where that throws).
 *
 * Written in C against the mangled names (linked with -lstdc++, which
 * defines them and std::set_new_handler; hakmem, preloaded, replaces the
 * operators). Checks, for new, new[], aligned new and aligned new[]
 * (nothrow):
 *  - an impossible size with a handler that removes itself on its third
 *    call: NULL, and the handler ran 3 times (libstdc++'s own operators do
 *    exactly this);
 *  - under an address-space limit, a handler that frees a reserve: the
 *    request that failed succeeds after one handler call;
 *  - without a handler: NULL at once.
 * Why: hakmem's nothrow new returned NULL without calling the handler, so
 * a program whose handler frees an emergency reserve ran out of memory
 * under hakmem where it goes on under glibc. Passes on glibc.
 */
#include "testutil.h"

#include <stdint.h>
#include <sys/resource.h>

typedef void (*handler_fn)(void);
handler_fn _ZSt15set_new_handlerPFvvE(handler_fn h);
void *_ZnwmRKSt9nothrow_t(size_t n, const void *t);
void *_ZnamRKSt9nothrow_t(size_t n, const void *t);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t);
void _ZdlPv(void *p);
extern const char _ZSt7nothrow; /* std::nothrow */

static int calls;
static void *reserve;

static void give_up_third(void) {
    if (++calls >= 3) _ZSt15set_new_handlerPFvvE(NULL);
}

static void free_reserve(void) {
    calls++;
    free(reserve);
    reserve = NULL;
    _ZSt15set_new_handlerPFvvE(NULL); /* a second failure is final */
}

/* which: 0 new, 1 new[], 2 aligned new, 3 aligned new[] */
static void *nothrow_new(int which, size_t n) {
    const void *t = &_ZSt7nothrow;
    switch (which) {
    case 0:
        return _ZnwmRKSt9nothrow_t(n, t);
    case 1:
        return _ZnamRKSt9nothrow_t(n, t);
    case 2:
        return _ZnwmSt11align_val_tRKSt9nothrow_t(n, 64, t);
    default:
        return _ZnamSt11align_val_tRKSt9nothrow_t(n, 64, t);
    }
}

static const char *const names[] = {"new", "new[]", "aligned new", "aligned new[]"};

int main(void) {
    tu_init("t_api_new_nothrow");
    const size_t huge = SIZE_MAX / 4;
    for (int w = 0; w < 4; w++) {
        calls = 0;
        _ZSt15set_new_handlerPFvvE(give_up_third);
        void *p = nothrow_new(w, huge);
        CHECKF(p == NULL && calls == 3,
               "nothrow %s(SIZE_MAX/4): %p, handler called %d times, want NULL and 3", names[w], p,
               calls);
        calls = 0;
        _ZSt15set_new_handlerPFvvE(NULL);
        p = nothrow_new(w, huge);
        CHECKF(p == NULL && calls == 0, "nothrow %s without a handler: %p", names[w], p);
    }

    /* the handler frees a reserve: the address space is limited to what is
     * mapped now plus 384 MiB, the reserve takes 256 of it, the request 256 */
    long vm = tu_vm_kib();
    REQUIRE(vm > 0);
    struct rlimit rl;
    REQUIRE(getrlimit(RLIMIT_AS, &rl) == 0);
    rl.rlim_cur = (rlim_t)(vm + (384 << 10)) << 10;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur) return TU_SKIP;
    REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0);
    const size_t big = (size_t)256 << 20;
    for (int w = 0; w < 4; w++) {
        reserve = malloc(big);
        REQUIRE(reserve != NULL);
        memset(reserve, 1, 4096);
        calls = 0;
        _ZSt15set_new_handlerPFvvE(free_reserve);
        char *p = nothrow_new(w, big);
        CHECKF(p != NULL && calls == 1,
               "nothrow %s(256 MiB), the handler freeing a 256 MiB reserve: %p, handler called %d "
               "times",
               names[w], (void *)p, calls);
        if (p) {
            p[0] = p[big - 1] = 1;
            _ZdlPv(p);
        }
        free(reserve);
        reserve = NULL;
    }
    return tu_done();
}
