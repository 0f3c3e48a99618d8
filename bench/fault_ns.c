/* fault_ns — nanoseconds per user page fault: a fresh anonymous mapping,
 * one write per page (each a minor fault), unmapped, over and over. What a
 * tracer attached to every page fault adds shows up whole here
 * (scripts/hakmemd_cost.sh: hakmemd with and without HAKMEMD_BPF_FAULTS).
 * Usage: fault_ns [faults]   (default 1000000); prints "ns_per_fault=X
 * cpu_ns_per_fault=Y" (mmap/munmap included, amortised over 1024 pages
 * each). The CPU figure (CLOCK_PROCESS_CPUTIME_ID: the kernel's fault
 * handling runs on the process's clock) does not count time spent waiting
 * for a CPU, so it holds on a loaded machine where the wall clock does not. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { PAGES = 1024 };

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000, page = sysconf(_SC_PAGESIZE), done = 0;
    size_t len = (size_t)PAGES * (size_t)page;
    struct timespec a, b, ca, cb;
    if (n <= 0) n = 1000000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
    while (done < n) {
        /* no THP: every page is its own 4 KiB fault */
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return perror("mmap"), 1;
        madvise(p, len, MADV_NOHUGEPAGE);
        for (long i = 0; i < PAGES; i++) ((volatile char *)p)[i * page] = 1;
        munmap(p, len);
        done += PAGES;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    double cpu = (double)(cb.tv_sec - ca.tv_sec) * 1e9 + (double)(cb.tv_nsec - ca.tv_nsec);
    printf("ns_per_fault=%.1f cpu_ns_per_fault=%.1f\n", ns / (double)done, cpu / (double)done);
    return 0;
}
