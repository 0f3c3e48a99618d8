/* profile.c — what hakmemd learned about a program, kept for its next run.
 *
 * A program is its executable's path plus its GNU build-id (the ELF note),
 * or a hash of its size and first MiB when it has none: a rebuilt binary is
 * a new program. One JSON file per program in STATE_DIR/profiles/:
 *   { "hakmemd_profile": 2, "key": "/usr/bin/app@build-id", "exe": "/usr/bin/app",
 *     "saved": 1764130000, "start_phase": "tiny/local",
 *     "phases": [ { "phase": "tiny/local", "objective": 41.5,
 *                   "knobs": [ { "knob": "refill_count", "class": 3, "value": 512 } ] } ] }
 * A profile is checked whole before any of it is used: a corrupt or
 * hand-edited file that fails any check is rejected with a log line and
 * nothing from it is applied. */
#include "hakd.h"

#include <cjson/cJSON.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 2: the class table of ABI 4 (class indices are kept, and 1's from 20 up
 * named other sizes) */
#define HAKD_PROFILE_VERSION 2

/* ------------------------------------------------------------- program key */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* GNU build-id from the PT_NOTE segments of a 64-bit ELF (hex in out). */
static int build_id(int fd, char *out, size_t n) {
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum > 256)
        return -1;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        unsigned char note[1024];
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) !=
                (ssize_t)sizeof ph ||
            ph.p_type != PT_NOTE)
            continue;
        size_t len = ph.p_filesz < sizeof note ? ph.p_filesz : sizeof note;
        if (pread(fd, note, len, (off_t)ph.p_offset) != (ssize_t)len) continue;
        for (size_t o = 0; o + sizeof(Elf64_Nhdr) <= len;) {
            Elf64_Nhdr nh;
            memcpy(&nh, note + o, sizeof nh);
            size_t name = o + sizeof nh, desc = name + ((nh.n_namesz + 3) & ~3u);
            if (desc + nh.n_descsz > len) break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                !memcmp(note + name, "GNU", 4) && nh.n_descsz <= 64 && nh.n_descsz * 2 < n) {
                for (uint32_t k = 0; k < nh.n_descsz; k++)
                    snprintf(out + 2 * k, 3, "%02x", note[desc + k]);
                return 0;
            }
            o = desc + ((nh.n_descsz + 3) & ~3u);
        }
    }
    return -1;
}

void hakd_profile_key(pid_t pid, const char *exe_path, char *key, size_t n) {
    char path[64], id[140] = "";
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && build_id(fd, id, sizeof id) != 0) { /* no build-id: hash the file */
        struct stat s;
        static unsigned char buf[65536];
        uint64_t h = 0xcbf29ce484222325ull;
        if (fstat(fd, &s) == 0) h = fnv(h, &s.st_size, sizeof s.st_size);
        for (off_t o = 0; o < (1 << 20);) {
            ssize_t k = pread(fd, buf, sizeof buf, o);
            if (k <= 0) break;
            h = fnv(h, buf, (size_t)k);
            o += k;
        }
        snprintf(id, sizeof id, "fnv-%016llx", (unsigned long long)h);
    }
    if (fd >= 0) close(fd);
    snprintf(key, n, "%s@%.24s", exe_path, id[0] ? id : "unknown");
}

