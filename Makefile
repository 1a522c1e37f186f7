# lbd - top-level build. `make help` lists the targets.
O        ?= $(if $(filter 1,$(SAN)),build-san,build)
V        ?= 0
SAN      ?= 0
ARCH     := $(shell uname -m)
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

DEPFLAGS  = -MMD -MP
WARN      = -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(WARN) -Ibpf -Iuserspace -I$(O)/bpf \
            $(shell pkg-config --cflags libnl-3.0 libnl-route-3.0 2>/dev/null)
LDLIBS   += -lbpf -lelf -lz -lnl-route-3 -lnl-3 -lsystemd -lcap -lacl -lm
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif
BPF_CFLAGS = -g -O2 -target bpf -D__TARGET_ARCH_x86 $(WARN) -Wno-unused-function \
             -Ibpf -I/usr/include/$(ARCH)-linux-gnu

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS  := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.skel.h,$(BPF_SRCS))

LIB_SRCS   := $(filter-out userspace/lbd.c,$(wildcard userspace/*.c))
LIB_OBJS   := $(patsubst %.c,$(O)/obj/%.o,$(LIB_SRCS))
LIBLBD     := $(O)/liblbd.a

LBD        := $(if $(wildcard userspace/lbd.c),$(O)/lbd)
LBCTL_SRCS := $(wildcard tools/lbctl/*.c)
LBCTL      := $(if $(LBCTL_SRCS),$(O)/lbctl)
# lbctl top draws with ncurses and reads lbd's status JSON with jansson.
LBCTL_LIBS := $(shell pkg-config --libs ncursesw jansson 2>/dev/null || echo -lncursesw -ltinfo -ljansson)
TOOL_SRCS  := $(wildcard tools/*.c)
TOOLS      := $(patsubst tools/%.c,$(O)/tools/%,$(TOOL_SRCS))
EX_SRCS    := $(wildcard examples/*.c)
EXAMPLES   := $(patsubst examples/%.c,$(O)/examples/%,$(EX_SRCS))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(patsubst %.c,$(O)/%,$(UNIT_SRCS))
BPFT_SRCS  := $(wildcard tests/bpf/test_*.c)
BPFT_LIB   := $(patsubst %.c,$(O)/obj/%.o,$(filter-out $(BPFT_SRCS),$(wildcard tests/bpf/*.c)))
BPF_TESTS  := $(patsubst %.c,$(O)/%,$(BPFT_SRCS))

# Fuzz targets (tests/fuzz/fuzz_NAME.c): linked with replay.c into
# $(O)/tests/fuzz/replay_NAME, which `make test` runs over the corpus
# tests/fuzz/NAME/; `make fuzz` links them with libFuzzer under $(FUZZ_O).
FUZZ_O       ?= $(O)-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_COMMON  := $(O)/obj/tests/fuzz/common.o
FUZZ_REPLAYS := $(patsubst %,$(O)/tests/fuzz/replay_%,$(FUZZ_NAMES))
FUZZ_BINS    := $(patsubst %,$(O)/fuzz_%,$(FUZZ_NAMES))
# What a target links besides liblbd.
FUZZ_DEPS_lbctl := $(patsubst %.c,$(O)/obj/%.o,$(filter-out tools/lbctl/main.c,$(LBCTL_SRCS)))
FUZZ_LIBS_lbctl := $(LBCTL_LIBS)
FUZZ_DEPS_bpf   := $(BPFT_LIB)
FUZZ_LIBS_bpf   := -lcmocka
ifeq ($(FUZZ),1)
CFLAGS   += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

BINS := $(LBD) $(LBCTL) $(TOOLS) $(EXAMPLES)

.PHONY: all test bench demo deps clean help check-root install
.PHONY: fuzz fuzz-bins
.PHONY: vm vm-smoke vm-test vm-bench
all: $(BPF_OBJS) $(BINS) $(UNIT_TESTS) $(BPF_TESTS) $(FUZZ_REPLAYS)

help:
	@echo "make            build everything into $(O)/ (O=dir, V=1 for commands, SAN=1 for ASan/UBSan)"
	@echo "make deps       install the Debian packages lbd needs (only what is missing)"
	@echo "make demo       run the demo: namespaces, backends, lbd, real traffic (root)"
	@echo "make test       unit tests; as root also BPF and network tests"
	@echo "make fuzz       each fuzz target for FUZZ_SECONDS (60) s (FUZZ_TARGETS=config,...; root for bpf)"
	@echo "make bench      benchmark suite, bench-results/latest/REPORT.md (QUICK=1: about 2 minutes)"
	@echo "make clean      remove $(O)/"
	@echo "make install    lbd, lbctl, man pages, unit, completion, config (DESTDIR=, PREFIX=/usr/local)"
	@echo "make vm         build the QEMU lab under $(O)/vm (KERNEL_PKG=linux-image-..., KERNEL=bzImage)"
	@echo "make vm-smoke   boot the lab: BPF objects load, one request through a VIP"
	@echo "make vm-test    run the test suites inside the lab (VM_TESTS=unit,bpf,net)"
	@echo "make vm-bench   three VMs: lbd (native XDP on virtio_net) against IPVS; the bench suite in a VM"

deps:
	@tools/deps.sh

$(O)/bpf/%.bpf.o: bpf/%.bpf.c
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .bpf,,$(basename $(notdir $<))) > $@.tmp && mv $@.tmp $@

# Userspace objects may include skeletons: build those first.
$(O)/obj/%.o: %.c | $(BPF_SKELS)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# The stats page is built into the object with .incbin (userspace/webui.c).
$(O)/obj/userspace/webui.o: userspace/webui.html

$(LIBLBD): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/lbd: $(O)/obj/userspace/lbd.o $(LIBLBD)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/lbctl: $(patsubst %.c,$(O)/obj/%.o,$(LBCTL_SRCS)) $(LIBLBD)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(LBCTL_LIBS) -o $@

$(O)/tools/%: $(O)/obj/tools/%.o $(LIBLBD)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/examples/%: $(O)/obj/examples/%.o
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@

$(O)/tests/unit/%: $(O)/obj/tests/unit/%.o $(LIBLBD)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(O)/tests/bpf/%: $(O)/obj/tests/bpf/%.o $(BPFT_LIB) $(LIBLBD)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

# What the Debian package ships (debian/rules runs this with PREFIX=/usr).
# The BPF objects are built into lbd (skeletons); the copies under
# $(LIBDIR)/lbd are for inspection (bpftool, llvm-objdump) only.
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
LIBDIR  ?= $(PREFIX)/lib
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib,$(PREFIX)/lib)/systemd/system
COMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)

install: $(LBD) $(LBCTL) $(BPF_OBJS)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 -t $(DESTDIR)$(SBINDIR) $(LBD) $(LBCTL)
	$(Q)install -D -m 0644 -t $(DESTDIR)$(LIBDIR)/lbd $(filter-out %/bench_tx.bpf.o,$(BPF_OBJS))
	$(Q)install -D -m 0644 -t $(DESTDIR)$(MANDIR)/man8 tools/lbd.8 tools/lbctl.8
	$(Q)install -D -m 0644 -t $(DESTDIR)$(MANDIR)/man5 tools/lbd.conf.5
	$(Q)install -D -m 0644 tools/lbctl.bash-completion $(DESTDIR)$(COMPDIR)/lbctl
	$(Q)install -d $(DESTDIR)$(UNITDIR)
	$(Q)sed '1,/^\[Unit\]/{/^#/d}; s|/usr/local/sbin/|$(SBINDIR)/|g; s|/etc/lbd/|$(SYSCONFDIR)/lbd/|g' \
		examples/lbd.service >$(DESTDIR)$(UNITDIR)/lbd.service
	$(Q)install -D -m 0644 examples/lbd.conf $(DESTDIR)$(SYSCONFDIR)/lbd/lbd.conf

.SECONDEXPANSION:
$(O)/tests/fuzz/replay_%: $(O)/obj/tests/fuzz/fuzz_%.o $(O)/obj/tests/fuzz/replay.o \
			  $(FUZZ_COMMON) $$(FUZZ_DEPS_$$*) $(LIBLBD)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(FUZZ_LIBS_$*) -o $@

$(O)/fuzz_%: $(O)/obj/tests/fuzz/fuzz_%.o $(FUZZ_COMMON) $$(FUZZ_DEPS_$$*) $(LIBLBD)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer $^ $(LDLIBS) $(FUZZ_LIBS_$*) -o $@

fuzz-bins: $(FUZZ_BINS)

# The README's two commands install what they need themselves.
test:
	@tools/deps.sh
	@$(MAKE) --no-print-directory all
	@O=$(O) tests/run.sh

# libFuzzer needs clang's runtime: the whole tree is built again with clang
# and the sanitizers under $(FUZZ_O).
fuzz:
	@tools/deps.sh
	@$(MAKE) --no-print-directory O=$(FUZZ_O) CC=$(CLANG) FUZZ=1 fuzz-bins
	@FUZZ_O=$(FUZZ_O) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS=$(FUZZ_TARGETS) tests/fuzz/run.sh

bench:
	@tools/deps.sh
	@$(MAKE) --no-print-directory all
	@O=$(O) QUICK=$(QUICK) tools/bench/run.sh

demo:
	@tools/deps.sh
	@$(MAKE) --no-print-directory all
	@O=$(O) examples/demo.sh

# The QEMU kernel lab (vm/README.md): the lab's initramfs carries this build.
vm:
	@tools/deps.sh
	@$(MAKE) --no-print-directory all
	@O=$(O) vm/build.sh

vm-smoke: vm
	@O=$(O) vm/run.sh smoke

# lbd needs 10 to 40 s to answer under TCG (the verifier, emulated): the
# suites' lbd_start gets 180 s in the guest.
vm-test: vm
	@O=$(O) vm/run.sh test lab.LBD_START_WAIT=180 $(if $(VM_TESTS),lab.TESTS=$(VM_TESTS)) $(if $(FILTER),lab.FILTER=$(FILTER))

# Three VMs (lbd against IPVS over multi-queue virtio-net), then a quick
# subset of tools/bench/run.sh inside one VM; VM_BENCH=multi or suite for one.
# Each is bounded (12 and 15 min); under TCG they take about 7 and 6.
VM_BENCH ?= multi,suite
vm-bench: vm
	@case ,$(VM_BENCH), in *,multi,*) O=$(O) VM_RESULTS=bench-results vm/run.sh multi ;; esac
	@case ,$(VM_BENCH), in *,suite,*) O=$(O) VM_RESULTS=bench-results VM_TIMEOUT=900 vm/run.sh bench \
		lab.QUICK=1 lab.BENCH_ONLY=e2e,maglev lab.LBD_START_WAIT=180 ;; esac

clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)

.SECONDARY:
# $(O)/pkg holds the package test's chroot: none of its files are ours.
-include $(shell find $(O) -path $(O)/pkg -prune -o -name '*.d' -type f -print 2>/dev/null)
