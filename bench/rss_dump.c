/* rss_dump.so — where a process's resident memory is when it exits.
 *
 *   LD_PRELOAD="lib/libhakmem.so bench/bin/rss_dump.so" COMMAND...
 *   RSS_DUMP_OUT=FILE       write there instead of stderr
 *   RSS_DUMP_PAGES=1        also every resident page: MAPPING OFFSET
 *
 * At exit (a destructor that runs after the program's), writes one line per
 * mapping name with its Rss, anonymous part and mapped size summed over its
 * mappings (from /proc/self/smaps), then the totals and VmHWM. Preloaded
 * after the allocator, it measures that allocator's process as the program
 * left it; with RSS_DUMP_PAGES the pages present in /proc/self/pagemap, by
 * offset in their mapping (file offset for files), so two runs can be
 * compared page by page (setarch -R keeps the addresses fixed). Used for
 * docs/allocator.md, "Fixed resident memory". No malloc, no stdio streams. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAMES 128

struct area {
    char name[160];
    long rss_kb, anon_kb, size_kb;
};

static struct area areas[MAX_NAMES];
static int n_areas;
static char buf[1 << 20]; /* smaps of a small process fits */

static ssize_t slurp(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

static struct area *area_of(const char *name) {
    for (int i = 0; i < n_areas; i++)
        if (strcmp(areas[i].name, name) == 0) return &areas[i];
    if (n_areas == MAX_NAMES) return &areas[MAX_NAMES - 1];
    struct area *a = &areas[n_areas++];
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

static void put(int fd, const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* Present pages of one mapping [a, b), named, starting at file offset off. */
static void dump_pages(int out, int pm, unsigned long a, unsigned long b, unsigned long off,
                       const char *name) {
    char line[256];
    for (unsigned long p = a; p < b; p += 4096) {
        uint64_t e;
        if (pread(pm, &e, sizeof e, (off_t)(p / 4096 * 8)) != sizeof e || !(e >> 63)) continue;
        snprintf(line, sizeof line, "page %s %lx\n", name, off + (p - a));
        put(out, line);
    }
}

__attribute__((destructor(101))) static void rss_dump(void) {
    const char *path = getenv("RSS_DUMP_OUT");
    const char *pages = getenv("RSS_DUMP_PAGES");
    int out = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 2;
    if (out < 0 || slurp("/proc/self/smaps") <= 0) return;
    int pm = pages && *pages == '1' ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
    struct area *cur = NULL;
    for (char *l = buf, *nl; *l; l = nl) {
        nl = strchr(l, '\n');
        nl = nl ? nl + 1 : l + strlen(l);
        unsigned long a, b, off;
        char perm[8], name[160] = "[anon]", head[512];
        long kb;
        size_t len = (size_t)(nl - l) < sizeof head ? (size_t)(nl - l) : sizeof head - 1;
        memcpy(head, l, len); /* the line alone: %s must not run into the next */
        head[len] = 0;
        if (sscanf(head, "%lx-%lx %7s %lx %*s %*s %159s", &a, &b, perm, &off, name) >= 4) {
            cur = area_of(name);
            cur->size_kb += (long)((b - a) / 1024);
            if (pm >= 0) dump_pages(out, pm, a, b, strcmp(name, "[anon]") ? off : 0, name);
        } else if (cur && sscanf(l, "Rss: %ld kB", &kb) == 1) {
            cur->rss_kb += kb;
        } else if (cur && sscanf(l, "Anonymous: %ld kB", &kb) == 1) {
            cur->anon_kb += kb;
        }
    }
    if (pm >= 0) close(pm);
    long rss = 0, anon = 0;
    char line[512];
    for (int i = 0; i < n_areas; i++) {
        if (!areas[i].rss_kb) continue;
        snprintf(line, sizeof line, "rss %6ld KiB  anon %6ld KiB  mapped %8ld KiB  %.159s\n",
                 areas[i].rss_kb, areas[i].anon_kb, areas[i].size_kb, areas[i].name);
        put(out, line);
        rss += areas[i].rss_kb;
        anon += areas[i].anon_kb;
    }
    long hwm = 0;
    if (slurp("/proc/self/status") > 0) {
        const char *h = strstr(buf, "VmHWM:");
        if (h) sscanf(h, "VmHWM: %ld", &hwm);
    }
    snprintf(line, sizeof line, "total rss %ld KiB  anon %ld KiB  VmHWM %ld KiB\n", rss, anon, hwm);
    put(out, line);
    if (path) close(out);
}
