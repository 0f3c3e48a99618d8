# daemon/bpf.mk — hakmemd's kernel probe (included by daemon/daemon.mk).
# Sets HAKD_BPF_OBJS / HAKD_BPF_LIBS for the daemon's link:
#  - with clang, bpftool, libbpf headers and the running kernel's BTF:
#    daemon/hakd_bpf.o, built from daemon/bpf/hakmemd.bpf.c through a
#    vmlinux.h dumped from /sys/kernel/btf/vmlinux and a bpftool skeleton;
#  - otherwise (or with `make HAKD_BPF=0`): daemon/hakd_bpf_off.o, whose
#    hakd_bpf_open() says "BPF off: built without libbpf/BTF".
# Either way the daemon builds; whether BPF loads is decided at run time.
# tests/bin/bpf_probe (tests/t_bpf.sh) links the same objects.

HAKD_BPF         ?= auto
HAKD_BPF_CLANG   ?= clang
HAKD_BPFTOOL     := $(firstword $(shell command -v bpftool 2>/dev/null) $(wildcard /usr/sbin/bpftool /sbin/bpftool))
HAKD_BPF_ARCH    := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(patsubst ppc64le,powerpc,$(shell uname -m))))

HAKD_BPF_READY :=
ifneq ($(HAKD_BPF),0)
ifneq ($(and $(HAKD_BPFTOOL),$(shell command -v $(HAKD_BPF_CLANG) 2>/dev/null),$(wildcard /usr/include/bpf/libbpf.h),$(wildcard /sys/kernel/btf/vmlinux)),)
HAKD_BPF_READY := 1
endif
endif

ifeq ($(HAKD_BPF_READY),1)
HAKD_BPF_OBJS := daemon/hakd_bpf.o
HAKD_BPF_LIBS := $(or $(shell pkg-config --libs libbpf 2>/dev/null),-lbpf) -lelf -lz
HAKD_BPF_GEN  := daemon/bpf/vmlinux.h daemon/bpf/hakmemd.bpf.o daemon/bpf/hakmemd.skel.h

# Generated from the kernel this is built on; CO-RE relocates the program
# onto whatever kernel later loads it.
daemon/bpf/vmlinux.h:
	$(HAKD_BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

daemon/bpf/hakmemd.bpf.o: daemon/bpf/hakmemd.bpf.c daemon/bpf/vmlinux.h
	$(HAKD_BPF_CLANG) -target bpf -g -O2 -Wall -D__TARGET_ARCH_$(HAKD_BPF_ARCH) \
		-Idaemon/bpf -c $< -o $@

daemon/bpf/hakmemd.skel.h: daemon/bpf/hakmemd.bpf.o
	$(HAKD_BPFTOOL) gen skeleton $< name hakmemd_bpf > $@.tmp && mv $@.tmp $@

daemon/hakd_bpf.o: daemon/hakd_bpf.c daemon/hakd_bpf.h daemon/bpf/hakmemd.skel.h
	$(CC) $(CFLAGS) -c -o $@ $<

CLEAN += $(HAKD_BPF_GEN)
else
HAKD_BPF_OBJS := daemon/hakd_bpf_off.o
HAKD_BPF_LIBS :=

daemon/hakd_bpf_off.o: daemon/hakd_bpf_off.c daemon/hakd_bpf.h
	$(CC) $(CFLAGS) -c -o $@ $<
endif

tests/bin/bpf_probe: tests/bpf_probe.c daemon/hakd_bpf.h $(HAKD_BPF_OBJS) | tests/bin
	$(CC) $(CFLAGS) -Idaemon -o $@ $< $(HAKD_BPF_OBJS) $(HAKD_BPF_LIBS) $(LDLIBS)

TEST_DEPS += tests/bin/bpf_probe
CLEAN += $(HAKD_BPF_OBJS) tests/bin/bpf_probe
