/* t_stress_idle — the background purger drains the remote frees of heaps
 * whose owner sleeps, gives back their empty spans and purges their free
 * pages (lib/hak_idle.c, hak_heaps_drain_idle), while the owners wake up
 * again at any moment, and while exited threads' heaps sit in the pool.
 *
 * A purge delay of 4 ms (re-executed with HAKMEM_PURGE_DELAY_MS=4) makes a
 * heap idle after 2 ms without a slow path. Two owners loop: allocate a
 * batch of verified blocks (mostly small, some mid), post it to a freer
 * thread (remote frees into the owner's heap), keep a few live across
 * rounds, sleep 0-10 ms (so the purger finds them idle, or not), then churn
 * their own blocks (refills and flushes racing with the purger's drain).
 * Every few rounds an owner hands its work to a fresh thread and exits (its
 * heap goes to the pool, where the purger drains it too). Every block is
 * verified when freed (stress.h): one the purge zeroed, or handed out
 * twice, fails. Also built as tests/bin/tsan_stress_idle. */
#include "stress.h"

#include <time.h>
#include <unistd.h>

enum { BATCH = 64, KEEP = 32, OWNERS = 2 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct blk *mailbox; /* batches posted to the freer */
static int owners_left = OWNERS;
static long rounds;

static size_t idle_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    return r % 8 ? 16 + (size_t)(r >> 8) % 1009 : 1025 + (size_t)(r >> 8) % 31744;
}

static void nap_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void *freer(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!mailbox && owners_left) pthread_cond_wait(&cv, &mu);
        struct blk *b = mailbox;
        mailbox = NULL;
        int left = owners_left;
        pthread_mutex_unlock(&mu);
        while (b) {
            struct blk *next = b->next;
            blk_free(b);
            b = next;
        }
        if (!left) return NULL;
    }
}

struct owner {
    uint64_t rng;
    long round;
    struct blk *keep[KEEP];
};

static void *owner_main(void *arg) {
    struct owner *o = arg;
    for (int life = 0; o->round < rounds && life < 8; o->round++, life++) {
        struct blk *head = NULL;
        for (int i = 0; i < BATCH; i++) {
            struct blk *b = blk_new_n(idle_size(&o->rng));
            if (!b) continue;
            b->next = head;
            head = b;
        }
        pthread_mutex_lock(&mu);
        for (struct blk *t = head; t;) { /* append the batch to the mailbox */
            struct blk *next = t->next;
            t->next = mailbox;
            mailbox = t;
            t = next;
        }
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        nap_us((long)(tu_rand(&o->rng) % 10000));
        for (int i = 0; i < 4 * KEEP; i++) { /* local churn, after the nap */
            int k = (int)(tu_rand(&o->rng) % KEEP);
            blk_free(o->keep[k]);
            o->keep[k] = blk_new_n(idle_size(&o->rng));
        }
    }
    if (o->round < rounds) { /* a fresh thread goes on with our blocks */
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, owner_main, o) == 0);
        pthread_detach(t);
        return NULL;
    }
    for (int k = 0; k < KEEP; k++) blk_free(o->keep[k]);
    pthread_mutex_lock(&mu);
    owners_left--;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv) {
    static const char *const env[] = {"HAKMEM_PURGE_DELAY_MS", "4", NULL};
    tu_reexec_with(argv, env);
    (void)argc;
    tu_init("t_stress_idle");
    rounds = tu_scale(400);
    static struct owner own[OWNERS];
    pthread_t f, t[OWNERS];
    REQUIRE(pthread_create(&f, NULL, freer, NULL) == 0);
    for (int i = 0; i < OWNERS; i++) {
        own[i].rng = 777 + (uint64_t)i;
        REQUIRE(pthread_create(&t[i], NULL, owner_main, &own[i]) == 0);
    }
    for (int i = 0; i < OWNERS; i++) pthread_join(t[i], NULL);
    pthread_join(f, NULL); /* returns once every owner (or its successor) is done */
    printf("%ld rounds per owner\n", rounds);
    return tu_done();
}
