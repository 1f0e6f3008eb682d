#!/usr/bin/env bash
# The several-nodes benchmark (issue 4), in one run, on 127.0.0.1 only:
#   1. (a) GET /healthz vs (b) GET /server/api/device/{id}, SQLite and PostgreSQL;
#   2. (b) over many devices with 1,000 / 100,000 / 1,000,000 devices in the
#      database (seeded through the store by examples/seed.rs), with the
#      server's resident memory and the memory per cached credential;
#   3. (b) while 64 connections guess main passwords (POST /server/api/device);
#   4. two nodes on one PostgreSQL: revocation-to-refusal latency over 200
#      revocations (examples/revocation_latency.rs).
# See bench/README.md. Environment: DURATION (10s), SIZES ("1000 100000 1000000"),
# BACKENDS ("sqlite postgres"), PIN (0; 1 runs the server on CPU 0 and wrk on CPU 1),
# POSTGRES_URL (postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

DURATION=${DURATION:-10s}
SIZES=${SIZES:-"1000 100000 1000000"}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PIN=${PIN:-0}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CONNECTIONS=32
WARMUP=2s

die() { echo "bench: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/release/latchkey"
EXAMPLES="$ROOT/target/release/examples"

for tool in curl python3 wrk psql; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install wrk postgresql-client curl python3)"
done
echo "bench: cargo build --release --bins --examples" >&2
cargo build --release --quiet --bins --examples

TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-multi.XXXXXX")
chmod 700 "$TMP"
PIDS=()
DATABASES=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for db in "${DATABASES[@]}"; do
        psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (( PIN )); then SERVER_CPU=(taskset -c 0); WRK_CPU=(taskset -c 1); else SERVER_CPU=(); WRK_CPU=(); fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# new_database BACKEND NAME: sets URL to a fresh, empty database. (Not run
# in a subshell, so the cleanup list keeps the name.)
new_database() {
    local name="latchkey_bench_$2_$$"
    if [[ $1 == sqlite ]]; then
        URL="sqlite://$TMP/$name.db"
    else
        DATABASES+=("$name")
        psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1
        URL="${POSTGRES_URL%/*}/$name"
    fi
}

