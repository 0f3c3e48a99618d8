# lib/: libhakmem.so (LD_PRELOAD), libhakmem.a (link directly), and a
# ThreadSanitizer build of the same objects for the lock-free tests.
LIB_SRCS := lib/hak_api.c lib/hak_new.c lib/hak_heap.c lib/hak_rows.c lib/hak_idle.c \
            lib/hak_span.c lib/hak_segment.c lib/hak_large.c lib/hak_class.c lib/hak_os.c \
            lib/hak_init.c lib/hak_knobs.c lib/hak_publish.c lib/hak_fork.c lib/hak_report.c \
            lib/hak_mallinfo.c lib/hak_purger.c lib/hak_oom.c lib/hak_segmap.c lib/hak_starter.c \
            lib/hak_store.c lib/hak_tcache.c
LIB_HDRS := lib/hak_alloc.h lib/hak_internal.h shm/hakmem_shm.h shm/hak_sys.h
LIB_OBJS := $(LIB_SRCS:.c=.o)
# (no C++ operators: the sanitizer runtime keeps its own new/delete)
LIB_TSAN_OBJS := $(patsubst %.c,%.tsan.o,$(filter-out lib/hak_new.c,$(LIB_SRCS)) $(SHM_SRCS))
# the allocator exports only the malloc API; -ftls-model keeps TLS one load away
HASH := \#
HAK_USDT ?= $(shell printf '$(HASH)include <sys/sdt.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
# -ffunction-sections: a section per function, for lib/hak_cold.ld
LIB_CFLAGS = $(CFLAGS) -DHAK_USDT=$(HAK_USDT) -fvisibility=hidden -fno-plt -ftls-model=initial-exec \
             -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
             -ffunction-sections

# Relative relocations packed (DT_RELR, glibc >= 2.36, binutils >= 2.38):
# 118 RELATIVE entries of 24 bytes become 48 bytes, the loader's read-only
# segment one page less. Only where the linker and libc both have it.
HAK_RELR ?= $(shell printf 'int x;\n' | $(CC) -shared -fPIC -Wl,-z,pack-relative-relocs -x c - -o /dev/null 2>/dev/null && echo -Wl,-z,pack-relative-relocs)
# lib/hak_cold.ld (made by lib/hak_cold.py): the functions a small process
# never runs in a text segment of their own, so that fault-around does not
# map them, and before them, in another, the warm ones that threaded and
# longer-lived processes run (docs/allocator.md, "Fixed resident memory"). -z noseparate-code:
# the ELF headers, the hot text and .rodata in one segment (11 pages, one
# mapping, one fault) instead of three page-aligned ones (2 + 8 + 4 pages,
# three faults); .eh_frame goes with the cold text.
HAK_NOSEPCODE ?= $(shell printf 'int x;\n' | $(CC) -shared -fPIC -Wl,-z,noseparate-code -x c - -o /dev/null 2>/dev/null && echo -Wl,-z,noseparate-code)
LIB_LDFLAGS = -Wl,-z,now -Wl,-O1 $(HAK_RELR) $(HAK_NOSEPCODE) -Wl,--version-script=lib/exports.map \
              -Wl,-T,lib/hak_cold.ld

# the segment code as an archive: only the objects the allocator uses (the
# readers' side, for hakctl and hakmemd, would be 16 KiB of text mapped and
# resident in every process)
lib/libhakmem.so: $(LIB_OBJS) $(SHM_LIB) lib/hak_cold.ld
	$(CC) -shared -o $@ $(LIB_OBJS) $(SHM_LIB) $(LIB_LDFLAGS) -ldl -pthread

# the same library with the fast-path counters compiled out, to measure them;
# its free padded to the counters build's address (lib/hak_api.c)
lib/libhakmem-nocounters.so: $(LIB_SRCS) $(LIB_HDRS) $(SHM_LIB) lib/hak_cold.ld
	$(CC) $(LIB_CFLAGS) -DHAK_COUNTERS=0 -DHAK_FREE_PAD=80 -shared -o $@ $(LIB_SRCS) $(SHM_LIB) \
	    $(LIB_LDFLAGS) -ldl -pthread

# the shm objects that make system calls directly (shm/shm.mk's rule knows
# only its own headers)
shm/shm_create.o shm/shm_tables.o: shm/hak_sys.h

lib/libhakmem.a: $(LIB_OBJS) $(SHM_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

lib/libhakmem-tsan.a: $(LIB_TSAN_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

lib/%.o: lib/%.c $(LIB_HDRS)
	$(CC) $(LIB_CFLAGS) -c -o $@ $<

# ThreadSanitizer build: API exported as hak_test_malloc & co (HAK_API_PREFIX)
%.tsan.o: %.c $(LIB_HDRS)
	$(CC) $(LIB_CFLAGS) -O1 -fsanitize=thread -DHAK_API_PREFIX -c -o $@ $<

ALL_TARGETS += lib/libhakmem.so lib/libhakmem.a
TEST_DEPS += lib/libhakmem-tsan.a
CLEAN += $(LIB_OBJS) $(LIB_TSAN_OBJS) lib/libhakmem.so lib/libhakmem-nocounters.so lib/libhakmem.a lib/libhakmem-tsan.a
INSTALL_TARGETS += install-lib

.PHONY: install-lib
install-lib: lib/libhakmem.so lib/libhakmem.a
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 lib/libhakmem.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 lib/libhakmem.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 shm/hakmem_shm.h $(DESTDIR)$(PREFIX)/include/