/* STATE_DIR/profiles/<basename>-<hash of key>.json */
static void profile_path(const struct hakd_state *st, const char *key, char *out, size_t n) {
    const char *at = strrchr(key, '@'), *base = key;
    for (const char *q = key; q < (at ? at : key + strlen(key)); q++)
        if (*q == '/') base = q + 1;
    char name[40];
    size_t len = (size_t)((at ? at : key + strlen(key)) - base);
    if (len >= sizeof name) len = sizeof name - 1;
    for (size_t i = 0; i < len; i++) {
        char ch = base[i];
        name[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'
                      ? ch
                      : '_';
    }
    name[len] = 0;
    snprintf(out, n, "%s/profiles/%s-%016llx.json", st->state_dir, name[0] ? name : "prog",
             (unsigned long long)fnv(0xcbf29ce484222325ull, key, strlen(key)));
}

/* ----------------------------------------------------------------- loading */

static int int_in(const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

/* Checks everything and fills ph[]/start; a message names the first fault. */
static int validate(const cJSON *o, const char *key, struct hakd_phase_mem *ph, int *nph,
                    char *start, char *why, size_t n) {
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "hakmemd_profile");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "start_phase");
    const cJSON *phs = cJSON_GetObjectItemCaseSensitive(o, "phases"), *e;
    int64_t x;
    if (!cJSON_IsObject(o)) return snprintf(why, n, "not a JSON object"), -1;
    if (int_in(ver, HAKD_PROFILE_VERSION, HAKD_PROFILE_VERSION, &x))
        return snprintf(why, n, "\"hakmemd_profile\" is not %d", HAKD_PROFILE_VERSION), -1;
    if (!cJSON_IsString(k) || strcmp(k->valuestring, key))
        return snprintf(why, n, "\"key\" is not this program's"), -1;
    if (!cJSON_IsString(sp) || strlen(sp->valuestring) >= 24)
        return snprintf(why, n, "\"start_phase\" missing or too long"), -1;
    if (!cJSON_IsArray(phs) || cJSON_GetArraySize(phs) > HAKD_PHASES)
        return snprintf(why, n, "\"phases\" is not an array of at most %d", HAKD_PHASES), -1;
    snprintf(start, 24, "%s", sp->valuestring);
    *nph = 0;
    cJSON_ArrayForEach(e, phs) {
        struct hakd_phase_mem *m = &ph[*nph];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "phase");
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(e, "objective");
        const cJSON *ks = cJSON_GetObjectItemCaseSensitive(e, "knobs"), *kv;
        memset(m, 0, sizeof *m);
        if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) >= 24)
            return snprintf(why, n, "phases[%d].phase missing or too long", *nph), -1;
        if (!cJSON_IsNumber(obj) || !(obj->valuedouble >= 0))
            return snprintf(why, n, "phases[%d].objective is not a number >= 0", *nph), -1;
        if (!cJSON_IsArray(ks) || cJSON_GetArraySize(ks) > HAKD_MAX_KEEP)
            return snprintf(why, n, "phases[%d].knobs is not an array of at most %d", *nph,
                            HAKD_MAX_KEEP),
                   -1;
        snprintf(m->key, sizeof m->key, "%s", name->valuestring);
        m->best_obj = obj->valuedouble;
        cJSON_ArrayForEach(kv, ks) {
            const cJSON *kn = cJSON_GetObjectItemCaseSensitive(kv, "knob");
            int id = cJSON_IsString(kn) ? hak_knob_lookup(kn->valuestring) : -1;
            int64_t c, val;
            if (id < 0)
                return snprintf(why, n, "phases[%d].knobs[%d]: unknown knob", *nph, m->n), -1;
            int64_t maxc = hak_knob_defs[id].scope == HAK_SCOPE_CLASS ? HAK_NUM_CLASSES - 1 : 0;
            if (int_in(cJSON_GetObjectItemCaseSensitive(kv, "class"), 0, maxc, &c))
                return snprintf(why, n, "phases[%d].knobs[%d]: class not in 0..%lld", *nph, m->n,
                                (long long)maxc),
                       -1;
            if (int_in(cJSON_GetObjectItemCaseSensitive(kv, "value"), hak_knob_defs[id].min,
                       hak_knob_defs[id].max, &val))
                return snprintf(why, n, "phases[%d].knobs[%d]: %s value not in %lld..%lld", *nph,
                                m->n, hak_knob_defs[id].name, (long long)hak_knob_defs[id].min,
                                (long long)hak_knob_defs[id].max),
                       -1;
            m->keep[m->n++] = (struct hakd_keep){(uint8_t)id, (uint8_t)c, val};
        }
        (*nph)++;
    }
    return 0;
}

