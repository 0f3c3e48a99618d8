/* shm_self.h — a test reads its own process's segment, as hakctl and the
 * daemon read it (through the shm library).
 */
#ifndef HAKMEM_TEST_SHM_SELF_H
#define HAKMEM_TEST_SHM_SELF_H

#include "hakmem_shm.h"
#include "testutil.h"

#include <stdlib.h>
#include <unistd.h>

/* The process publishes its segment once it has lived ~50 ms, at a slow
 * path: a block above every class takes one each time. 5 s deadline. */
static inline int tu_attach_self(struct hak_shm_view *v) {
    static void *volatile big; /* volatile: the malloc/free pair stays */
    char err[200] = "";
    for (int i = 0; i < 500; i++) {
        big = malloc(2 << 20);
        free(big);
        if (hak_shm_attach(getpid(), 0, v, err, sizeof err) == 0) return 0;
        usleep(10000);
    }
    CHECKF(0, "attach to our own segment: %s", err);
    return -1;
}

#endif
