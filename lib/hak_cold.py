#!/usr/bin/env python3
"""hak_cold.py — write lib/hak_cold.ld, the linker script that moves the
functions a small process never runs into a text segment of their own.

    python3 lib/hak_cold.py        (from the top, after `make build-tests bench-bins`)

The kernel maps a file's cached pages around each page fault (fault-around,
64 KiB windows, clipped to the mapping), so every page of a small library's
text was resident in every process that loaded it. With the cold functions
in their own PT_LOAD segment (its own mapping), a process that runs none of
them keeps only the hot segment's pages (docs/allocator.md, "Fixed resident
memory"). A function missing from the script stays in the hot segment, and
one listed that a process does run costs that process one fault and the
cold pages around it: the layout changes residency, never behaviour.

Hot = every function of libhakmem.so that callgrind sees run in the small
workloads below (start-up, malloc/free and their first slow paths, the
segment's publishing, fork and exec from a shell, exit), plus EXTRA_HOT.
Warm = what callgrind sees run, beyond the hot, in WARM_WORKLOADS (threads
that exit, frees by another thread, a program that lives past the purger's
first tick), plus EXTRA_WARM: 8 KiB of text that nearly every threaded or
longer-running program runs, in a text segment of its own too, so that such
a program maps its 2-3 pages and not the 10 of the cold text and .eh_frame.
Cold = every other function section of the objects (-ffunction-sections).
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

LIB = os.path.abspath("lib/libhakmem.so")
WORKLOADS = [
    ["sh", "-c", "true"],
    ["sh", "-c", "/bin/true; /bin/echo x > /dev/null"],
    ["bench/bin/tiny_hot", "64", "100", "3000"],
    ["bench/bin/tiny_hot", "16", "100", "3000"],
    ["tests/bin/t_fixed_rss", "--hakmem"],
    ["bench/bin/random_mixed", "20000", "400", "1", "8", "1024"],
    ["tests/bin/cxx_churn"],
]
# threads that exit, remote frees, the purger's ticks (callgrind runs them
# 50-100 times slower, so the timed paths come in here too)
WARM_WORKLOADS = [
    ["bench/bin/xthread", "1", "20000", "1024", "16", "256", "1"],
    ["bench/bin/cache_scratch", "2", "1000", "8", "1000"],
    ["bench/bin/malloc_simple", "100000", "16", "256"],
    ["bench/bin/random_mixed", "200000", "400", "1", "8", "1024"],
    ["bench/bin/thread_churn", "2", "4", "14", "40", "128", "1"],
]
# timed or racy: a thread's exit, the purger's tick, remote frees
EXTRA_WARM = {"heap_leave", "hak_starter_tidy", "hak_purger_thread_exit", "hak_purger_tick",
              "hak_remote_drain", "remote_publish", "hak_knobs_lease_check",
              # the aligned entry points (800 bytes): no standard row runs them, and
              # with them the hot segment took 12 pages, without them 11 (a page
              # less in every process); a program that calls them maps the warm
              # text's 3 pages, which threaded and longer ones map anyway
              "posix_memalign", "aligned_alloc", "memalign", "hak_alloc_aligned",
              "hak_alloc_aligned.part.0"}
# called only from warm functions (the purger thread's pass, heap_leave,
# purge_locked), so a process that runs them has the warm text mapped
# already: warm even where a hot workload runs them under callgrind (it runs
# 50-100 times slower, so the purger starts). 2.2 KiB, the hot segment's
# twelfth page (docs/allocator.md, "Round eight").
FORCE_WARM = {"hak_heaps_drain_idle", "hak_heaps_drain_idle.cold", "purger_spawn",
              "hak_stash_purge", "hak_heap_holds_blocks",
              # the purge's own steps and the idle pass's heap take: whether the
              # profile's runs reach them depends on the purger's timing (one run
              # made them cold), and every threaded program that idles runs them
              "hak_os_purge", "purge_span_pages", "hak_pool_take",
              # a thread cache's overflow when it takes other threads' blocks:
              # threaded programs only; flips with the profile's scheduling
              "hak_flush_mixed", "dirty_purge",
              # adopting a dead thread's heap: only after a thread's exit
              "hak_heap_adopt_one"}
# only on failure or on a stale name: operator new's NULL path (cxx_churn
# makes it fail on purpose), a name of our pid left by the image before an
# exec or by a dead process (the gc)
FORCE_COLD = {"new_fail", "written_in",
              # hak_shm_reserve's fallback where madvise cannot populate
              # (kernels before 5.14, filters refusing it)
              "reserve_by_fallocate"}
# run at exit or on a thread's exit, which callgrind may not see, and the
# entry points small programs commonly call (C and C++)
EXTRA_HOT = {"hak_fini", "hak_thread_exit", "hak_ctor", "calloc", "realloc", "reallocarray",
             "malloc_usable_size", "hak_free_slow", "hak_free_slow.part.0",
             "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
             # the first slow paths of a program that keeps allocating and freeing,
             # some of them timed (callgrind runs slower)
             "hak_tbin_grow", "hak_flush", "hak_flush_list", "flush_n", "hak_store_put",
             "hak_store_take", "hak_store_room", "hak_store_empty", "hak_release_empty",
             "hak_span_release", "hak_purge_delay_ns", "hak_purger_wake_soon",
             # every refill and flush takes the heap lock (hak_span.c SPAN_LOCK)
             "hak_heap_lock", "hak_heap_unlock",
             # every process with a HAKMEM_* variable (the test suite sets one)
             "knob_set_env", "knob_set_env.constprop.0", "parse_i64"}
# Read-only data the hot paths never read, into the cold segment after the
# cold text: the help texts of shm/shm_tables.c (section .rodata.hak_help,
# hakctl's), tables of error texts put in .rodata.hak_cold, and the strings
# of these objects' .rodata.str1.8 (GCC's longer strings: messages printed
# on errors, malloc_info's XML); the short ones, .rodata.str1.1, stay hot
# but for four objects whose are all error texts (the knobs' names that
# init reads are among the short strings). A string moved here that a
# hot path does read costs that process a fault and the cold pages, as a
# cold function would. The symbol-less data is not in callgrind's profile,
# so this list is kept by hand (docs/allocator.md, "The hot segment's room").
COLD_RODATA = ["*(.rodata.hak_help .rodata.hak_cold)", "*hak_mallinfo.o(.rodata.str1.1 .rodata.str1.8)"] + [
    f"*{obj}(.rodata.str1.8)" for obj in
    ("hak_api.o", "hak_new.o", "hak_large.o", "hak_os.o", "hak_knobs.o", "hak_publish.o")] + [
    # these objects' short strings too: their error messages, and new_fail's
    # dlsym names
    f"*{obj}(.rodata.str1.1)" for obj in ("hak_api.o", "hak_new.o", "hak_span.o")] + [
    "*hak_report.o(.rodata.str1.1 .rodata.cst2)"]  # hak_log's and hak_fatal's, cold


def ran_functions(out_files, unnamed=False):
    """Functions run in libhakmem.so; with unnamed, also those callgrind
    puts in an object it could not name: valgrind reads no symbols for the
    warm and cold mappings, only for the first executable one."""
    hot = set()
    for path in out_files:
        obs, fns, cur_ob = {}, {}, None
        with open(path) as f:
            for line in f:
                m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
                if not m:
                    continue
                called, kind, idx, name = m.groups()
                table = obs if kind == "ob" else fns
                if name:
                    table[idx] = name
                if called:
                    continue
                if kind == "ob":
                    cur_ob = table[idx]
                elif "libhakmem" in (cur_ob or "") or (unnamed and cur_ob == "???"):
                    hot.add(table[idx].split("'")[0])
    return hot


def function_sections(objs):
    secs = set()
    for obj in objs:
        out = subprocess.run(["readelf", "-SW", obj], capture_output=True, text=True, check=True)
        for word in out.stdout.split():
            # .text.sorted.*: malloc and free, placed by hak_api.c (always hot)
            if word.startswith(".text.") and not word.startswith((".text.startup", ".text.sorted.")):
                secs.add(word)
    return secs


# The small workloads run at callgrind's pace (50-100 times slower), so the
# allocator's timed paths (the purge delay's expiry, the purger's start) ran
# in them or not by the machine's load, and flipped functions between hot
# and warm from one profile to the next. At full speed these workloads end
# long before any delay expires: their profile runs with the delays out of
# reach, so what is timed is never hot by accident (it is warm: the warm
# workloads keep the defaults).
UNTIMED = {"HAKMEM_PURGE_DELAY_MS": "60000", "HAKMEM_BACKGROUND": "0"}


def ran_in(workloads, unnamed=False, untimed=False):
    with tempfile.TemporaryDirectory() as tmp:
        for i, cmd in enumerate(workloads):
            env = dict(os.environ, LD_PRELOAD=LIB, **(UNTIMED if untimed else {}))
            subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                            f"--callgrind-out-file={tmp}/cg.{i}.%p"] + cmd,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return ran_functions(glob.glob(f"{tmp}/cg.*"), unnamed)


def write_section(out, name, secs, align="(ALIGN(0x1000) + 0x1000) "):
    out.write(f"  {name} {align}:\n  {{\n")
    for sec in secs:
        out.write(f"    {sec if sec.startswith('*') else f'*({sec})'}\n")
    out.write("  }\n")


def main():
    hot = ran_in(WORKLOADS, untimed=True) | EXTRA_HOT
    if len(hot) < 20:
        sys.exit("hak_cold.py: callgrind saw too few functions run; is valgrind installed?")
    hot -= FORCE_WARM | FORCE_COLD
    warm = ((ran_in(WARM_WORKLOADS, unnamed=True) | EXTRA_WARM) - hot) | FORCE_WARM
    warm -= FORCE_COLD
    # shm/'s objects too (libhakshm.a, built with -ffunction-sections): the
    # segment's creation and publishing run in every process that lives
    # 50 ms, its clean-up and the names' parsing in few
    objs = sorted(o for o in glob.glob("lib/hak_*.o") + glob.glob("shm/shm_*.o")
                  if not o.endswith(".tsan.o"))
    cold, warm_secs = [], []
    for sec in sorted(function_sections(objs)):
        name = sec[len(".text."):]
        for kind in ("unlikely.", "exit.", "hot."):  # cold parts, destructors
            if name.startswith(kind):
                name = name[len(kind):]
        if name not in ("unlikely", "exit", "hot") and name not in hot:
            (warm_secs if name in warm else cold).append(sec)
    with open("lib/hak_cold.ld", "w") as out:
        out.write("/* Generated by lib/hak_cold.py: the functions a small process does not\n"
                  " * run, in text segments (and mappings) of their own, each a page apart\n"
                  " * from the rest so that the linker starts a new segment: first the warm\n"
                  " * ones (thread exit, remote frees, the purger: most threaded or longer\n"
                  " * programs run them), then the cold. After .rodata: with\n"
                  " * -z noseparate-code (lib/lib.mk) headers, hot text and .rodata share one\n"
                  " * segment, and .eh_frame (read only to unwind) follows the cold text,\n"
                  " * after the read-only data no hot path reads (COLD_RODATA). */\n")
        out.write("SECTIONS\n{\n")
        write_section(out, ".text.hak_warm", warm_secs)
        write_section(out, ".text.hak_cold", cold)
        write_section(out, ".rodata.hak_cold", COLD_RODATA, align="")
        out.write("}\nINSERT AFTER .rodata;\n")
    print(f"lib/hak_cold.ld: {len(warm_secs)} warm and {len(cold)} cold function sections, "
          f"{len(hot)} functions run")


if __name__ == "__main__":
    main()
