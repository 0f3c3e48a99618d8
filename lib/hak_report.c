/* hak_report.c — messages to stderr from inside malloc: no stdio, no malloc. */
#include "hak_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hak_log(const char *msg) {
    size_t n = strlen(msg);
    while (n) {
        /* the system call itself: libc's write() is a cancellation point,
         * and a bad free must reach its abort (hak_cancel_off) */
        ssize_t w = hak_sys4(SYS_write, 2, msg, n, 0);
        if (w <= 0) return;
        msg += w;
        n -= (size_t)w;
    }
}

static char *fmt_hex(char *p, uintptr_t v) {
    *p++ = '0';
    *p++ = 'x';
    int shift = 60;
    while (shift > 0 && !((v >> shift) & 15)) shift -= 4;
    for (; shift >= 0; shift -= 4) *p++ = "0123456789abcdef"[(v >> shift) & 15];
    return p;
}

/* An invalid or double free: the heap may already be inconsistent, so
 * report and stop rather than go on corrupting someone else's program.
 * `what` starts with glibc's own message for the case ("free(): invalid
 * pointer"), optionally followed by "; details". The first line is glibc's
 * message alone, as glibc prints it, so whatever greps a log for it still
 * matches; the second says it was hakmem, with the details and address. */
void hak_fatal(const char *what, const void *p) {
    char buf[512], *q = buf;
    size_t n = strlen(what), g;
    if (n > 200) n = 200;
    const char *semi = memchr(what, ';', n);
    g = semi ? (size_t)(semi - what) : n;
    memcpy(q, what, g);
    q += g;
    *q++ = '\n';
    memcpy(q, "hakmem: ", 8);
    q += 8;
    memcpy(q, what, n);
    q += n;
    *q++ = ' ';
    q = fmt_hex(q, (uintptr_t)p);
    *q++ = '\n';
    *q = 0;
    if (hak_proc) HAK_PROC_ADD(DOUBLE_FREES, 1);
    hak_log(buf);
    abort();
}
