/* bpf_probe.c — drives daemon/hakd_bpf.o for tests/t_bpf.sh.
 *
 *   bpf_probe             load the probe, watch a child that makes a known
 *                         number of page faults and mmap/munmap/madvise calls,
 *                         check the counts and the child's exit event.
 *                         Exit 0 pass, 1 fail, 3 BPF off (reason on stdout).
 *   bpf_probe --expect-off  BPF must be off (unprivileged run): open fails
 *                         with a one-line "BPF off: ..." and every call is a
 *                         no-op. Exit 0 when so, 1 otherwise. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hakd_bpf.h"

enum {
    NMAP = 50,       /* regions mapped, touched, released and unmapped */
    PAGES = 64,      /* pages per region */
    NFREE = 10,      /* of them, released with MADV_FREE (the rest DONTNEED) */
    NWILLNEED = 20,  /* madvise calls that must NOT count (nothing handed back) */
    SLACK_CALLS = 8, /* libc's own calls: thread stack map/unmap, stack madvise */
};

static long page;
static char *region[NMAP];
static int fails;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL: " __VA_ARGS__);                                                          \
            printf("\n");                                                                          \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static void touch_all(void) {
    for (int i = 0; i < NMAP; i++)
        for (int p = 0; p < PAGES; p++)
            ((volatile char *)region[i])[(size_t)p * (size_t)page] = (char)p;
}

static void *second_touch(void *arg) {
    (void)arg;
    touch_all(); /* faults of another thread count for the same tgid */
    return NULL;
}

static void xread(int fd, char *c) {
    if (read(fd, c, 1) != 1) _exit(9);
}

/* The watched child: waits until watched, does the known work, reports,
 * waits for leave to exit. */
