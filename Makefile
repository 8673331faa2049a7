# xc-colo - build, test, benchmark.
#
#   make            library, CLI, pkg-config file
#   make test       every test (unit, property, fuzz replays, end-to-end)
#   make asan/ubsan the tests again under a sanitizer (build-asan/, build-ubsan/)
#   make fuzz       the libFuzzer targets, FUZZ_SECONDS each
#   make bench      the benchmarks (README's table)
#   make demo       the main job: live migration of a 1 GiB sim guest
#   make xen-test   the Xen backend against a real Xen 4.17 booted in QEMU
#   make install PREFIX=/usr/local, make format
#
# BUILD=dir puts every output under dir (default build/), so several builds
# can live side by side.

BUILD    ?= build
PREFIX   ?= /usr/local
SANITIZE ?=
FUZZ_SECONDS ?= 30
CC       ?= cc
PYTHON   ?= python3

VERSION := $(shell sed -n 's/^\#define XCC_VERSION_STRING "\(.*\)"/\1/p' libxc-colo/include/xccolo.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
override CPPFLAGS += -D_GNU_SOURCE -Ilibxc-colo/include -Ilibxc-colo/src
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) -fPIC -pthread
LDLIBS_LIB := -lxenctrl -lxenforeignmemory -lxenstore -lxenguest -lxentoollog -lxxhash -ljson-c -lzstd -lpthread

ifneq ($(SANITIZE),)
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRCS  := $(sort $(wildcard libxc-colo/src/*.c libxc-colo/src/domain/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/tests/replay_%)
E2E_TESTS := $(sort $(wildcard tests/e2e_*.sh tests/*_test.py))

SOLIB   := $(BUILD)/lib/libxccolo.so.$(VERSION)
LIBS    := $(SOLIB) $(BUILD)/lib/libxccolo.so.$(SOMAJOR) $(BUILD)/lib/libxccolo.so \
           $(BUILD)/lib/libxccolo.a $(BUILD)/lib/pkgconfig/xccolo.pc
CLI     := $(BUILD)/bin/xc-colo
# The sim guest's process, started by the library with posix_spawn; found at
# ../libexec/xc-colo/ beside the library or the program (sim_admin.c).
HELPER  := $(BUILD)/libexec/xc-colo/xcc-sim-guest

.PHONY: all deps test asan ubsan fuzz bench demo xen-test install format \
        clean header-check tests-build bench-readme
.DELETE_ON_ERROR:

all: deps $(LIBS) $(CLI) $(HELPER) header-check

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%.o: %.c $(wildcard libxc-colo/include/*.h libxc-colo/src/*.h libxc-colo/src/domain/*.h tools/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(SOLIB): $(LIB_OBJS) libxc-colo/libxccolo.map
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libxccolo.so.$(SOMAJOR) \
	    -Wl,--version-script=libxc-colo/libxccolo.map -Wl,-z,defs \
	    -o $@ $(LIB_OBJS) $(LDLIBS_LIB)

$(BUILD)/lib/libxccolo.so.$(SOMAJOR) $(BUILD)/lib/libxccolo.so: $(SOLIB)
	ln -sf $(notdir $(SOLIB)) $@

$(BUILD)/lib/libxccolo.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/pkgconfig/xccolo.pc: libxc-colo/xccolo.pc.in libxc-colo/include/xccolo.h
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# The CLI links the shared library, as xl links libxl, and finds it next door.
$(CLI): $(TOOL_OBJS) $(BUILD)/lib/libxccolo.so
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TOOL_OBJS) -L$(BUILD)/lib -lxccolo \
	    -Wl,-rpath,'$$ORIGIN/../lib' -lxentoollog -lxxhash -ljson-c -lsodium -lm \
	    -lxenlight

# Static: the helper runs library internals that the .so does not export.
$(HELPER): libxc-colo/libexec/xcc-sim-guest.c $(BUILD)/lib/libxccolo.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/lib/libxccolo.a \
	    $(LDLIBS_LIB)
$(BUILD)/obj/libxc-colo/src/domain/sim_admin.o: \
    override CPPFLAGS += -DXCC_LIBEXECDIR='"$(PREFIX)/libexec/xc-colo"'

# Each public header must compile on its own.
header-check: $(BUILD)/obj/header-check.o
$(BUILD)/obj/header-check.o: libxc-colo/include/xccolo.h | deps
	@mkdir -p $(dir $@)
	echo '#include "xccolo.h"' | $(CC) $(CPPFLAGS) $(CFLAGS) -x c -c - -o $@

# Tests link the static library so they can reach internal functions.
$(BUILD)/tests/test_%: tests/test_%.c $(BUILD)/lib/libxccolo.a $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/lib/libxccolo.a \
	    -lcriterion $(LDLIBS_LIB) -lm

$(BUILD)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(BUILD)/lib/libxccolo.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay_main.c \
	    $(BUILD)/lib/libxccolo.a $(LDLIBS_LIB)

tests-build: all $(TEST_BINS) $(REPLAY_BINS)

# Every test runs even when an earlier one fails; the summary says which.
test: tests-build
	@XCC_BUILD=$(BUILD) PYTHON=$(PYTHON) sh tests/run-all.sh \
	    "$(TEST_BINS)" "$(FUZZ_NAMES)" "$(E2E_TESTS)"

asan:
	$(MAKE) BUILD=build-asan SANITIZE=address CFLAGS="-O1 -g" test

ubsan:
	$(MAKE) BUILD=build-ubsan SANITIZE=undefined CFLAGS="-O1 -g" test

FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -std=gnu11 $(CPPFLAGS)
fuzz: deps
	@mkdir -p $(BUILD)/fuzz
	@set -e; for t in $(FUZZ_NAMES); do \
	    clang $(FUZZ_CFLAGS) -o $(BUILD)/fuzz/$$t tests/fuzz/fuzz_$$t.c $(LIB_SRCS) \
	        $(LDLIBS_LIB); \
	    mkdir -p $(BUILD)/fuzz/corpus-$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        $(BUILD)/fuzz/corpus-$$t tests/corpus/$$t; \
	done

bench: all
	XCC_BUILD=$(BUILD) sh scripts/bench.sh

# Rewrites README.md's benchmark section from bench-out/ (run make bench first).
bench-readme:
	$(PYTHON) scripts/bench-readme --out bench-out

demo: all
	XCC_BUILD=$(BUILD) sh scripts/demo.sh

xen-test: all
	XCC_BUILD=$(BUILD) sh scripts/xen-vm/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(SOLIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(PREFIX)/lib/libxccolo.so.$(SOMAJOR)
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(PREFIX)/lib/libxccolo.so
	install -m 0644 $(BUILD)/lib/libxccolo.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' libxc-colo/xccolo.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/xccolo.pc
	install -m 0644 libxc-colo/include/xccolo.h $(DESTDIR)$(PREFIX)/include/
	install -m 0755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/libexec/xc-colo
	install -m 0755 $(HELPER) $(DESTDIR)$(PREFIX)/libexec/xc-colo/
	for m in tools/man/*.1; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done; true

format:
	clang-format -i $(LIB_SRCS) $(TOOL_SRCS) libxc-colo/include/*.h \
	    libxc-colo/src/*.h libxc-colo/src/domain/*.h tools/*.h $(TEST_SRCS) $(FUZZ_SRCS)

clean:
	rm -rf build build-asan build-ubsan
