#!/usr/bin/env bash
# What guarding an API with latchkey costs: nginx -> upstream (no auth)
# against nginx auth_request -> latchkey -> upstream, in one run, everything
# on 127.0.0.1. The upstream is examples/hello.rs; the guarded server block is
# the one docs/forward-auth.md gives (only the ports changed); latchkey is a
# release build on SQLite in a temp dir. See bench/README.md.
#
# Environment overrides: DURATION (default 10s), CONNECTIONS (32), THREADS (2),
# KEEPALIVE (0: nginx opens a connection per request to latchkey and the
# upstream, as the documented block does; 1: an upstream block with keepalive).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
KEEPALIVE=${KEEPALIVE:-0}
WARMUP=2s

die() { echo "bench: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/release/latchkey"
HELLO="$ROOT/target/release/examples/hello"
NGINX=/usr/sbin/nginx

[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] && (( CONNECTIONS <= 512 )) || die "CONNECTIONS must be 1..512"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] && (( THREADS <= CONNECTIONS )) || die "THREADS must be 1..CONNECTIONS"
[[ $DURATION =~ ^[1-9][0-9]?s$ ]] || die "DURATION must be 1s..99s"
[[ $KEEPALIVE == 0 || $KEEPALIVE == 1 ]] || die "KEEPALIVE must be 0 or 1"
for tool in curl python3 git; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null || [[ ! -x $NGINX ]]; then
    (( EUID == 0 )) && command -v apt-get >/dev/null || die "needs wrk and nginx (apt-get install wrk nginx)"
    echo "bench: installing wrk and nginx" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null \
        || die "could not install wrk and nginx with apt-get"
fi

echo "bench: cargo build --release (latchkey and examples/hello)" >&2
cargo build --release --quiet --bin latchkey --example hello

TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-proxy.XXXXXX")
PIDS=()
cleanup() {
    # Only the children this script started, by their pid.
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # URL PID [AUTH]
    for _ in $(seq 100); do
        curl -sf -o /dev/null --max-time 1 ${3:+-H "$3"} "$1" && return 0
        kill -0 "$2" 2>/dev/null || die "a server exited during start-up: $(tail -5 "$TMP"/*.log 2>/dev/null)"
        sleep 0.1
    done
    die "no answer from $1"
}

# --- upstream and latchkey ---------------------------------------------------
UP_PORT=$(free_port)
"$HELLO" "127.0.0.1:$UP_PORT" 2>"$TMP/upstream.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$UP_PORT/" "${PIDS[-1]}"

LK_PORT=$(free_port)
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
printf '%s\n' "$PASSWORD" | LATCHKEY_LOG=warn "$BIN" --data-dir "$TMP/data" \
    user create --email bench@example.org --permission synchronisation --password-stdin >/dev/null \
    || die "could not create the bench account"
LATCHKEY_LOG=warn "$BIN" --data-dir "$TMP/data" serve --listen "127.0.0.1:$LK_PORT" \
    --trusted-proxies 127.0.0.1 >/dev/null 2>"$TMP/latchkey.log" &
