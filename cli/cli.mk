# cli/: hakctl, the operator's tool (libcjson, readline), its man page and
# bash completion; plus the segment tests that need no allocator.
CLI_SRCS := cli/hakctl.c cli/hakctl_args.c cli/hakctl_fmt.c cli/hakctl_model.c cli/hakctl_target.c \
            cli/hakctl_json.c cli/hakctl_ps.c cli/hakctl_stats.c cli/hakctl_knobs.c \
            cli/hakctl_top.c cli/hakctl_gc.c cli/hakctl_shell.c \
            cli/hakctl_daemon.c
CLI_OBJS := $(CLI_SRCS:.c=.o)
CLI_LIBS := -lcjson -lreadline

cli/hakctl: $(CLI_OBJS) $(SHM_LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(SHM_LIB) $(LDLIBS) $(CLI_LIBS)

cli/%.o: cli/%.c cli/hakctl.h shm/hakmem_shm.h
	$(CC) $(CFLAGS) -c -o $@ $<

# Test programs: t_* are run by tests/run; hakctl_workload is a helper.
tests/bin/t_shm_validate: tests/t_shm_validate.c $(SHM_LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -o $@ $< $(SHM_LIB) $(LDLIBS)

tests/bin/hakctl_workload: tests/hakctl_workload.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -fno-builtin -o $@ $< $(LDLIBS)

ALL_TARGETS += cli/hakctl
TEST_DEPS += tests/bin/t_shm_validate tests/bin/hakctl_workload
CLEAN += cli/hakctl $(CLI_OBJS) tests/bin/t_shm_validate tests/bin/hakctl_workload

.PHONY: install-cli
install-cli: cli/hakctl
	install -D -m 755 cli/hakctl $(DESTDIR)$(PREFIX)/bin/hakctl
	install -D -m 644 docs/hakctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/hakctl.1
	install -D -m 644 cli/hakctl.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/hakctl
	install -D -m 644 shm/hakmem_shm.h $(DESTDIR)$(PREFIX)/include/hakmem_shm.h
INSTALL_TARGETS += install-cli
