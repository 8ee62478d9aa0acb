# tolk -- build, test, run and install.
#
#   make run      install what is missing, build, run everything under supervisord
#   make test     install what is missing, build, run every suite, the browser test, the
#                 fault script's short form, the benchmark's smallest form (so it cannot
#                 break unnoticed), then every suite again under ASan+UBSan
#   make install  PREFIX=/usr/local DESTDIR= (make uninstall takes it away again)
#
VERSION := 0.1.0
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0
LAN     ?= 0
.DEFAULT_GOAL := all

PKGS := libczmq libzmq msgpack hiredis libwebsockets libjwt jansson openssl libcurl pocketsphinx sphinxbase espeak-ng sndfile samplerate speexdsp

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DTOLK_VERSION=\"$(VERSION)\" \
           -Icommon -Igateway -Itests/support $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lm -lpthread

ifeq ($(SAN),1)
BUILD   ?= build-san
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else
BUILD   ?= build
endif

COMMON_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard common/*.c))
LIBTOLK    := $(BUILD)/libtolk.a

# program name -> source directory; a directory joins the build once it has a main.c
PROGRAM_DIRS := gateway:tolk-gateway control_worker:tolk-control-worker \
                status_worker:tolk-status-worker audio_worker:tolk-audio-worker sweeper:tolk-sweeper
define program_rule
ifneq ($(wildcard $(1)/main.c),)
PROGRAMS += $(BUILD)/bin/$(2)
$(BUILD)/bin/$(2): $(patsubst %.c,$(BUILD)/%.o,$(wildcard $(1)/*.c)) $(LIBTOLK)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endif
endef
$(foreach p,$(PROGRAM_DIRS),$(eval $(call program_rule,$(word 1,$(subst :, ,$(p))),$(word 2,$(subst :, ,$(p))))))

TOOLS    := $(patsubst tools/%.c,$(BUILD)/bin/%,$(wildcard tools/tolk-*.c))
PROGRAMS += $(TOOLS)
$(BUILD)/bin/tolk-%: $(BUILD)/tools/tolk-%.o $(LIBTOLK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/support/*.c))
CHECK_LIBS  := $(shell pkg-config --libs check 2>/dev/null)
# program modules unit tested on their own (an archive: a test links only what it uses)
PROGRAM_LIB_OBJ := $(BUILD)/gateway/frame.o $(BUILD)/gateway/audio_check.o $(BUILD)/gateway/static_map.o \
    $(BUILD)/gateway/client_addr.o \
    $(patsubst %.c,$(BUILD)/%.o,$(filter-out audio_worker/main.c,$(wildcard audio_worker/*.c)))
PROGRAM_LIB     := $(BUILD)/libprograms.a
$(PROGRAM_LIB): $(PROGRAM_LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# every fuzz target's saved corpus is replayed by the ordinary suites
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAY_TESTS := $(patsubst %,$(BUILD)/tests/replay_%,$(FUZZ_NAMES))
FUZZ_TIME    ?= 900
FUZZ_RUNS    ?= 10000000
# build-fuzz/fuzz_<name> from tests/fuzz/fuzz_<name>.c, for a shell loop over names
FUZZ_CC = build_one() { clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE \
        -DTOLK_VERSION=\"$(VERSION)\" -Icommon -Igateway $$(pkg-config --cflags $(PKGS)) \
        tests/fuzz/fuzz_$$1.c common/*.c gateway/frame.c gateway/audio_check.c gateway/static_map.c gateway/client_addr.c audio_worker/translator.c audio_worker/whisper.c audio_worker/asr_vosk.c audio_worker/readable.c \
        $$(pkg-config --libs $(PKGS)) -lev -lm -o build-fuzz/fuzz_$$1; }; build_one

# benchmarks and their tools (loadgen, floor): bench/<name>.c -> $(BUILD)/bench/<name>;
# they print figures, never pass or fail on speed
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(SUPPORT_OBJ) $(PROGRAM_LIB) $(LIBTOLK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

.PHONY: all deps deps-test deps-bench run test check check-unit check-integration check-ops install uninstall format clean fuzz fuzz-merge bench e2e faults
all: $(PROGRAMS)

$(BUILD)/%.o: %.c $(wildcard common/*.h) $(wildcard */*.h) $(wildcard tests/support/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBTOLK): $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(PROGRAM_LIB) $(LIBTOLK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)
# test_asr scores words as the integration suites do (tests/support/wer.c)
$(BUILD)/tests/test_asr: $(BUILD)/tests/support/wer.o
# test_chrf checks the benchmark's chrF (tests/support/chrf.c)
$(BUILD)/tests/test_chrf: $(BUILD)/tests/support/chrf.o