static char *slurp(const char *path, size_t max) {
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t len = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || len > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

int hakd_profile_load(struct hakd_state *st, struct hakd_proc *p, struct hakd_decision *d,
                      int max) {
    char path[512], why[160], start[24];
    static struct hakd_phase_mem ph[HAKD_PHASES];
    int nph = 0, n = 0;
    p->ps.profile_applied = 1;
    profile_path(st, p->key, path, sizeof path);
    char *text = slurp(path, 256 * 1024);
    if (!text) {
        if (errno != ENOENT)
            hakd_log(HAKD_WARN, "pid %d: profile %s rejected: %s", p->pid, path, strerror(errno));
        return 0;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o) snprintf(why, sizeof why, "not valid JSON");
    if (!o || validate(o, p->key, ph, &nph, start, why, sizeof why) != 0) {
        hakd_log(HAKD_WARN, "pid %d (%s): profile %s rejected, nothing applied: %s", p->pid, p->exe,
                 path, why);
        cJSON_Delete(o);
        st->errors_total++;
        return -1;
    }
    cJSON_Delete(o);
    hakd_policy_seed(p, ph, nph);
    hakd_log(HAKD_INFO, "pid %d (%s): profile %s: %d phase(s), starting with %s", p->pid, p->exe,
             path, nph, start);
    for (int i = 0; i < nph; i++) {
        if (strcmp(ph[i].key, start)) continue;
        for (int j = 0; j < ph[i].n && n < max; j++) {
            int k = ph[i].keep[j].knob, c = ph[i].keep[j].cls;
            int o2 = p->knobs.owner[k][c];
            int64_t v = ph[i].keep[j].val;
            const struct hakd_limit *l = &st->cfg.limit[k];
            if (l->set) v = v < l->min ? l->min : v > l->max ? l->max : v;
            if (!p->knobs.present[k] || (o2 != HAK_OWNER_DEFAULT && o2 != HAK_OWNER_DAEMON) ||
                p->knobs.val[k][c] == v)
                continue;
            d[n] = (struct hakd_decision){p, -1, k, c, p->knobs.val[k][c], v, ""};
            snprintf(d[n].reason, sizeof d[n].reason, "profile %s: learned", start);
            p->ps.ks[k][c].quiet = HAKD_QUIET;
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------------ saving */

int hakd_profile_save(struct hakd_state *st, const struct hakd_proc *p) {
    char path[512], tmp[560];
    const struct hakd_pstate *s = &p->ps;
    if (!p->key[0] || !s->nphases || st->dry_run) return 0;
    cJSON *o = cJSON_CreateObject(), *phs = cJSON_AddArrayToObject(o, "phases");
    cJSON_AddNumberToObject(o, "hakmemd_profile", HAKD_PROFILE_VERSION);
    cJSON_AddStringToObject(o, "key", p->key);
    cJSON_AddStringToObject(o, "exe", p->exe_path);
    cJSON_AddNumberToObject(o, "saved", (double)time(NULL));
    cJSON_AddStringToObject(o, "start_phase",
                            s->first_phase[0] ? s->first_phase : s->phases[0].key);
    for (int i = 0; i < s->nphases; i++) {
        const struct hakd_phase_mem *m = &s->phases[i];
        cJSON *e = cJSON_CreateObject(), *ks;
        cJSON_AddStringToObject(e, "phase", m->key);
        cJSON_AddNumberToObject(e, "objective", m->best_obj);
        ks = cJSON_AddArrayToObject(e, "knobs");
        for (int j = 0; j < m->n; j++) {
            cJSON *kv = cJSON_CreateObject();
            cJSON_AddStringToObject(kv, "knob", hak_knob_defs[m->keep[j].knob].name);
            cJSON_AddNumberToObject(kv, "class", m->keep[j].cls);
            cJSON_AddNumberToObject(kv, "value", (double)m->keep[j].val);
            cJSON_AddItemToArray(ks, kv);
        }
        cJSON_AddItemToArray(phs, e);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return -1;
    snprintf(path, sizeof path, "%s/profiles", st->state_dir);
    mkdir(path, 0755);
    profile_path(st, p->key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "we");
    int rc = -1;
    if (f) {
        rc = fputs(text, f) < 0 || fputc('\n', f) == EOF;
        rc |= fclose(f) != 0;
        if (!rc) rc = rename(tmp, path);
        if (rc) unlink(tmp);
    }
    free(text);
    if (rc)
        hakd_log(HAKD_WARN, "cannot save profile %s: %s", path, strerror(errno));
    else
        hakd_log(HAKD_DEBUG, "pid %d: profile saved to %s", p->pid, path);
    return rc ? -1 : 0;
}

void hakd_profile_save_all(struct hakd_state *st) {
    for (int i = 0; i < st->nprocs; i++)
        if (st->procs[i]->managed) hakd_profile_save(st, st->procs[i]);
}
