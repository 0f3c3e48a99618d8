/* sys_deny — run a command under a seccomp filter that makes the listed
 * system calls fail with EPERM, as a sandbox's filter does (systemd's
 * SystemCallFilter=, container profiles). A helper for t_seg_seccomp.
 *
 *   sys_deny NAME... -- COMMAND [ARGS...]     NAME: memfd_create, madvise, ... */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
    const char *name;
    int nr;
} known[] = {{"memfd_create", SYS_memfd_create},
             {"madvise", SYS_madvise},
             {"symlink", SYS_symlink},
             {"symlinkat", SYS_symlinkat},
             {"mremap", SYS_mremap},
             {"getrandom", SYS_getrandom},
             {"membarrier", SYS_membarrier},
             {"fallocate", SYS_fallocate},
             {"ftruncate", SYS_ftruncate},
             {"prctl", SYS_prctl}};

int main(int argc, char **argv) {
    struct sock_filter f[2 + 2 * 32];
    int k = 0, i = 1;
    f[k++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        int nr = -1;
        for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
            if (strcmp(argv[i], known[j].name) == 0) nr = known[j].nr;
        if (nr < 0 || k > 2 * 32) {
            fprintf(stderr, "sys_deny: unknown or too many: %s\n", argv[i]);
            return 2;
        }
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
        f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: sys_deny NAME... -- COMMAND [ARGS...]\n");
        return 2;
    }
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)k, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("sys_deny: seccomp");
        return 2;
    }
    execvp(argv[i + 1], argv + i + 1);
    perror("sys_deny: exec");
    return 127;
}
