#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: a
# figure that does not move with the machine's load. Each server runs alone
# under callgrind with one tokio worker; after a warm-up the counters are
# zeroed (callgrind_control --zero), REQUESTS keep-alive requests are sent
# from one connection, and the counters dumped. Servers, in one run:
#
#   (h) a bare axum hello-world (examples/hello.rs): the stack's own cost
#   (h+) the same hello-world's GET /forward, sent forward auth's request
#        headers and answering with six fixed identity headers: the stack's
#        own cost for forward auth's request and answer, checking nothing
#   (a) latchkey GET /healthz
#   (b) latchkey GET /server/api/device/{id}, Basic device credentials
#   (f) latchkey GET /server/authz/forward-auth, same credentials (if the route exists)
#
# Environment overrides: REQUESTS (default 2000), WARMUP (200). See bench/README.md.
set -euo pipefail

REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}

die() { echo "bench: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
for var in REQUESTS WARMUP; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer"
done
# Bounded: everything goes to 127.0.0.1, and valgrind is slow.
(( REQUESTS <= 100000 && WARMUP <= 10000 )) || die "REQUESTS must be <= 100000 and WARMUP <= 10000"
if ! command -v valgrind >/dev/null; then
    [[ $(id -u) == 0 ]] || die "valgrind is required"
    DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind >&2
fi
for tool in curl python3 git callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

echo "bench: cargo build --release (latchkey and examples/hello)" >&2
cargo build --release --quiet --bin latchkey --example hello
BIN="$ROOT/target/release/latchkey"
HELLO="$ROOT/target/release/examples/hello"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-instr.XXXXXX")
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
# KEEP=DIR keeps the callgrind dumps there, for callgrind_annotate (uncompressed,
# so that each dump part can be read on its own).
cleanup() { stop_server; if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP"; cp "$TMP"/callgrind.out.* "$KEEP"/ 2>/dev/null || true; fi; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # URL
    for _ in $(seq 600); do
        curl -s -o /dev/null --max-time 2 "$1" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited: $(tail -5 "$TMP"/*.log 2>/dev/null)"
        sleep 0.2
    done
    die "no answer from $1"
}

# Sends N GETs over one keep-alive connection; fails on any status but 200.
keep_alive() { # PORT PATH N [AUTHORIZATION]
    python3 - "$@" <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
headers = {"Authorization": sys.argv[4]} if len(sys.argv) > 4 else {}
if "/authz/" in path or path == "/forward":
    headers.update({"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "http",
                    "X-Forwarded-Host": "api.example.org", "X-Forwarded-Uri": "/items"})
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{path}: {response.status}")
PY
}

# Counts one route of the server running under callgrind as $SERVER_PID.
count() { # NAME PORT PATH [AUTHORIZATION]
    local name=$1 port=$2 path=$3 auth=${4:-}
    keep_alive "$port" "$path" "$WARMUP" ${auth:+"$auth"}
    callgrind_control --zero "$SERVER_PID" >/dev/null 2>&1
    keep_alive "$port" "$path" "$REQUESTS" ${auth:+"$auth"}
    callgrind_control --dump="$name" "$SERVER_PID" >/dev/null 2>&1
    sleep 1
    local file
    file=$(ls -t "$TMP"/callgrind.out.* | head -1)
    local total
    total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    [[ -n $total ]] || die "no totals in $file"
    echo $(( total / REQUESTS ))
}

under_callgrind() { # LOG COMMAND...
    local log=$1; shift
    TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out.%p" \
        ${KEEP:+--compress-strings=no --compress-pos=no} \
        "$@" >"$TMP/$log" 2>&1 &
    SERVER_PID=$!
}

# --- (h) bare axum ----------------------------------------------------------
PORT=$(free_port)
under_callgrind hello.log "$HELLO" "127.0.0.1:$PORT"
wait_for "http://127.0.0.1:$PORT/"
HELLO_I=$(count hello "$PORT" /)
# The same length as a real device's Basic credentials; the hello-world reads none.
FAKE_AUTH=$(python3 -c 'import base64; print("Basic " + base64.b64encode(b"123456789012:lkd_" + b"0" * 49).decode())')
HELLO_FORWARD_I=$(count hello-forward "$PORT" /forward "$FAKE_AUTH")
stop_server
[[ -n ${KEEP:-} ]] && { mkdir -p "$KEEP"; cp "$TMP"/callgrind.out.* "$KEEP"/; }
rm -f "$TMP"/callgrind.out.*

# --- latchkey ---------------------------------------------------------------
PORT=$(free_port)
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
printf '%s\n' "$PASSWORD" | LATCHKEY_LOG=warn "$BIN" --data-dir "$TMP/data" \
    user create --email bench@example.org --permission synchronisation --password-stdin >/dev/null
LATCHKEY_LOG=warn under_callgrind latchkey.log "$BIN" --data-dir "$TMP/data" serve --listen "127.0.0.1:$PORT"
wait_for "http://127.0.0.1:$PORT/healthz"
CREATED=$(curl -sf -X POST "http://127.0.0.1:$PORT/server/api/device" -H 'Content-Type: application/json' \
    --data "{\"email\":\"bench@example.org\",\"password\":\"$PASSWORD\",\"deviceName\":\"bench\"}") \
    || die "cannot create the bench device"
AUTH=$(python3 -c 'import base64, json, sys; d = json.loads(sys.argv[1]); print("Basic " + base64.b64encode((d["_id"] + ":" + d["token"]).encode()).decode())' "$CREATED")
DEVICE_ID=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["_id"])' "$CREATED")
HEALTH_I=$(count healthz "$PORT" /healthz)
DEVICE_I=$(count device "$PORT" "/server/api/device/$DEVICE_ID" "$AUTH")
FORWARD_I=
if [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $AUTH" \
        -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Proto: http' -H 'X-Forwarded-Host: a' -H 'X-Forwarded-Uri: /' \
        "http://127.0.0.1:$PORT/server/authz/forward-auth") == 200 ]]; then
    FORWARD_I=$(count forward "$PORT" /server/authz/forward-auth "$AUTH")
fi
stop_server

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "latchkey instructions  commit: $(git rev-parse --short HEAD)  valgrind: $(valgrind --version)"
echo "user-space instructions per request, one tokio worker, $REQUESTS keep-alive requests after $WARMUP"
echo
printf '%-44s %12s %8s\n' route instr/req "x hello"
printf '%-44s %12s %8s\n' "(h) bare axum GET /" "$HELLO_I" "1.00"
printf '%-44s %12s %8s\n' "(h+) bare axum GET /forward" "$HELLO_FORWARD_I" "$(ratio "$HELLO_FORWARD_I" "$HELLO_I")"
printf '%-44s %12s %8s\n' "(a) latchkey GET /healthz" "$HEALTH_I" "$(ratio "$HEALTH_I" "$HELLO_I")"
printf '%-44s %12s %8s\n' "(b) latchkey GET /server/api/device/{id}" "$DEVICE_I" "$(ratio "$DEVICE_I" "$HELLO_I")"
if [[ -n $FORWARD_I ]]; then
    printf '%-44s %12s %8s\n' "(f) latchkey GET /server/authz/forward-auth" "$FORWARD_I" "$(ratio "$FORWARD_I" "$HELLO_I")"
    echo
    echo "(f) against (h+), the same request and answer headers: $(ratio "$FORWARD_I" "$HELLO_FORWARD_I")"
else
    printf '%-44s %12s\n' "(f) forward auth" "(no such route in this build)"
fi
