#!/bin/bash
# run.sh -- the end-to-end browser test: start a whole tolk system on
# private loopback ports (as the integration tests' harness does, through
# tools/tolk-stack and supervisord), mint a speaker token, drive the speaker
# and listener pages in headless Chromium (browser.test.mjs), and stop
# everything again, whatever happened. Exit status: 0 when every check
# passed, 1 when one failed, 2 when the system could not be started.
#
# environment (defaults in brackets):
#   BUILD            build directory holding bin/ [build]; relative to the repository
#   E2E_PORT         gateway port [18480]
#   E2E_REDIS_PORT   [18479]
#   E2E_APY_PORT     Apertium APy port [18437]
#   E2E_KEEP=1       keep the system's directory (configs, logs) even after a pass
#   CHROMIUM         the browser [/usr/bin/chromium]
# Any TOLK_* variable set reaches every tolk process as a config override.
set -u

E2E=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$E2E/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in
    /*) BIN=$BUILD/bin ;;
    *) BIN=$TOP/$BUILD/bin ;;
esac
PORT=${E2E_PORT:-18480}
REDIS_PORT=${E2E_REDIS_PORT:-18479}
APY_PORT=${E2E_APY_PORT:-18437}
READY_TIMEOUT_S=30

say() { echo "e2e: $*"; }

for tool in supervisord redis-server node npm curl; do
    command -v "$tool" >/dev/null || { say "FAIL: $tool is not installed"; exit 2; }
done
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { say "FAIL: no Chromium at $CHROMIUM"; exit 2; }
[ -x "$BIN/tolk-gateway" ] || { say "FAIL: no binaries in $BIN (build first)"; exit 2; }

# node modules: exactly the locked versions; never a browser download
if [ ! -d "$E2E/node_modules/playwright-core" ]; then
    say "installing node modules (npm ci)"
    (cd "$E2E" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ||
        { say "FAIL: npm ci in $E2E"; exit 2; }
fi

# refuse to share ports with something already there (another run, make run)
for p in "$PORT" "$REDIS_PORT" "$APY_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        say "FAIL: port $p is in use on 127.0.0.1 (set E2E_PORT, E2E_REDIS_PORT, E2E_APY_PORT)"
        exit 2
    fi
done

# the system's directory, like the harness's tests/tmp/<test>-<pid>
mkdir -p "$TOP/tests/tmp"
DIR=$TOP/tests/tmp/e2e-$$
rm -rf "$DIR"
mkdir -p "$DIR"
SUPERVISORD=0
SUPERVISORD_STARTED=0
NODE=0 # the browser test while it runs (it closes its Chromium when it gets TERM)

# Stop supervisord (it stops its programs: gateways drain, redis, APy) and,
# if it is still there after 20 s, kill it and every program it started.
stop_system() {
    [ "$SUPERVISORD" -gt 0 ] || return 0
    kill -TERM "$SUPERVISORD" 2>/dev/null
    local i=0
    while kill -0 "$SUPERVISORD" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$SUPERVISORD" 2>/dev/null; then
        say "supervisord did not stop within 20 s; killing the system"
        # each program runs in a process group of its own (stopasgroup)
        for child in $(pgrep -P "$SUPERVISORD"); do
            kill -KILL -- "-$child" 2>/dev/null
            kill -KILL "$child" 2>/dev/null
        done
        kill -KILL -- "-$SUPERVISORD" 2>/dev/null
        kill -KILL "$SUPERVISORD" 2>/dev/null
    fi
    wait "$SUPERVISORD" 2>/dev/null
    SUPERVISORD=0
}

# What the harness fails a test for (tests/support/harness.c): sanitizer
# reports, and programs that died of a crash signal. Scanned after the stop,
# when leak reports have been written.
BAD_PATTERNS='ERROR: AddressSanitizer|runtime error:|LeakSanitizer|terminated by SIG(SEGV|ABRT|BUS|FPE|ILL)'
scan_logs() {
    local found=0 f
    for f in "$DIR"/logs/*.log; do
        [ -f "$f" ] || continue
        if grep -qE "$BAD_PATTERNS" "$f"; then
            say "FAIL: sanitizer report or crash in $f:"
            grep -E -A 30 "$BAD_PATTERNS" "$f" | head -n 60
            found=1
        fi
    done
    return $found
}

STATUS=2
finish() {
    trap - EXIT INT TERM
    if [ "$NODE" -gt 0 ]; then
        kill -TERM "$NODE" 2>/dev/null
        wait "$NODE" 2>/dev/null
    fi
    stop_system
    if [ "$SUPERVISORD_STARTED" = 1 ] && ! scan_logs && [ "$STATUS" -eq 0 ]; then
        STATUS=1
    fi
    if [ "$STATUS" -eq 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then
        rm -rf "$DIR"
    else
        say "system directory kept: $DIR"
        say "logs: $DIR/logs/supervisord.log and $DIR/logs/*.log"
    fi
    exit "$STATUS"
}
trap finish EXIT
trap 'STATUS=130; exit' INT
trap 'STATUS=143; exit' TERM

export TOLK_BIN=$BIN TOLK_PORT=$PORT TOLK_REDIS_PORT=$REDIS_PORT TOLK_APY_PORT=$APY_PORT
export TOLK_GATEWAYS=1
unset TOLK_CONFIG
# sanitizer defaults as in tests/run-suites.sh, for a BUILD=build-san run;
# values already in the environment win
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
"$TOP/tools/tolk-stack" "$DIR" >/dev/null || { say "FAIL: tools/tolk-stack $DIR"; exit; }

# supervisord in a session (and process group) of its own, like the harness
setsid supervisord -n -c "$DIR/supervisord.conf" >"$DIR/logs/supervisord-stdout.log" 2>&1 </dev/null &
SUPERVISORD=$!
SUPERVISORD_STARTED=1

# ready: /readyz says so and the gateway sees every worker the stack started
# (tolk-stack's counts: 2 control, 1 status, 1 audio), then APy answers
want() { [ -x "$BIN/tolk-$1-worker" ] && echo "$2" || echo 0; }
WANT_CONTROL=$(want control "${TOLK_CONTROL_WORKERS:-2}")
WANT_STATUS=$(want status "${TOLK_STATUS_WORKERS:-1}")
WANT_AUDIO=$(want audio "${TOLK_AUDIO_WORKERS:-1}")
workers_seen() {
    local body=$1 kind n
    for kind in control:$WANT_CONTROL status:$WANT_STATUS audio:$WANT_AUDIO; do
        n=$(printf '%s' "$body" | sed -n "s/.*\"${kind%%:*}\":\([0-9]*\).*/\1/p")
        [ "${n:-0}" -ge "${kind#*:}" ] || return 1
    done
}
deadline=$((SECONDS + READY_TIMEOUT_S))
body=
until body=$(curl -fsS --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null) &&
    workers_seen "$body"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$SUPERVISORD" 2>/dev/null; then
        say "FAIL: the system did not become ready in ${READY_TIMEOUT_S} s (last /readyz: ${body:-none})"
        tail -n 20 "$DIR"/logs/*.log
        exit
    fi
    sleep 0.1
done
if grep -q '^\[program:apy\]' "$DIR/supervisord.conf"; then
    until curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$APY_PORT/listPairs" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            say "FAIL: APy (port $APY_PORT) not answering"
            exit
        fi
        sleep 0.1
    done
fi
say "system ready on http://127.0.0.1:$PORT (directory $DIR)"

TOKEN=$(TOLK_CONFIG="$DIR/tolk.conf" "$BIN/tolk-token" --sub e2e-speaker --ttl 900 | tail -n 1)
[ -n "$TOKEN" ] || { say "FAIL: tolk-token"; exit; }

# in the background, so a TERM or INT reaches the traps (and the cleanup) at once
E2E_BASE_URL="http://127.0.0.1:$PORT" E2E_TOKEN="$TOKEN" E2E_SYSTEM_DIR="$DIR" \
    CHROMIUM="$CHROMIUM" node "$E2E/browser.test.mjs" &
NODE=$!
wait "$NODE"
STATUS=$?
NODE=0
[ "$STATUS" -le 1 ] || STATUS=1
exit