LK_PID=$!
PIDS+=($LK_PID)
wait_for "http://127.0.0.1:$LK_PORT/healthz" "$LK_PID"
CREATED=$(PW="$PASSWORD" python3 -c '
import json, os
print(json.dumps({"email": "bench@example.org", "password": os.environ["PW"], "deviceName": "proxy bench"}))' \
    | curl -sf -X POST "http://127.0.0.1:$LK_PORT/server/api/device" \
        -H 'Content-Type: application/json' --data-binary @-) || die "cannot create the bench device"
AUTH="Authorization: Basic $(python3 -c 'import base64, json, sys; d = json.loads(sys.argv[1]); print(base64.b64encode((d["_id"] + ":" + d["token"]).encode()).decode())' "$CREATED")"
unset PASSWORD CREATED

# --- two nginx servers ---------------------------------------------------------
BLOCK=$(python3 - "$ROOT/docs/forward-auth.md" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("```nginx\n") + len("```nginx\n")
print(text[start:text.index("```", start)])
PY
)
GUARDED_PORT=$(free_port)
PLAIN_PORT=$(free_port)
GUARDED=${BLOCK//127.0.0.1:8080/latchkey_backend}
GUARDED=${GUARDED//127.0.0.1:9000/app_backend}
GUARDED=${GUARDED//listen 443 ssl;/listen 127.0.0.1:$GUARDED_PORT;}
[[ $GUARDED == *"listen 127.0.0.1:$GUARDED_PORT;"* && $GUARDED == *latchkey_backend* ]] \
    || die "docs/forward-auth.md's nginx block changed shape"
if [[ $KEEPALIVE == 1 ]]; then
    KA="keepalive 64;"
    # Keep-alive towards a backend needs HTTP/1.1 and no "Connection: close".
    HTTP11='proxy_http_version 1.1; proxy_set_header Connection "";'
    GUARDED=${GUARDED//proxy_pass /$HTTP11 proxy_pass }
else
    KA=""
    HTTP11=""
fi
nginx_conf() { # NAME SERVER-BLOCK
    local d="$TMP/$1"
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/body; proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
    upstream latchkey_backend { server 127.0.0.1:$LK_PORT; $KA }
    upstream app_backend { server 127.0.0.1:$UP_PORT; $KA }
$2
}
EOF
    # One process each, so that killing it leaves no workers behind.
    "$NGINX" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' 2>"$d/stderr.log" &
    PIDS+=($!)
}
nginx_conf guarded "$GUARDED"
GUARDED_PID=${PIDS[-1]}
nginx_conf plain "server { listen 127.0.0.1:$PLAIN_PORT; location / { $HTTP11 proxy_pass http://app_backend; } }"
PLAIN_PID=${PIDS[-1]}
wait_for "http://127.0.0.1:$PLAIN_PORT/" "$PLAIN_PID"
wait_for "http://127.0.0.1:$GUARDED_PORT/" "$GUARDED_PID" "$AUTH"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GUARDED_PORT/")
[[ $STATUS == 401 ]] || die "the guarded server answered $STATUS without credentials (expected 401)"

# --- load --------------------------------------------------------------------
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000;
        else if (u == "m") n *= 60000; else if (u != "ms") { print "NaN"; exit 1 }
        printf "%.3f", n }'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_wrk NAME URL [wrk args...]: sets RPS_, REQ_, P50_, P99_, NON2XX_, LKTICKS_<NAME>.
run_wrk() {
    local name=$1 url=$2 out before after; shift 2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" >/dev/null
    before=$(ticks "$LK_PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    after=$(ticks "$LK_PID")
    printf -v "RPS_$name" '%s' "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    printf -v "REQ_$name" '%s' "$(awk '/requests in/ {print $1}' <<<"$out")"
    printf -v "P50_$name" '%s' "$(to_ms "$(awk '/Latency Distribution/ {d=1} d && $1 == "50%" {print $2; exit}' <<<"$out")")"
    printf -v "P99_$name" '%s' "$(to_ms "$(awk '/Latency Distribution/ {d=1} d && $1 == "99%" {print $2; exit}' <<<"$out")")"
    printf -v "NON2XX_$name" '%s' "$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' <<<"$out")"
    printf -v "LKTICKS_$name" '%s' "$((after - before))"
}

echo "bench: loading nginx -> upstream, then nginx auth_request -> latchkey -> upstream (${WARMUP} warm-up + ${DURATION} each)" >&2
run_wrk P "http://127.0.0.1:$PLAIN_PORT/"
run_wrk G "http://127.0.0.1:$GUARDED_PORT/" -H "$AUTH"
unset AUTH

# --- report ------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . ':(exclude)bench' 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
HZ=$(getconf CLK_TCK)
echo
echo "latchkey proxy bench  commit: $COMMIT  nproc: $(nproc)  $($NGINX -v 2>&1 | sed 's/.*: //')"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after $WARMUP warm-up), 127.0.0.1, backend keep-alive: $KEEPALIVE"
echo
printf '%-44s %12s %9s %9s %16s\n' route 'requests/s' 'p50 ms' 'p99 ms' 'latchkey us/req'
printf '%-44s %12.0f %9.3f %9.3f %16s\n' '(p) nginx -> upstream' "$RPS_P" "$P50_P" "$P99_P" '-'
awk -v t="$LKTICKS_G" -v n="$REQ_G" -v hz="$HZ" -v r="$RPS_G" -v a="$P50_G" -v b="$P99_G" 'BEGIN {
    printf "%-44s %12.0f %9.3f %9.3f %16.1f\n", "(g) nginx auth_request -> latchkey -> upstream", r, a, b, (n > 0 ? t / hz * 1e6 / n : 0) }'
echo
awk -v rp="$RPS_P" -v rg="$RPS_G" -v p50p="$P50_P" -v p50g="$P50_G" -v p99p="$P99_P" -v p99g="$P99_G" 'BEGIN {
    printf "added latency: p50 %+.3f ms, p99 %+.3f ms\n", p50g - p50p, p99g - p99p
    printf "throughput ratio g/p: %.2f\n", (rp > 0 ? rg / rp : 0) }'
STATUS=0
for name in P G; do
    non=NON2XX_$name
    if [[ -n ${!non} && ${!non} != 0 ]]; then
        echo "WARNING: ($name) got ${!non} non-2xx/3xx answers: its numbers do not measure passing requests"
        STATUS=2
    fi
done
for log in "$TMP/latchkey.log" "$TMP"/guarded/error.log "$TMP"/plain/error.log; do
    if [[ -s $log ]]; then
        echo
        echo "$log (first 5 lines):"
        head -n 5 "$log"
    fi
done
exit "$STATUS"
