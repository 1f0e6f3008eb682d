#!/usr/bin/env bash
# Throughput/latency benchmark: an authenticated device-password request
# (GET /server/api/device/{id}) against the trivial GET /healthz, on one
# throwaway server bound to 127.0.0.1. See bench/README.md.
#
# Environment overrides: DURATION (default 10s), CONNECTIONS (32), THREADS (2).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
# Long enough to fill caches, open pool connections and let the CPU clock up,
# short enough to keep the default run well under two minutes.
WARMUP=2s

die() { echo "bench: $*" >&2; exit 1; }

# Run from the repo root so the script works from any cwd.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/release/latchkey"

[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer"
# wrk refuses more threads than connections; fail early with a clearer message.
(( THREADS <= CONNECTIONS )) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || die "DURATION must look like 10s, 1m or 30"

for tool in curl python3 git; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null; then
    if (( EUID == 0 )) && command -v apt-get >/dev/null; then
        echo "bench: installing wrk" >&2
        apt-get install -y -qq wrk >/dev/null \
            || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
            || die "could not install wrk with apt-get"
    else
        die "wrk is not installed; install it first (Debian/Ubuntu: sudo apt-get install wrk)"
    fi
fi

echo "bench: cargo build --release (latchkey and examples/hello)" >&2
cargo build --release --quiet --bin latchkey --example hello
HELLO="$ROOT/target/release/examples/hello"

# --- server ------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
SERVER_PID=
HELLO_PID=
cleanup() {
    # Runs on success, failure and Ctrl-C alike, so no server or database is left behind.
    for pid in "$SERVER_PID" "$HELLO_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # route signals through the EXIT trap

# Ask the kernel for a free port; the tiny race before the server binds it is
# acceptable for a local benchmark and far simpler than probing a range.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
HELLO_PORT=$(free_port)
HELLO_URL="http://127.0.0.1:$HELLO_PORT/"
"$HELLO" "127.0.0.1:$HELLO_PORT" >/dev/null 2>"$TMP/hello.log" &
HELLO_PID=$!

# stdout carries the first-admin password on an empty database: discard it.
# stderr (the log) is kept so server problems can be reported at the end.
LATCHKEY_LOG=warn "$BIN" --data-dir "$TMP" serve --listen "127.0.0.1:$PORT" \
    >/dev/null 2>"$TMP/server.log" &
SERVER_PID=$!

for _ in $(seq 100); do
    [[ $(curl -s --max-time 1 "$BASE/healthz" || true) == ok ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "server exited during start-up"; }
    sleep 0.1
done
[[ $(curl -s --max-time 1 "$BASE/healthz" || true) == ok ]] || die "server not healthy after 10 s"

# --- account and device ------------------------------------------------------

# Random per run, never printed; the whole database is deleted on exit anyway.
PW=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
printf '%s\n' "$PW" | "$BIN" --data-dir "$TMP" user create \
    --email bench@example.org --permission synchronisation --password-stdin >/dev/null \
    || die "could not create the bench account"

# The JSON body goes through stdin so the password is neither in argv nor
# exposed to shell quoting problems.
CREATED=$(PW="$PW" python3 -c '
import json, os
print(json.dumps({"email": "bench@example.org", "password": os.environ["PW"],
                  "deviceName": "bench", "deviceType": "script"}))' \
    | curl -s -w '\n%{http_code}' -X POST "$BASE/server/api/device" \
        -H 'Content-Type: application/json' --data-binary @-)
STATUS=${CREATED##*$'\n'}
# Only the status is reported on failure: the body may hold a token.
[[ $STATUS == 201 ]] || die "POST /server/api/device answered HTTP $STATUS (expected 201)"
# One line "id token": both are URL-safe, so a space is a safe separator.
read -r DEVICE_ID TOKEN < <(printf '%s' "${CREATED%$'\n'*}" \
    | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["_id"], d["token"])') \
    || die "could not parse the device creation response"
[[ -n $DEVICE_ID && -n $TOKEN ]] || die "device creation response lacked _id or token"
unset PW CREATED

DEVICE_URL="$BASE/server/api/device/$DEVICE_ID"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -u "$DEVICE_ID:$TOKEN" "$DEVICE_URL")
[[ $STATUS == 200 ]] || die "GET /server/api/device/{id} answered HTTP $STATUS (expected 200); not loading"
AUTH_HEADER="Authorization: Basic $(printf '%s:%s' "$DEVICE_ID" "$TOKEN" | base64 -w0)"
unset TOKEN

# --- load --------------------------------------------------------------------

# wrk prints latencies as e.g. 812.00us, 1.23ms, 1.05s, 2.00m.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000;
        else if (u == "m") n *= 60000; else if (u != "ms") { print "NaN"; exit 1 }
        printf "%.3f", n }'
}

# run_wrk NAME URL [wrk args...]: warm up, measure, and set RPS_<NAME>,
# P50_<NAME>, P99_<NAME>, NON2XX_<NAME>, SOCKERR_<NAME>.
# User plus system CPU time a process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)

run_wrk() { # NAME PID URL [wrk options]
    local name=$1 pid=$2 url=$3 out before after; shift 3
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" >/dev/null
    before=$(cpu_ticks "$pid")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    after=$(cpu_ticks "$pid")
    local requests
    requests=$(awk '/requests in/ {print $1; exit}' <<<"$out")
    [[ -n $requests && $requests -gt 0 ]] || { echo "$out" >&2; die "no requests counted for $name"; }
    printf -v "CPU_$name" '%s' "$(awk -v t=$((after - before)) -v hz="$TICKS_PER_SECOND" -v n="$requests" \
        'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
    local rps p50 p99 non2xx sockerr
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '/Latency Distribution/ {d=1} d && $1 == "50%" {print $2; exit}' <<<"$out")
    p99=$(awk '/Latency Distribution/ {d=1} d && $1 == "99%" {print $2; exit}' <<<"$out")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' <<<"$out")
    sockerr=$(awk '/Socket errors:/ {sub(/^ *Socket errors: */, ""); print}' <<<"$out")
    [[ -n $rps && -n $p50 && -n $p99 ]] || { echo "$out" >&2; die "could not parse wrk output for $name"; }
    printf -v "RPS_$name" '%s' "$rps"
    printf -v "P50_$name" '%s' "$(to_ms "$p50")"
    printf -v "P99_$name" '%s' "$(to_ms "$p99")"
    printf -v "NON2XX_$name" '%s' "${non2xx:-0}"
    printf -v "SOCKERR_$name" '%s' "${sockerr:-none}"
}

[[ $(curl -s --max-time 2 "$HELLO_URL" || true) == "Hello, World!" ]] || die "examples/hello does not answer"
echo "bench: loading hello, /healthz, the device route and forward auth (${WARMUP} warm-up + ${DURATION} each)" >&2
run_wrk H "$HELLO_PID" "$HELLO_URL"
# The same headers as forward auth's request, to the hello-world's route that
# answers as forward auth does without checking anything.
run_wrk HF "$HELLO_PID" "${HELLO_URL%/}/forward" -H "$AUTH_HEADER" \
    -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: http" \
    -H "X-Forwarded-Host: api.example.org" -H "X-Forwarded-Uri: /items"
run_wrk A "$SERVER_PID" "$BASE/healthz"
run_wrk B "$SERVER_PID" "$DEVICE_URL" -H "$AUTH_HEADER"
run_wrk F "$SERVER_PID" "$BASE/server/authz/forward-auth" -H "$AUTH_HEADER" \
    -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: http" \
    -H "X-Forwarded-Host: api.example.org" -H "X-Forwarded-Uri: /items"
unset AUTH_HEADER

# --- report ------------------------------------------------------------------

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The tree is often being edited while benchmarking; say so, since the
# binary then is not exactly that commit. bench/ itself does not affect it.
git diff --quiet HEAD -- . ':(exclude)bench' 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"

echo
echo "latchkey bench  commit: $COMMIT  nproc: $(nproc)  $(uname -sr)"
echo "wrk: -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after ${WARMUP} warm-up), 127.0.0.1"
echo
printf '%-36s %11s %8s %8s %12s %8s\n' route 'requests/s' 'p50 ms' 'p99 ms' 'CPU us/req' 'x hello'
row() { # LABEL NAME
    local rps p50 p99 cpu
    rps=RPS_$2 p50=P50_$2 p99=P99_$2 cpu=CPU_$2
    printf '%-36s %11.0f %8.3f %8.3f %12.2f %8.2f\n' "$1" "${!rps}" "${!p50}" "${!p99}" "${!cpu}" \
        "$(awk -v c="${!cpu}" -v h="$CPU_H" 'BEGIN { printf "%.2f", (h > 0 ? c / h : 0) }')"
}
row '(h) bare axum GET /' H
row '(a) GET /healthz' A
row '(b) GET /server/api/device/{id}' B
row '(f) GET /server/authz/forward-auth' F
row '(h+) bare axum GET /forward' HF
awk -v f="$CPU_F" -v h="$CPU_HF" 'BEGIN { printf "(f) against (h+), the same request and answer headers: %.2f\n", (h > 0 ? f / h : 0) }'
echo
echo "server CPU per request: user + system time of the server process over the measured run"
echo "(/proc/<pid>/stat), over the requests wrk counted; wrk itself shares the 2 cores."
awk -v ra="$RPS_A" -v rb="$RPS_B" -v pa="$P99_A" -v pb="$P99_B" 'BEGIN {
    printf "requests/s ratio b/a: %.2f\n", (ra > 0 ? rb / ra : 0)
    printf "p99 ratio a/b:        %.2f\n", (pb > 0 ? pa / pb : 0) }'

STATUS=0
if [[ $NON2XX_B != 0 ]]; then
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! WARNING: (b) got $NON2XX_B non-2xx/3xx responses: its numbers measure"
    echo "!!! error answers, not authenticated requests. Do not trust them."
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    STATUS=2
fi
[[ $NON2XX_F == 0 ]] || { echo "!!! WARNING: (f) got $NON2XX_F non-2xx/3xx responses: do not trust its numbers"; STATUS=2; }
[[ $NON2XX_A == 0 ]] || echo "warning: (a) /healthz got $NON2XX_A non-2xx/3xx responses"
[[ $SOCKERR_A == none ]] || echo "warning: (a) socket errors: $SOCKERR_A"
[[ $SOCKERR_B == none ]] || echo "warning: (b) socket errors: $SOCKERR_B"

# The server logs at warn level, so any line here is worth a look.
if [[ -s $TMP/server.log ]]; then
    echo
    echo "server log ($(wc -l <"$TMP/server.log") warn/error lines, first 10):"
    head -n 10 "$TMP/server.log"
fi
exit "$STATUS"
