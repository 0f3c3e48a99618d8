/* syscall_ns — nanoseconds per getppid() syscall, the cheapest syscall there
 * is: what a tracer attached to every syscall adds shows up whole here
 * (scripts/hakmemd_cost.sh: hakmemd's BPF modes against no daemon).
 * Usage: syscall_ns [calls]   (default 2000000); prints "ns_per_syscall=X". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    struct timespec a, b;
    if (n <= 0) n = 2000000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getppid); /* not cached by libc */
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("ns_per_syscall=%.1f\n", ns / (double)n);
    return 0;
}
