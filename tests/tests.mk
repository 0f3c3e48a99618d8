# tests/tests.mk — test binaries (included by the top-level Makefile).
# See docs/testing.md. Every tests/t_*.c becomes tests/bin/t_* (run by
# tests/run under LD_PRELOAD of lib/libhakmem.so); helpers driven by scripts
# are not named t_*. Test programs are plain glibc programs: the allocator is
# preloaded at run time, except the tsan_* and static_* variants, which link
# the archives in (built only when the archive exists or lib/ declares it).

TESTS_C       := $(sort $(wildcard tests/t_*.c))
TESTS_BIN     := $(patsubst tests/%.c,tests/bin/%,$(TESTS_C))
TEST_HELPERS  := tests/bin/detect_helper tests/bin/cxx_churn tests/bin/oom_helper tests/bin/sys_deny \
                 tests/bin/dl_alloc_lib.so
TEST_HDRS     := tests/testutil.h tests/stress.h tests/fork_watch.h tests/fork_churn.h tests/mid_lib.h shm/hakmem_shm.h
TEST_CFLAGS    = $(CFLAGS) -fno-builtin -Itests
TEST_CXXFLAGS  = $(CXXFLAGS) -std=gnu++17 -fno-builtin
TEST_LDLIBS    = $(LDLIBS) -ldl

tests/bin:
	mkdir -p $@

tests/bin/t_%: tests/t_%.c $(TEST_HDRS) | tests/bin
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LDLIBS)

# their mmap() (and madvise()) stand in for libc's in the preloaded allocator
tests/bin/t_segmap_nomem: TEST_LDLIBS += -rdynamic
tests/bin/t_fork_lost_holder tests/bin/t_fork_raw_tid tests/bin/t_fork_raw_drain: TEST_LDLIBS += -rdynamic
# the C++ operators and std::set_new_handler, called by their mangled names
tests/bin/t_api_new_nothrow: TEST_LDLIBS += -lstdc++

tests/bin/detect_helper: tests/detect_helper.c | tests/bin
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LDLIBS)

tests/bin/oom_helper: tests/oom_helper.c | tests/bin
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LDLIBS)

tests/bin/sys_deny: tests/sys_deny.c | tests/bin
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LDLIBS)

# the library t_api_dlopen loads and unloads
tests/bin/dl_alloc_lib.so: tests/dl_alloc_lib.c | tests/bin
	$(CC) $(TEST_CFLAGS) -shared -fPIC -o $@ $<

tests/bin/cxx_churn: tests/cxx_churn.cc | tests/bin
	$(CXX) $(TEST_CXXFLAGS) -o $@ $< $(TEST_LDLIBS)

# ---- allocator linked in: TSAN stress (lib/libhakmem-tsan.a), static archive
TSAN_AR       := lib/libhakmem-tsan.a
HAKMEM_AR     := lib/libhakmem.a
TSAN_BINS     := $(patsubst tests/t_stress_%.c,tests/bin/tsan_stress_%,$(sort $(wildcard tests/t_stress_*.c))) \
                 tests/bin/tsan_canary
STATIC_BINS   := tests/bin/static_cxx_churn tests/bin/static_stress_xthread
# the shm objects, in case the archive does not carry them itself
TEST_SHM_AR    = $(wildcard shm/libhakshm.a)
# The TSAN archive exports the allocator as hak_test_malloc & co (the TSAN
# runtime must keep its own malloc: it allocates before instrumented code may
# run); tests/tsan_api.h, force-included, maps the test's calls onto them.
TSAN_CFLAGS    = $(CFLAGS) -O1 -fsanitize=thread -fno-builtin -Itests -include tests/tsan_api.h -include tests/tsan_api.h

tests/bin/tsan_stress_%: tests/t_stress_%.c $(TEST_HDRS) tests/tsan_api.h $(TSAN_AR) | tests/bin
	$(CC) $(TSAN_CFLAGS) -rdynamic -o $@ $< -Wl,--whole-archive $(TSAN_AR) -Wl,--no-whole-archive \
		$(TEST_SHM_AR) $(TEST_LDLIBS)

tests/bin/tsan_canary: tests/tsan_canary.c tests/tsan_api.h $(TSAN_AR) | tests/bin
	$(CC) $(TSAN_CFLAGS) -rdynamic -o $@ $< -Wl,--whole-archive $(TSAN_AR) -Wl,--no-whole-archive \
		$(TEST_SHM_AR) $(TEST_LDLIBS)

tests/bin/static_cxx_churn: tests/cxx_churn.cc $(HAKMEM_AR) | tests/bin
	$(CXX) $(TEST_CXXFLAGS) -rdynamic -o $@ $< -Wl,--whole-archive $(HAKMEM_AR) -Wl,--no-whole-archive \
		$(TEST_SHM_AR) $(TEST_LDLIBS)

tests/bin/static_stress_xthread: tests/t_stress_xthread.c $(TEST_HDRS) $(HAKMEM_AR) | tests/bin
	$(CC) $(TEST_CFLAGS) -rdynamic -o $@ $< -Wl,--whole-archive $(HAKMEM_AR) -Wl,--no-whole-archive \
		$(TEST_SHM_AR) $(TEST_LDLIBS)

# Build them with `make test` only when the archive is there or lib/ builds it.
ifneq ($(wildcard $(TSAN_AR))$(filter $(TSAN_AR),$(ALL_TARGETS) $(TEST_DEPS)),)
TEST_DEPS += $(TSAN_BINS)
endif
ifneq ($(wildcard $(HAKMEM_AR))$(filter $(HAKMEM_AR),$(ALL_TARGETS) $(TEST_DEPS)),)
TEST_DEPS += $(STATIC_BINS)
endif

.PHONY: tests-tsan tests-static
tests-tsan: $(TSAN_BINS)
tests-static: $(STATIC_BINS)

TEST_DEPS += $(TESTS_BIN) $(TEST_HELPERS) bench/bin/adaptive # t_daemon_shortphase
CLEAN += $(TESTS_BIN) $(TEST_HELPERS) $(TSAN_BINS) $(STATIC_BINS) tests/out/*.log

# tests that read their own counters through the shm library
tests/bin/t_cache_grow tests/bin/t_purge_fresh tests/bin/t_mid_store tests/bin/t_mid_stash tests/bin/t_tcache_decay tests/bin/t_fork_raw_counters tests/bin/t_tcache_receiver tests/bin/t_heap_leave_warm tests/bin/t_heap_leave_light tests/bin/t_heap_publish: tests/bin/%: tests/%.c $(TEST_HDRS) shm/libhakshm.a | tests/bin
	$(CC) $(TEST_CFLAGS) -o $@ $< shm/libhakshm.a $(TEST_LDLIBS)
