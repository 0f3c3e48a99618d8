# bench/: workload programs and the runner that compares hakmem with glibc,
# mimalloc, jemalloc and tcmalloc. Included by the top-level Makefile.
#   make bench            quick run (~7 min), writes docs/benchmarks.md + .png
#   make bench-full       7 runs per allocator, longer workloads (~1 hour)
#   make bench-callgrind  instructions per operation under callgrind
#   make bench-real       real programs (lua, z3, gs, ...), writes docs/realprogs.md
# The workloads are not part of ALL_TARGETS: plain `make` does not build them.

BENCH_NAMES := larson random_mixed tiny_hot mid_large_mt xthread xbatch cache_scratch realloc_grow \
               frag_rss rss_wrap large_churn thread_churn many_threads startup syscall_ns fault_ns publish_us \
               malloc_simple thread_bins min_trial mstress rptest shbench mleak
BENCH_BINS  := $(addprefix bench/bin/,$(BENCH_NAMES))
BENCH_LIB   := lib/libhakmem.so

bench/bin/%: bench/%.c bench/bench_util.h
	@mkdir -p bench/bin
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# preloaded after the allocator: where a process's resident memory is at exit
bench/bin/rss_dump.so: bench/rss_dump.c
	@mkdir -p bench/bin
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<

# the least an allocator can do: a single-threaded row's lower bound (bench/floor_alloc.c)
bench/bin/floor_alloc.so: bench/floor_alloc.c
	@mkdir -p bench/bin
	$(CC) $(CFLAGS) -fPIC -shared -fno-plt -fno-builtin-malloc -fno-builtin-free -o $@ $<

.PHONY: bench bench-full bench-callgrind bench-real bench-bins bench-overhead bench-startup
bench-bins: $(BENCH_BINS) bench/bin/rss_dump.so bench/bin/floor_alloc.so

bench: $(BENCH_BINS) $(BENCH_LIB)
	@bash scripts/deps.sh bench
	python3 bench/run --quick

bench-full: $(BENCH_BINS) $(BENCH_LIB)
	@bash scripts/deps.sh bench
	python3 bench/run --full

bench-callgrind: $(BENCH_BINS) $(BENCH_LIB)
	@bash scripts/deps.sh bench
	bash bench/callgrind.sh

# lua5.4, z3, gs, python3, perl, sqlite3, gcc, xz on generated inputs (about
# 12 minutes on the shared 2-CPU machine): docs/realprogs.md
bench-real: bench/bin/rss_wrap $(BENCH_LIB)
	@bash scripts/deps.sh bench
	python3 bench/realprogs.py --install $(REALPROGS_ARGS)

CLEAN += $(BENCH_BINS) bench/bin/floor_alloc.so

# cost of the live counters: libhakmem.so against -DHAK_COUNTERS=0 (docs/overhead.md)
bench-overhead: $(BENCH_BINS) lib/libhakmem.so lib/libhakmem-nocounters.so
	bash bench/overhead.sh

# start-up of `sh -c true` under hakmem, glibc and mimalloc (docs/startup.md)
bench-startup: lib/libhakmem.so
	bash bench/startup.sh

# what the daemon is worth: the phase-shifting workload (docs/adaptive.md)
bench-adaptive: bench/bin/adaptive $(BENCH_LIB) daemon/hakmemd ; bash bench/adaptive.sh $(ADAPTIVE_ARGS)
