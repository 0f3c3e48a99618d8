/* hakctl_shell.c — `hakctl shell`: a readline loop over the same commands.
 * History persists in ~/.hakctl_history. Tab completes command names, then
 * pids of processes with a segment, then knob names (with '=' after `set`)
 * and the command's options. Ctrl-C clears the line or stops a --watch. */
#include "hakctl.h"

#include <ctype.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define MAX_WORDS 64

static char hist_path[512];

static void history_init(void) {
    const char *home = getenv("HOME");
    struct passwd *pw;
    if ((!home || !*home) && (pw = getpwuid(getuid()))) home = pw->pw_dir;
    if (!home || !*home) return;
    snprintf(hist_path, sizeof hist_path, "%s/.hakctl_history", home);
    using_history();
    stifle_history(1000);
    read_history(hist_path);
}

/* Splits a line into words: blanks separate, '…' and "…" quote, \ escapes.
 * Returns the word count, or -1 on an unterminated quote. */
static int split(char *line, char **argv) {
    int argc = 0;
    char *r = line, *w = line;
    while (*r) {
        while (isspace((unsigned char)*r)) r++;
        if (!*r) break;
        if (argc == MAX_WORDS - 1) return -1;
        argv[argc++] = w;
        char q = 0;
        for (; *r && (q || !isspace((unsigned char)*r)); r++) {
            if (q && *r == q)
                q = 0;
            else if (!q && (*r == '\'' || *r == '"'))
                q = *r;
            else if (*r == '\\' && r[1] && q != '\'')
                *w++ = *++r;
            else
                *w++ = *r;
        }
        if (q) return -1;
        if (*r) r++;
        *w++ = 0;
    }
    argv[argc] = NULL;
    return argc;
}

/* ------------------------------------------------------------ completion */

static char **cands;
static int ncands, cand_i;

static void cand_add(const char *s) {
    char **n = realloc(cands, (size_t)(ncands + 1) * sizeof *cands);
    if (!n) return;
    cands = n;
    cands[ncands++] = strdup(s);
}

static int add_pid(pid_t pid, const char *path, void *arg) {
    char buf[16];
    (void)path, (void)arg;
    snprintf(buf, sizeof buf, "%d", pid);
    cand_add(buf);
    return 0;
}

static char *next_cand(const char *text, int state) {
    if (!state) cand_i = 0;
    while (cand_i < ncands) {
        const char *c = cands[cand_i++];
        if (strncmp(c, text, strlen(text)) == 0) return strdup(c);
    }
    return NULL;
}

static char **complete(const char *text, int start, int end) {
    char *line = strndup(rl_line_buffer, (size_t)start), *words[MAX_WORDS];
    int nw = line ? split(line, words) : -1, positional = 0;
    const struct hk_cmd *cmd = nw > 0 ? hk_cmd_find(words[0]) : NULL;
    (void)end;
    for (int i = 0; i < ncands; i++) free(cands[i]);
    ncands = 0;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = ' ';
    for (int i = 1; i < nw; i++) positional += words[i][0] != '-';
    if (nw == 0) {
        for (const struct hk_cmd *c = hk_cmds; c->name; c++) cand_add(c->name);
        cand_add("help");
        cand_add("exit");
    } else if (cmd && text[0] == '-') {
        for (const struct option *o = cmd->opts; o->name; o++) {
            char buf[64];
            snprintf(buf, sizeof buf, "--%s", o->name);
            cand_add(buf);
        }
    } else if (cmd && cmd->pid_arg && positional == 0) {
        hak_shm_list(add_pid, NULL);
    } else if (cmd && cmd->knob_args && positional >= 1) {
        int set = strcmp(cmd->name, "set") == 0;
        for (int k = 0; k < HAK_NUM_KNOBS; k++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s%s", hak_knob_defs[k].name, set ? "=" : "");
            cand_add(buf);
        }
        if (set) rl_completion_append_character = '\0'; /* the value follows '=' */
    } else if (nw == 1 && !strcmp(words[0], "help")) {
        for (const struct hk_cmd *c = hk_cmds; c->name; c++) cand_add(c->name);
    }
    free(line);
    return rl_completion_matches(text, next_cand);
}

/* Ctrl-C at the prompt: drop the line, show a fresh prompt. */
static int on_signal(void) {
    if (hk_interrupted) {
        hk_interrupted = 0;
        rl_replace_line("", 0);
        rl_crlf();
        rl_on_new_line();
        rl_redisplay();
    }
    return 0;
}

static int run_line(char *line) {
    char *argv[MAX_WORDS];
    int argc = split(line, argv);
    if (argc < 0) {
        hk_err("unterminated quote, or too many words");
        return HK_USAGE;
    }
    if (argc == 0) return HK_OK;
    if (!strcmp(argv[0], "help") || !strcmp(argv[0], "?")) {
        if (argc > 1 && !hk_cmd_find(argv[1]))
            return hk_usage(NULL, "unknown command '%s'", argv[1]);
        if (argc > 1) return hk_help(argv[1]);
        printf("commands:\n");
        for (const struct hk_cmd *c = hk_cmds; c->name; c++)
            if (c->fn != hk_cmd_shell) printf("  %-6s %s\n", c->name, c->summary);
        printf("  help [COMMAND], exit.  Tab completes commands, pids and knobs.\n");
        return HK_OK;
    }
    return hk_dispatch(argc, argv);
}

int hk_cmd_shell(int argc, char **argv) {
    char *line;
    if (argc > 1 && !strcmp(argv[1], "--help")) return hk_help("shell");
    if (argc > 1) return hk_usage("shell", "unexpected argument '%s'", argv[1]);
    if (hk_in_shell) {
        hk_err("already in the shell");
        return HK_ERR;
    }
    hk_in_shell = 1;
    rl_readline_name = "hakctl";
    rl_attempted_completion_function = complete;
    rl_signal_event_hook = on_signal;
    hk_catch_sigint();
    history_init();
    while ((line = readline("hakctl> "))) {
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!strcmp(s, "exit") || !strcmp(s, "quit")) {
            free(line);
            break;
        }
        if (*s) {
            add_history(s);
            run_line(s);
        }
        free(line);
        hk_interrupted = 0;
    }
    if (!line) putchar('\n');
    if (hist_path[0]) write_history(hist_path);
    for (int i = 0; i < ncands; i++) free(cands[i]);
    free(cands);
    return HK_OK;
}