$(BUILD)/tests/itest_%: $(BUILD)/tests/integration/itest_%.o $(SUPPORT_OBJ) $(LIBTOLK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/itest_*.c))

$(BUILD)/tests/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(PROGRAM_LIB) $(LIBTOLK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer runs: each target until FUZZ_RUNS executions or FUZZ_TIME
# seconds, memory-capped so an allocation bomb is a finding, 10 s per input
# so a hang is one too; new inputs land in a scratch corpus, findings in
# build-fuzz/artifacts/<name>/, the counts in build-fuzz/summary.txt. A
# target may add libFuzzer flags in a line "/* fuzz-options: ... */".
# make fuzz-merge folds the inputs that add coverage into tests/fuzz/corpus.
fuzz: deps-test
	@mkdir -p build-fuzz && : > build-fuzz/summary.txt
	@for name in $(FUZZ_NAMES); do \
	    mkdir -p build-fuzz/corpus/$$name build-fuzz/artifacts/$$name && \
	    $(FUZZ_CC) $$name && \
	    { build-fuzz/fuzz_$$name -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_TIME) \
	        -malloc_limit_mb=256 -rss_limit_mb=1024 -timeout=10 -max_len=140000 \
	        -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$$name/ \
	        $$(sed -n 's#^/\* fuzz-options: \(.*\) \*/$$#\1#p' tests/fuzz/fuzz_$$name.c) \
	        build-fuzz/corpus/$$name tests/fuzz/corpus/$$name > build-fuzz/$$name.log 2>&1; \
	      rc=$$?; \
	      runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' build-fuzz/$$name.log); \
	      secs=$$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' build-fuzz/$$name.log); \
	      echo "$$name: $${runs:-?} executions in $${secs:-?} s, exit $$rc" | tee -a build-fuzz/summary.txt; \
	      [ $$rc -eq 0 ] || { tail -60 build-fuzz/$$name.log; exit 1; }; }; \
	done

fuzz-merge:
	@for name in $(FUZZ_NAMES); do \
	    $(FUZZ_CC) $$name && \
	    build-fuzz/fuzz_$$name -merge=1 -max_len=140000 tests/fuzz/corpus/$$name \
	        build-fuzz/corpus/$$name 2>&1 | tail -1; \
	done

# the recognition benchmark (quick form), then the load scenarios against
# the floor and the peer (bench/scenarios.py: one table, < 10 minutes);
# BENCH_ARGS="--only 2 --listeners 500 --duration 60" runs one alone, bigger
bench: deps-bench all $(BENCHES)
	@BUILD=$(BUILD) $(BUILD)/bench/asr --quick
	@BUILD=$(BUILD) bench/scenarios.py $(BENCH_ARGS)

# the Debian packages: what make run needs; with the suites' (Chromium,
# clang, nginx, ...); with the benchmarks' (tools/install-deps.sh says which)
deps:
	@tools/install-deps.sh
deps-test:
	@tools/install-deps.sh --test
deps-bench:
	@tools/install-deps.sh --bench

run: deps all
	@BUILD=$(BUILD) LAN=$(LAN) tools/tolk-run

# everything the suites and the benchmark need, in one apt run
test:
	@tools/install-deps.sh --test --bench
	$(MAKE) check
	$(MAKE) e2e
	$(MAKE) faults FAULT_ARGS=--quick
	$(MAKE) bench BENCH_ARGS=--quick
	$(MAKE) SAN=1 check

# kill and stop tolk's processes under load and check that it heals
# (tests/faults/README.md); make test runs the short form
faults: deps-test all $(BUILD)/bench/loadgen
	@BUILD=$(BUILD) tests/faults/run.py $(FAULT_ARGS)

# the pages in headless Chromium against a whole system; screenshots land
# in tests/e2e/artifacts/ (kept by CI)
e2e: deps-test all
	@BUILD=$(BUILD) tests/e2e/run.sh

# operators' suites: shell scripts that make install into a scratch
# DESTDIR (the tree, uninstall, systemd-analyze verify on the units)
OPS_TESTS := $(wildcard tests/ops/test_*.sh)