static void child(int go_fd, int done_fd) {
    size_t len = (size_t)PAGES * (size_t)page;
    pthread_t t;
    char c;

    xread(go_fd, &c);
    for (int i = 0; i < NMAP; i++) {
        region[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region[i] == MAP_FAILED) _exit(10);
    }
    touch_all();
    for (int i = 0; i < NMAP; i++)
        if (madvise(region[i], len, i < NFREE ? MADV_FREE : MADV_DONTNEED) != 0) _exit(11);
    for (int i = 0; i < NWILLNEED; i++) madvise(region[i], len, MADV_WILLNEED);
    /* MADV_FREE pages may stay until memory pressure: re-fault only the
     * DONTNEED ones' worth is guaranteed; touching all is still right. */
    if (pthread_create(&t, NULL, second_touch, NULL) != 0 || pthread_join(t, NULL) != 0) _exit(12);
    for (int i = 0; i < NMAP; i++) munmap(region[i], len);
    if (write(done_fd, "d", 1) != 1) _exit(13);
    xread(go_fd, &c);
    _exit(0);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t exits_seen[64];
static int nexits;

static void on_exit_pid(pid_t pid, void *arg) {
    (void)arg;
    if (nexits < 64) exits_seen[nexits] = pid;
    nexits++;
}

static int count_exits(pid_t pid) {
    int n = 0;
    for (int i = 0; i < nexits && i < 64; i++) n += exits_seen[i] == pid;
    return n;
}

static int expect_off(void) {
    char why[256] = "";
    struct hakd_bpf_stats st;

    if (hakd_bpf_open(why, sizeof(why)) == 0) {
        printf("FAIL: BPF loaded where it should not (uid %d)\n", (int)getuid());
        hakd_bpf_close();
        return 1;
    }
    printf("%s\n", why);
    CHECK(strncmp(why, "BPF off: ", 9) == 0, "reason does not start with 'BPF off: ': '%s'", why);
    CHECK(strchr(why, '\n') == NULL, "reason is not one line");
    CHECK(!hakd_bpf_on(), "hakd_bpf_on() says on after a failed open");
    CHECK(hakd_bpf_watch(getpid()) == -1, "watch succeeded while off");
    CHECK(hakd_bpf_read(getpid(), &st) == -1, "read succeeded while off");
    CHECK(hakd_bpf_exit_fd() == -1, "exit fd while off");
    CHECK(hakd_bpf_drain_exits(on_exit_pid, NULL) == 0, "exits drained while off");
    hakd_bpf_close();
    return fails ? 1 : 0;
}

int main(int argc, char **argv) {
    char why[256] = "";
    int go[2], done[2];
    struct hakd_bpf_stats st, st2;
    pid_t pid, other;
    char c;
    int status;

    setvbuf(stdout, NULL, _IOLBF, 0);
    page = sysconf(_SC_PAGESIZE);
    if (argc > 1 && strcmp(argv[1], "--expect-off") == 0) return expect_off();
    if (hakd_bpf_open(why, sizeof(why)) != 0) {
        printf("%s\n", why);
        return 3;
    }
    printf("BPF on: %s\nsyscalls counted by: %s\nfaults counted: %s\n", why, hakd_bpf_syscalls(),
           hakd_bpf_faults() ? "on" : "off");
    CHECK(hakd_bpf_on(), "hakd_bpf_on() is 0 after a successful open");
    CHECK(hakd_bpf_exit_fd() >= 0, "no exit fd");
    if (pipe(go) || pipe(done)) return 1;
    pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(go[1]);
        close(done[0]);
        child(go[0], done[1]);
    }
    close(go[0]);
    close(done[1]);
    CHECK(hakd_bpf_read(pid, &st) == -1, "read of a pid not yet watched succeeded");
    CHECK(hakd_bpf_watch(pid) == 0, "watch failed");
    if (write(go[1], "g", 1) != 1 || read(done[0], &c, 1) != 1) {
        printf("FAIL: child died before reporting\n");
        return 1;
    }
    CHECK(hakd_bpf_watch(pid) == 0, "watching again failed");
    CHECK(hakd_bpf_read(pid, &st) == 0, "read of the watched child failed");

    uint64_t len = (uint64_t)PAGES * (uint64_t)page;
    uint64_t faults_min = 2ull * (NMAP - NFREE) * PAGES + (uint64_t)NFREE * PAGES;
    printf("faults %llu (expected >= %llu)\n", (unsigned long long)st.faults,
           (unsigned long long)faults_min);
    printf("mmap %llu calls %llu bytes (expected >= %d, %llu)\n", (unsigned long long)st.mmap_calls,
           (unsigned long long)st.mmap_bytes, NMAP, (unsigned long long)(NMAP * len));
    printf("munmap %llu calls %llu bytes (expected >= %d, %llu)\n",
           (unsigned long long)st.munmap_calls, (unsigned long long)st.munmap_bytes, NMAP,
           (unsigned long long)(NMAP * len));
    printf("madvise %llu calls %llu bytes (expected >= %d, %llu; %d WILLNEED not counted)\n",
           (unsigned long long)st.madvise_calls, (unsigned long long)st.madvise_bytes, NMAP,
           (unsigned long long)(NMAP * len), NWILLNEED);
    if (hakd_bpf_faults())
        CHECK(st.faults >= faults_min && st.faults <= faults_min + 4000, "faults out of bounds");
    else /* not counted: the fault program must not be attached at all */
        CHECK(st.faults == 0, "faults counted although HAKMEMD_BPF_FAULTS is off");
    if (strcmp(hakd_bpf_syscalls(), "off") == 0) {
        /* not counted: the syscall programs must not be attached at all */
        CHECK(st.mmap_calls == 0 && st.munmap_calls == 0 && st.madvise_calls == 0,
              "syscalls counted although the mode is off");
    } else {
        CHECK(st.mmap_calls >= NMAP && st.mmap_calls <= NMAP + SLACK_CALLS, "mmap calls");
        CHECK(st.mmap_bytes >= NMAP * len && st.mmap_bytes <= NMAP * len + (64u << 20),
              "mmap bytes");
        CHECK(st.munmap_calls >= NMAP && st.munmap_calls <= NMAP + SLACK_CALLS, "munmap calls");
        CHECK(st.munmap_bytes >= NMAP * len && st.munmap_bytes <= NMAP * len + (64u << 20),
              "munmap bytes");
        CHECK(st.madvise_calls >= NMAP && st.madvise_calls <= NMAP + SLACK_CALLS,
              "madvise calls (WILLNEED counted?)");
        CHECK(st.madvise_bytes >= NMAP * len && st.madvise_bytes <= NMAP * len + (64u << 20),
              "madvise bytes");
    }

    /* an unwatched process: no counts, no exit event */
    other = fork();
    if (other == 0) _exit(0);
    CHECK(hakd_bpf_read(other, &st2) == -1, "an unwatched pid has counts");
    waitpid(other, &status, 0);

    if (write(go[1], "x", 1) != 1) return 1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit status %d", status);
    /* exit events: poll the fd with a deadline, never a bare sleep */
    double deadline = now_s() + 5.0;
    while (count_exits(pid) == 0 && now_s() < deadline) {
        struct pollfd pfd = {.fd = hakd_bpf_exit_fd(), .events = POLLIN};
        if (poll(&pfd, 1, 200) > 0) hakd_bpf_drain_exits(on_exit_pid, NULL);
    }
    hakd_bpf_drain_exits(on_exit_pid, NULL);
    printf("exit events for the child: %d (expected 1), for the unwatched pid: %d (expected 0)\n",
           count_exits(pid), count_exits(other));
    CHECK(count_exits(pid) == 1, "child exit seen %d times", count_exits(pid));
    CHECK(count_exits(other) == 0, "exit of an unwatched process reported");
    CHECK(hakd_bpf_read(pid, &st2) == 0 && st2.faults >= st.faults, "counts lost after exit");
    hakd_bpf_unwatch(pid);
    CHECK(hakd_bpf_read(pid, &st2) == -1, "read after unwatch succeeded");
    hakd_bpf_close();
    CHECK(!hakd_bpf_on(), "on after close");
    printf("%s\n", fails ? "bpf_probe: FAILED" : "bpf_probe: all checks passed");
    return fails ? 1 : 0;
}
