# daemon/: hakmemd, the learning daemon (libcjson; libbpf when daemon/bpf.mk
# finds clang, bpftool, libbpf and kernel BTF), its unit and man page.
# daemon/bpf.mk (the kernel probe) sets HAKD_BPF_OBJS / HAKD_BPF_LIBS: the
# object implementing daemon/hakd_bpf.h and what it links with. Without
# bpf.mk the daemon links daemon/hakd_bpf_off.o, whose BPF is always off.
-include daemon/bpf.mk
HAKD_BPF_OBJS ?= daemon/hakd_bpf_off.o
HAKD_BPF_LIBS ?=

HAKD_SRCS := daemon/hakmemd.c daemon/discover.c daemon/sample.c daemon/policy.c daemon/apply.c \
             daemon/profile.c daemon/config.c daemon/metrics.c daemon/status.c daemon/judge.c
HAKD_OBJS := $(HAKD_SRCS:.c=.o)

daemon/hakmemd: $(HAKD_OBJS) $(HAKD_BPF_OBJS) $(SHM_LIB)
	$(CC) $(CFLAGS) -o $@ $(HAKD_OBJS) $(HAKD_BPF_OBJS) $(SHM_LIB) $(LDLIBS) -lcjson -lm \
		$(HAKD_BPF_LIBS)

$(HAKD_OBJS): daemon/%.o: daemon/%.c daemon/hakd.h daemon/hakd_bpf.h shm/hakmem_shm.h
	$(CC) $(CFLAGS) -Idaemon -c -o $@ $<

# the fallback, when bpf.mk (which has its own rule) is absent
ifeq ($(wildcard daemon/bpf.mk),)
daemon/hakd_bpf_off.o: daemon/hakd_bpf_off.c daemon/hakd_bpf.h
	$(CC) $(CFLAGS) -c -o $@ $<
endif

ALL_TARGETS += daemon/hakmemd
CLEAN += daemon/hakmemd $(HAKD_OBJS)

.PHONY: install-daemon
install-daemon: daemon/hakmemd
	install -D -m 755 daemon/hakmemd $(DESTDIR)$(PREFIX)/sbin/hakmemd
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's#/usr/local/sbin/hakmemd#$(PREFIX)/sbin/hakmemd#' systemd/hakmemd.service \
		>$(DESTDIR)$(PREFIX)/lib/systemd/system/hakmemd.service
	install -D -m 644 docs/hakmemd.8 $(DESTDIR)$(PREFIX)/share/man/man8/hakmemd.8
	install -D -m 644 docs/hakmemd.md $(DESTDIR)$(PREFIX)/share/doc/hakmem/hakmemd.md
INSTALL_TARGETS += install-daemon

# the judge's statistics, tested alone (tests/t_daemon_noise.c)
tests/bin/t_daemon_noise: tests/t_daemon_noise.c daemon/judge.c daemon/hakd.h | tests/bin
	$(CC) $(TEST_CFLAGS) -Idaemon -o $@ tests/t_daemon_noise.c daemon/judge.c $(TEST_LDLIBS) -lm

# the phase-alternating workload tests/t_daemon_phases.sh drives
tests/bin/daemon_phases: tests/daemon_phases.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -fno-builtin -o $@ $< $(LDLIBS)
TEST_DEPS += tests/bin/daemon_phases
CLEAN += tests/bin/daemon_phases