# build and run every suite with the current flags (after installing the
# test packages that are missing)
check: deps-test all $(UNIT_TESTS) $(REPLAY_TESTS) $(INTEG_TESTS)
	@BUILD=$(BUILD) tests/run-suites.sh $(UNIT_TESTS) $(REPLAY_TESTS) $(INTEG_TESTS) $(OPS_TESTS)

# the operators' suites alone
check-ops: all
	@BUILD=$(BUILD) tests/run-suites.sh $(OPS_TESTS)

# installed layout; a package build sets PREFIX=/usr (config in /etc)
bindir     ?= $(PREFIX)/bin
datadir    ?= $(PREFIX)/share
unitdir    ?= $(PREFIX)/lib/systemd/system
ifeq ($(PREFIX),/usr)
sysconfdir ?= /etc
else
sysconfdir ?= $(PREFIX)/etc
endif
UNITS       := $(wildcard deploy/systemd/*.service deploy/systemd/*.target)
DEPLOY_REFS := $(filter-out deploy/systemd,$(wildcard deploy/*))
WEB_FILES   := $(shell cd web && find . -type f | sort)
# the config and units as installed: web_root, ExecStart and TOLK_CONFIG
# point into this PREFIX (remade on every install: PREFIX may change)
INSTALL_CONF = sed 's|^web_root *=.*|web_root = $(datadir)/tolk/web|' deploy/tolk.conf
INSTALL_UNIT = sed -e 's|@bindir@|$(bindir)|g' -e 's|@sysconfdir@|$(sysconfdir)|g'
CONF_DIR     = $(DESTDIR)$(sysconfdir)/tolk

# the programs, the web root, the units, the reference configs, and
# tolk.conf unless one is there already (then tolk.conf.new beside it);
# the config holds jwt_secret: mode 640, group tolk when that group exists
install: all
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(datadir)/tolk/web $(DESTDIR)$(datadir)/tolk/deploy \
	    $(DESTDIR)$(unitdir) $(CONF_DIR)
	install -m 755 $(PROGRAMS) $(DESTDIR)$(bindir)/
	cp -r web/. $(DESTDIR)$(datadir)/tolk/web/
	install -m 644 $(DEPLOY_REFS) $(DESTDIR)$(datadir)/tolk/deploy/
	@for u in $(UNITS); do \
	    echo "install $$u -> $(DESTDIR)$(unitdir)/$${u##*/}"; \
	    $(INSTALL_UNIT) $$u > $(DESTDIR)$(unitdir)/$${u##*/} && chmod 644 $(DESTDIR)$(unitdir)/$${u##*/} || exit 1; \
	done
	@$(INSTALL_CONF) > $(BUILD)/tolk.conf.install
	@if [ -e $(CONF_DIR)/tolk.conf ] && ! cmp -s $(BUILD)/tolk.conf.install $(CONF_DIR)/tolk.conf; then \
	    dest=$(CONF_DIR)/tolk.conf.new; \
	    echo "tolk: $(CONF_DIR)/tolk.conf exists and is kept; the new one is $$dest"; \
	else dest=$(CONF_DIR)/tolk.conf; fi; \
	install -m 640 $(BUILD)/tolk.conf.install $$dest && \
	if getent group tolk >/dev/null 2>&1; then chgrp tolk $$dest || true; fi

# removes what install put; a tolk.conf that differs from the installed one
# (edited by the operator) is kept, and so is the directory holding it
uninstall:
	rm -f $(addprefix $(DESTDIR)$(bindir)/,$(notdir $(PROGRAMS)))
	rm -f $(addprefix $(DESTDIR)$(unitdir)/,$(notdir $(UNITS)))
	rm -f $(addprefix $(DESTDIR)$(datadir)/tolk/deploy/,$(notdir $(DEPLOY_REFS)))
	rm -f $(addprefix $(DESTDIR)$(datadir)/tolk/web/,$(WEB_FILES))
	-find $(DESTDIR)$(datadir)/tolk -depth -type d -empty -delete 2>/dev/null
	@mkdir -p $(BUILD) && $(INSTALL_CONF) > $(BUILD)/tolk.conf.install
	@for f in $(CONF_DIR)/tolk.conf $(CONF_DIR)/tolk.conf.new; do \
	    if [ -e $$f ]; then \
	        if cmp -s $(BUILD)/tolk.conf.install $$f; then rm -f $$f && echo "rm -f $$f"; \
	        else echo "tolk: $$f was changed and is kept"; fi; \
	    fi; \
	done
	-@rmdir $(CONF_DIR) 2>/dev/null

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz
