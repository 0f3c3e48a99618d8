# hakmem — top-level, non-recursive build. Each component owns a fragment
# (<dir>/<dir>.mk) that adds its targets to ALL_TARGETS / TEST_DEPS / CLEAN.
#   make            build everything
#   make test       build, then run every test (tests/run)
#   make bench      quick benchmark against glibc, mimalloc, jemalloc, tcmalloc
#   make install PREFIX=/usr/local

CC      ?= cc
CXX     ?= c++
PREFIX  ?= /usr/local
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wno-unused-parameter
CFLAGS  += $(WARN) -std=gnu11 -fPIC -pthread -D_GNU_SOURCE -I$(CURDIR)/shm
CXXFLAGS ?= $(OPT) -g
CXXFLAGS += $(WARN) -fPIC -pthread
LDLIBS  += -pthread

ALL_TARGETS :=
TEST_DEPS   :=
CLEAN       :=
INSTALL_TARGETS :=

.PHONY: all build-tests test demo bench bench-full install clean format
all: build-all

include shm/shm.mk
include lib/lib.mk
-include cli/cli.mk
-include daemon/daemon.mk
-include bench/bench.mk
-include tests/tests.mk

build-all: $(ALL_TARGETS)

# deps first: the build itself needs libcjson/readline/sdt headers
test:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory build-tests
	@bash tests/run

build-tests: build-all $(TEST_DEPS)

demo:
	@bash scripts/demo.sh

install: $(ALL_TARGETS) $(INSTALL_TARGETS)

clean:
	rm -f $(CLEAN)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')
