/* shm_lease.c — the daemon's lease in a segment (ABI 1.1 header fields
 * daemon_pid, daemon_tag, lease_ns). hakmemd renews it every tick while it manages the
 * process; the allocator hands daemon-owned knobs back to their defaults once
 * CLOCK_MONOTONIC passes lease_ns (lib/hak_knobs.c), so a dead daemon leaves
 * no stale tuning. hakctl reads it to mark daemon-managed processes. */
#include "shm_private.h"

#include <time.h>

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int has_lease(const struct hak_shm_view *v) {
    return v && v->hdr && HAK_SHM_HAS(LOAD(&v->hdr->header_size), lease_ns) &&
           sizeof(struct hak_shm_header) <= v->len;
}

int hak_shm_lease_renew(struct hak_shm_view *v, pid_t daemon, uint32_t tag, uint64_t lease_ms,
                        uint64_t *until_ns) {
    if (!has_lease(v)) return HAK_SHM_ENOENT; /* an ABI 1.0 segment: no lease field */
    if (!v->writable) return HAK_SHM_EACCES;
    /* pid first: a reader that sees a live lease sees who holds it */
    __atomic_store_n(&v->hdr->daemon_pid, (int32_t)daemon, __ATOMIC_RELAXED);
    __atomic_store_n(&v->hdr->daemon_tag, tag, __ATOMIC_RELAXED);
    /* 0: expired now (never 0 itself, which reads as "no lease") */
    uint64_t until = mono_ns() + lease_ms * 1000000ull;
    __atomic_store_n(&v->hdr->lease_ns, until, __ATOMIC_RELEASE);
    if (until_ns) *until_ns = until;
    return HAK_SHM_OK;
}

int hak_shm_lease_read(const struct hak_shm_view *v, pid_t *daemon, uint32_t *tag,
                       uint64_t *until_ns) {
    if (!has_lease(v)) return HAK_SHM_ENOENT;
    uint64_t until = __atomic_load_n(&v->hdr->lease_ns, __ATOMIC_ACQUIRE);
    if (daemon) *daemon = LOAD(&v->hdr->daemon_pid);
    if (tag) *tag = LOAD(&v->hdr->daemon_tag);
    if (until_ns) *until_ns = until;
    return until > mono_ns();
}

int hak_shm_lease_get(const struct hak_shm_view *v, pid_t *daemon, uint64_t *left_ms) {
    uint64_t until;
    int rc = hak_shm_lease_read(v, daemon, NULL, &until);
    if (rc < 0) return rc;
    uint64_t now = mono_ns();
    if (left_ms) *left_ms = until > now ? (until - now) / 1000000ull : 0;
    return rc;
}
