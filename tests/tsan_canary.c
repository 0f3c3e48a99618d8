/* tsan_canary — a deliberate data race, built exactly like the TSAN stress
 * binaries (allocator archive linked in). tests/t_tsan.sh requires it to be
 * reported (exit 66), proving that the TSAN build and TSAN_OPTIONS in use do
 * detect races, so a clean stress run means something. Not a test itself. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long counter; /* racy on purpose */

static void *bump(void *arg) {
    for (int i = 0; i < 100000; i++) counter++;
    free(malloc(100)); /* the allocator is in the picture too */
    return arg;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, bump, NULL);
    pthread_create(&b, NULL, bump, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("counter %ld\n", counter);
    return 0;
}