# start_server URL: starts a node, sets SERVER_PID and BASE.
start_server() {
    local port; port=$(free_port)
    LATCHKEY_LOG=warn "${SERVER_CPU[@]}" "$BIN" --database-url "$1" serve \
        --listen "127.0.0.1:$port" --cache-capacity 2000000 >/dev/null 2>>"$TMP/server.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    BASE="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        [[ $(curl -s --max-time 1 "$BASE/healthz" || true) == ok ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "server exited"; }
        sleep 0.1
    done
    die "server not healthy after 10 s"
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# wrk scripts: many devices (rotating Authorization headers read from a
# file), and main-password guesses that count their answers.
cat >"$TMP/many.lua" <<'LUA'
local creds, i = {}, 0
for line in io.lines(os.getenv("CREDS")) do
    local path, auth = line:match("^(%S+) (.+)$")
    creds[#creds + 1] = wrk.format("GET", path, { ["Authorization"] = auth })
end
i = math.random(#creds)
request = function() i = i % #creds + 1; return creds[i] end
LUA
cat >"$TMP/storm.lua" <<'LUA'
-- Globals, so done() can collect them from every thread.
threads, counts, n = {}, {}, 0
setup = function(thread) table.insert(threads, thread) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    n = n + 1
    local email = os.getenv("SPREAD") == "1" and ("guess" .. n .. "@example.org") or "bench@example.org"
    return wrk.format(nil, nil, nil,
        '{"email":"' .. email .. '","password":"wrong guess","deviceName":"x"}')
end
response = function(status) counts[status] = (counts[status] or 0) + 1 end
done = function()
    local out = io.open(os.getenv("COUNTS"), "w")
    for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("counts")) do out:write(status, "x", count, "\n") end
    end
    out:close()
end
LUA

to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# load NAME URL [wrk args]: sets RPS, P50, P99 (ms) for NAME; fails on errors.
load() {
    local name=$1 url=$2 out; shift 2
    "${WRK_CPU[@]}" wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" >/dev/null
    out=$("${WRK_CPU[@]}" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; die "$name: error answers under load"; fi
    printf -v "RPS_$name" '%s' "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    printf -v "P50_$name" '%s' "$(to_ms "$(awk '/Latency Distribution/ {d=1} d && $1 == "50%" {print $2; exit}' <<<"$out")")"
    printf -v "P99_$name" '%s' "$(to_ms "$(awk '/Latency Distribution/ {d=1} d && $1 == "99%" {print $2; exit}' <<<"$out")")"
}

# seed URL DEVICES: devices through the store; known credentials to $TMP/creds.
seed() {
    local known=$(( $2 < 100000 ? $2 : 100000 ))
    "$EXAMPLES/seed" "$1" "$2" "$TMP/creds.raw" "$known"
    python3 - "$TMP/creds.raw" "$TMP/creds" <<'PY'
import base64, os, sys
src, dst = sys.argv[1], sys.argv[2]
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with open(src) as lines, os.fdopen(fd, "w") as out:
    for line in lines:
        device, token = line.split()
        auth = base64.b64encode(f"{device}:{token}".encode()).decode()
        out.write(f"/server/api/device/{device} Basic {auth}\n")
PY
    head -n 1 "$TMP/creds" >"$TMP/one"
}

REPORT="$TMP/report"
row() { printf '%-10s %-44s %10s %9s %9s %s\n' "$@" | tee -a "$REPORT" >&2; }
row backend measurement 'req/s' 'p50 ms' 'p99 ms' note

for backend in $BACKENDS; do
    for size in $SIZES; do
        new_database "$backend" "$size"; url=$URL
        echo "bench: $backend, seeding $size devices" >&2
        seed "$url" "$size"
        start_server "$url"
        rss_start=$(rss_mib "$SERVER_PID")
        # Cache every known credential (up to 100,000) once, for the memory
        # per entry; then let the last-use data of all of them be written.
        CREDS="$TMP/creds" "${WRK_CPU[@]}" wrk -t2 -c"$CONNECTIONS" -d5s -s "$TMP/many.lua" "$BASE" >/dev/null
        cached=$(wc -l <"$TMP/creds")
        rss_warm=$(rss_mib "$SERVER_PID")
        sleep 6
        # The same working set of 1,000 devices at every database size: what
        # the size of the database does to the hot path.
        head -n 1000 "$TMP/creds" >"$TMP/working-set"
        CREDS="$TMP/working-set" load MANY "$BASE" -s "$TMP/many.lua"
        row "$backend" "(b) 1000 devices in turn, $size in database" "$RPS_MANY" "$P50_MANY" "$P99_MANY" \
            "RSS ${rss_start} -> ${rss_warm} MiB with $cached cached: $(awk -v a="$rss_start" -v b="$rss_warm" -v n="$cached" \
                'BEGIN {printf "%.0f B each", (b - a) * 1048576 / n}')"
        if [[ $size == "${SIZES%% *}" ]]; then
            load A "$BASE/healthz"
            read -r one_path one_auth <"$TMP/one"
            load B "$BASE$one_path" -H "Authorization: $one_auth"
            row "$backend" "(a) GET /healthz" "$RPS_A" "$P50_A" "$P99_A" ""
            row "$backend" "(b) GET /server/api/device/{id}, one device" "$RPS_B" "$P50_B" "$P99_B" \
                "b/a = $(awk -v a="$RPS_A" -v b="$RPS_B" 'BEGIN {printf "%.2f", b / a}')"
            for spread in 0 1; do
                COUNTS="$TMP/counts" SPREAD=$spread "${WRK_CPU[@]}" wrk -t1 -c64 -d"$DURATION" \
                    -s "$TMP/storm.lua" "$BASE/server/api/device" >/dev/null &
                storm=$!
                sleep 1
                load STORM "$BASE$one_path" -H "Authorization: $one_auth"
                wait "$storm" || true
                what=$([[ $spread == 1 ]] && echo "64 guessing, each a new email" || echo "64 guessing one account")
                row "$backend" "(b) one device, $what" "$RPS_STORM" "$P50_STORM" "$P99_STORM" \
                    "p99 x$(awk -v s="$P99_STORM" -v b="$P99_B" 'BEGIN {printf "%.2f", s / b}') of quiet; guesses: $(sort -n "$TMP/counts" | tr '\n' ' ')"
            done
        fi
        stop_server
    done
done

if [[ " $BACKENDS " == *" postgres "* ]]; then
    new_database postgres nodes; url=$URL
    start_server "$url"; NODE_A=$BASE
    start_server "$url"; NODE_B=$BASE
    echo "bench: 200 revocations on node A, watched on node B" >&2
    "$EXAMPLES/revocation_latency" "$url" "$NODE_A" "$NODE_B" 200 >"$TMP/revocations"
    echo >>"$REPORT"
    echo "two nodes on one PostgreSQL: $(cat "$TMP/revocations")" >>"$REPORT"
fi

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo
echo "latchkey multi-node bench  commit: $COMMIT  nproc: $(nproc)  pinned: $PIN  wrk -c$CONNECTIONS -d$DURATION"
cat "$REPORT"
if [[ -s $TMP/server.log ]]; then
    echo
    echo "server warnings ($(wc -l <"$TMP/server.log") lines, first 5):"
    head -n 5 "$TMP/server.log"
fi
