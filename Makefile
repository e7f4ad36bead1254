# SAV build. `make` builds everything into build/; `make run` and `make test`
# are the two commands of the README. SAN=1 builds into build/asan/ with
# AddressSanitizer and UndefinedBehaviorSanitizer; FUZZ=1 builds common/ and
# the libFuzzer targets of tests/fuzz/ into build/fuzz/ with clang.

SAV_VERSION := 0.1.0
CHAOS_SECONDS ?= 300
CC ?= cc
PKGS := libzmq libprotobuf-c hiredis jansson libcurl libmicrohttpd zlib

ifeq ($(FUZZ),1)
BUILD ?= build/fuzz
CC := clang
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else ifeq ($(SAN),1)
BUILD ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else
BUILD ?= build
SANFLAGS :=
OPT := -O2 -g
endif

GEN := $(BUILD)/gen
OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS_ALL = -std=gnu11 $(OPT) $(WARN) $(SANFLAGS) -DSAV_VERSION='"$(SAV_VERSION)"' \
             -I$(GEN) -Icommon $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LDLIBS_ALL = $(SANFLAGS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread $(LDFLAGS)

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o) $(OBJ)/gen/sav.pb-c.o $(OBJ)/gen/functions_lua.o \
              $(OBJ)/gen/pack_dict_1.o
SERVICES := intake diagnostics billing notification
SERVICE_BINS := $(SERVICES:%=$(BIN)/sav-%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BIN)/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BIN)/%)
FUZZ_SECONDS ?= 60

.PHONY: all deps run run-ha test unit-test system-test bench chaos chaos-ha fuzz fuzz-bins clean
.DELETE_ON_ERROR:
.SECONDARY:

all: $(SERVICE_BINS) $(BIN)/savctl $(BIN)/sav-bench $(UNIT_BINS)

deps:
	@tools/deps.sh

$(GEN)/sav.pb-c.c $(GEN)/sav.pb-c.h: proto/sav.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) proto/sav.proto

# The Functions library is compiled into every binary that loads it.
$(GEN)/functions_lua.c: common/redis/sav.lua tools/embed.sh
	@mkdir -p $(GEN)
	tools/embed.sh store_functions_lua $< > $@

# The preset dictionaries of packed tickets (common/pack.h): a dictionary's text never changes once released.
$(GEN)/pack_dict_%.c: common/pack/dict-%.txt tools/embed.sh
	@mkdir -p $(GEN)
	tools/embed.sh pack_dict_$* $< > $@

$(OBJ)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -Wno-shadow -c $< -o $@

$(OBJ)/%.o: %.c $(GEN)/sav.pb-c.h
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/lib/libsav.a: $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN)/sav-%: $(patsubst %.c,$(OBJ)/%.o,$(wildcard services/*/*.c)) $(BUILD)/lib/libsav.a
	@mkdir -p $(BIN)
	$(CC) -o $@ $(patsubst %.c,$(OBJ)/%.o,$(wildcard services/$*/*.c)) $(BUILD)/lib/libsav.a $(LDLIBS_ALL)

$(BIN)/savctl: $(patsubst %.c,$(OBJ)/%.o,$(wildcard tools/savctl/*.c)) $(BUILD)/lib/libsav.a
	@mkdir -p $(BIN)
	$(CC) -o $@ $(filter %.o,$^) $(BUILD)/lib/libsav.a $(LDLIBS_ALL)

$(BIN)/sav-bench: $(patsubst %.c,$(OBJ)/%.o,$(wildcard tools/bench/*.c)) $(BUILD)/lib/libsav.a
	@mkdir -p $(BIN)
	$(CC) -o $@ $(filter %.o,$^) $(BUILD)/lib/libsav.a $(LDLIBS_ALL)

$(BIN)/test_%: $(OBJ)/tests/unit/test_%.o $(BUILD)/lib/libsav.a
	@mkdir -p $(BIN)
	$(CC) -o $@ $< $(BUILD)/lib/libsav.a $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)

# Only with FUZZ=1: the objects must carry the fuzzer's coverage instrumentation.
fuzz-bins: $(FUZZ_BINS)

$(BIN)/fuzz_%: $(OBJ)/tests/fuzz/fuzz_%.o $(BUILD)/lib/libsav.a
	@mkdir -p $(BIN)
	$(CC) -fsanitize=fuzzer -o $@ $< $(BUILD)/lib/libsav.a $(LDLIBS_ALL)

run: deps all
	@deploy/local/run.sh

# The HA stack locally: a Redis master, two replicas, three sentinels, two instances of every service.
run-ha: deps all
	@deploy/local/run.sh --ha

unit-test: all
	@tests/run-unit.sh $(BIN)

system-test: all
	@/usr/bin/python3 tests/system/run.py --bin $(BIN)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins
	@tests/run-all.sh

# Measures throughput and latency (tools/bench/bench.py); BENCH_ARGS="--count 20000" for a shorter run.
bench: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tools/bench/bench.py --bin $(BIN) $(BENCH_ARGS)

# Complete lifecycles under load while processes are SIGKILLed (tests/system/chaos_tests.py), on the sanitizer
# build as in make test; prints the summary line, non-zero exit when an invariant fails.
chaos: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87} \
	SAV_CHAOS_SECONDS=$(CHAOS_SECONDS) /usr/bin/python3 tests/system/chaos_tests.py --bin build/asan/bin

# The same on the HA stack (tests/system/ha_tests.py ha_chaos): two instances of every service, Redis behind
# Sentinel; each instance and the Redis master are killed in turn.
chaos-ha: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87} \
	SAV_HA_CHAOS_SECONDS=$(CHAOS_SECONDS) /usr/bin/python3 tests/system/ha_tests.py --bin build/asan/bin --only ha_chaos

fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh build/fuzz/bin

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
