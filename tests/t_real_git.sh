#!/usr/bin/env bash
# t_real_git — git under hakmem: init, add, commit, log --stat, gc, fsck.
#
# Builds the same repository twice (fixed author, committer and dates, so
# object ids are deterministic): once with plain git, once with every git
# command preloaded with libhakmem.so. Several commits of generated files
# (adds, edits, renames, deletes), then `git log --stat`, `git diff --stat`,
# `git ls-tree -r`, `git gc --aggressive`, `git fsck --full`, `git count-objects`
# all must succeed under hakmem and the stable outputs (commit ids, log, trees,
# blame) must equal the plain-git ones.
# Why: git mixes mmap'd packs, zlib, threads (pack/index-pack, gc) and many
# short-lived processes.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd git

export HOME=$T/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=t@example.invalid
export GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=t@example.invalid
export LC_ALL=C TZ=UTC
mkdir -p "$HOME"

build_repo() { # $1 = dir, $2 = prefix ('' or hak)
    local d=$1 p=$2 c
    mkdir -p "$d" && cd "$d" || return 1
    $p git init -q -b main . || return 1
    $p git config gc.auto 0 && $p git config core.autocrlf false || return 1
    for c in 1 2 3 4 5 6; do
        export GIT_AUTHOR_DATE="2024-01-0$c 12:00:00 +0000" GIT_COMMITTER_DATE="2024-01-0$c 12:00:00 +0000"
        mkdir -p src/d0 src/d1 src/d2
        awk -v c=$c 'BEGIN { for (f = 0; f < 60; f++) { fn = sprintf("src/d%d/file%03d.txt", f % 3, f);
            for (l = 0; l < 200 + f; l++) printf "commit %d file %d line %d %s\n", (l % 7 == 0 ? c : 1), f, l, (f * l) % 97 >> fn;
            close(fn) } }'
        head -c $((100000 * c)) /dev/zero | tr '\0' 'z' >"blob$c.bin"
        [ $c -ge 3 ] && { $p git mv -k "src/d0/file000.txt" "src/d0/moved$c.txt" 2>/dev/null || true; }
        [ $c -ge 4 ] && $p git rm -q --cached "blob$((c - 2)).bin" && rm -f "blob$((c - 2)).bin"
        $p git add -A . || return 1
        $p git commit -q -m "commit $c" -m "$(seq 1 $c | tr '\n' ' ')" || return 1
    done
    $p git log --stat >"$d.log" || return 1
    $p git rev-parse HEAD HEAD~3 >"$d.rev" || return 1
    $p git ls-tree -r HEAD >"$d.tree" || return 1
    $p git diff --stat HEAD~5 HEAD >"$d.diff" || return 1
    $p git blame -s src/d1/file001.txt | md5sum >"$d.blame" || return 1
    $p git gc -q --aggressive || return 1
    $p git fsck --full --strict 2>&1 || return 1
    $p git count-objects -v | grep -E '^(count|in-pack|garbage)' >"$d.count" || return 1
    $p git log --oneline --all >>"$d.log" || return 1
    $p git cat-file -p HEAD: | wc -l >>"$d.tree" || return 1
    cd "$T" || return 1
}

(build_repo "$T/ref" "") >"$T/ref.err" 2>&1 || { cat "$T/ref.err"; fail "reference git run failed"; }
(build_repo "$T/hak" hak) >"$T/hak.err" 2>&1
rc=$?
cat "$T/hak.err"
[ $rc -eq 0 ] || fail "a git command failed under hakmem (see above)"
check_stderr "$T/hak.err"
for f in log rev tree diff blame count; do
    same_output "git $f" "$T/ref.$f" "$T/hak.$f"
done
echo "HEAD: $(head -1 "$T/hak.rev")"
