/* tsan_api.h — force-included (-include) into the stress tests built against
 * lib/libhakmem-tsan.a. That archive exports the allocator as hak_test_malloc
 * & co, so the ThreadSanitizer runtime keeps its own malloc (it allocates
 * before any instrumented code may run) and the test calls ours, every line
 * of it instrumented. */
#ifndef HAKMEM_TSAN_API_H
#define HAKMEM_TSAN_API_H
#include <stddef.h>
void *hak_test_malloc(size_t);
void hak_test_free(void *);
void *hak_test_calloc(size_t, size_t);
void *hak_test_realloc(void *, size_t);
void *hak_test_reallocarray(void *, size_t, size_t);
int hak_test_posix_memalign(void **, size_t, size_t);
void *hak_test_aligned_alloc(size_t, size_t);
void *hak_test_memalign(size_t, size_t);
size_t hak_test_malloc_usable_size(void *);
int hak_test_malloc_trim(size_t);
#define malloc hak_test_malloc
#define free hak_test_free
#define calloc hak_test_calloc
#define realloc hak_test_realloc
#define reallocarray hak_test_reallocarray
#define posix_memalign hak_test_posix_memalign
#define aligned_alloc hak_test_aligned_alloc
#define memalign hak_test_memalign
#define malloc_usable_size hak_test_malloc_usable_size
#define malloc_trim hak_test_malloc_trim
#endif
