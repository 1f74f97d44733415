# Veltrix — GNU Makefile.
#   make                 optimised build        -> build/release/veltrix
#   make debug           -O0 -g                 -> build/debug/veltrix
#   make SANITIZE=1      ASan + UBSan           -> build/asan/veltrix
#   make test            installs deps, builds under ASan+UBSan, runs every test, then a short fuzz run
#   make soak            the del-server soak, long form (VX_SOAK_SECONDS, default 300; `make test`
#                        runs its 20 s form); SANITIZE=1 for the ASan build
#   make fuzz            libFuzzer targets (clang)  -> build/fuzz/
#   make bench           benchmarks (see docs/benchmarks.md)
#   make install PREFIX=/usr/local DESTDIR=
#   make clean
# BUILD=dir overrides the build directory (handy for parallel work trees).

.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:
SHELL := /bin/sh

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif

ifeq ($(SANITIZE),1)
VARIANT := asan
else ifeq ($(DEBUG),1)
VARIANT := debug
else
VARIANT := release
endif
BUILD ?= build/$(VARIANT)

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || cat VERSION)
# The objects that print the version are rebuilt when it changes (a benchmark names the commit
# its binary was built at: it must not be an older one).
VERSION_STAMP := $(BUILD)/version
$(shell mkdir -p $(BUILD) && [ "$$(cat $(VERSION_STAMP) 2>/dev/null)" = "$(VERSION)" ] || echo "$(VERSION)" > $(VERSION_STAMP))

# libcurl is not linked into libveltrix or the binary: the etcd client dlopens it for https
# endpoints only (src/registry/etcd_curl.h), so its headers are needed, not its library. Test
# programs use libcurl directly (tests/support/fx.c) and link it.
PKGS       := jansson libfyaml
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lm -lpthread
CURL_LIBS  := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
TEST_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka) $(CURL_LIBS)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wold-style-definition -Wpointer-arith -Wcast-qual -Wvla -Wnull-dereference \
        -Wimplicit-fallthrough -Wundef -Wwrite-strings
CPPFLAGS += -D_GNU_SOURCE -Isrc -Itests/support -DVX_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -MMD -MP
CFLAGS_release := -O2 -g
CFLAGS_debug   := -O0 -g3
CFLAGS_asan    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS  += -std=c11 $(WARN) $(CFLAGS_$(VARIANT))
LDFLAGS += $(filter -fsanitize=%,$(CFLAGS_$(VARIANT)))

MODULES  := common config registry haproxy agent controller load scenario
LIB_SRC  := $(sort $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
SUP_SRC  := $(sort $(wildcard tests/support/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
INT_SRC  := $(sort $(wildcard tests/integration/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

# V=1 shows full commands.
ifeq ($(V),1)
Q :=
say := @true
else
Q := @
say = @printf '  %-6s %s\n'
endif

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB      := $(BUILD)/libveltrix.a
BIN      := $(BUILD)/veltrix
SUP_OBJ  := $(call obj,$(SUP_SRC))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
INT_BIN  := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INT_SRC))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all debug test tests soak fuzz fuzz-run bench install clean deps demo
all: $(BIN)

debug:
	@$(MAKE) --no-print-directory DEBUG=1

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/src/cli/main.o $(BUILD)/obj/bench/bench_fleet.o $(BUILD)/obj/tests/support/fx_fleet.o: $(VERSION_STAMP)

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(@D)
	$(say) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BIN): $(call obj,$(CLI_SRC)) $(LIB)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(SUP_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) $^ $(TEST_LIBS) $(PKG_LIBS) -o $@
$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(SUP_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) $^ $(TEST_LIBS) $(PKG_LIBS) -o $@

# Bench programs may drive etcd with libcurl directly (an independent client, as an anchor), and
# may use the test fixtures (tests/support: etcd clusters, the fleet), hence cmocka.
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(SUP_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) $^ $(TEST_LIBS) $(PKG_LIBS) -o $@

tests: $(BIN) $(UNIT_BIN) $(INT_BIN)

# The test command: dependencies, a sanitized build, every test, a bounded fuzz run.
test: deps
	@$(MAKE) --no-print-directory SANITIZE=1 BUILD=$(if $(filter command line,$(origin BUILD)),$(BUILD),build/asan) tests
	@scripts/run-tests.sh $(if $(filter command line,$(origin BUILD)),$(BUILD),build/asan)

# HAProxy 2.6.12 `del server` churn under load for VX_SOAK_SECONDS (docs/haproxy.md); the
# figures are the "# soak:" line of the test's log.
SOAK_TEST := $(BUILD)/tests/integration/test_del_server_soak
soak: deps $(BIN) $(SOAK_TEST)
	@s=$${VX_SOAK_SECONDS:-300}; VX_SOAK_SECONDS=$$s TEST_TIMEOUT=$$((s + 300)) \
	    scripts/run-tests.sh $(BUILD) test_del_server_soak; rc=$$?; \
	    grep '^# soak' $(BUILD)/test-logs/test_del_server_soak.log; exit $$rc

deps: build/.deps-installed
build/.deps-installed: scripts/install-deps.sh
	@scripts/install-deps.sh
	@mkdir -p $(@D) && touch $@

# libFuzzer targets: the library rebuilt with clang and the fuzzer instrumentation.
FUZZ_BUILD := build/fuzz
fuzz:
	@$(MAKE) --no-print-directory fuzz-targets CC=clang BUILD=$(FUZZ_BUILD) \
	    CFLAGS_release='-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer'
fuzz-targets: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer $(filter %.c %.a,$^) $(PKG_LIBS) -o $@
fuzz-run:
	@scripts/run-fuzz.sh $${FUZZ_SECONDS:-10}

bench: deps $(BIN) $(BENCH_BIN)
	@scripts/run-bench.sh $(BUILD)

demo: deps $(BIN)
	$(BIN) demo

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/veltrix
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/veltrix
	install -m 644 README.md docs/*.md examples/veltrix.yaml $(DESTDIR)$(PREFIX)/share/doc/veltrix/

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
