#!/usr/bin/env bash
# Memory benchmark: how much resident memory main-password hashing leaves
# behind. One throwaway release server on 127.0.0.1 gets ROUNDS rounds of
# CONCURRENCY simultaneous POST /server/api/device, right and wrong main
# passwords mixed, each from its own X-Forwarded-For address (the server
# trusts 127.0.0.1 as a proxy) so the per-address throttle lets every one of
# them reach the hasher. Reports peak (VmHWM) and settled (VmRSS after SETTLE
# seconds idle) resident memory from /proc/<pid>/status. See bench/README.md.
#
# Environment overrides: ROUNDS (default 10), CONCURRENCY (64), SETTLE (10),
# RIGHT_EVERY (4: every 4th request has the right password).
set -euo pipefail

ROUNDS=${ROUNDS:-10}
CONCURRENCY=${CONCURRENCY:-64}
SETTLE=${SETTLE:-10}
RIGHT_EVERY=${RIGHT_EVERY:-4}

die() { echo "bench: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/release/latchkey"

for var in ROUNDS CONCURRENCY SETTLE RIGHT_EVERY; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer"
done
# Bounded by design: at most 100 rounds of 256 requests, all on loopback.
(( ROUNDS <= 100 && CONCURRENCY <= 256 )) || die "ROUNDS must be <= 100 and CONCURRENCY <= 256"
[[ $(uname -s) == Linux ]] || die "reads /proc/<pid>/status: Linux only"
for tool in curl python3 git; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

echo "bench: cargo build --release" >&2
cargo build --release --quiet

# --- server ------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-membench.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

LATCHKEY_LOG=warn "$BIN" --data-dir "$TMP" serve --listen "127.0.0.1:$PORT" \
    --trusted-proxies 127.0.0.1 >/dev/null 2>"$TMP/server.log" &
SERVER_PID=$!

for _ in $(seq 100); do
    [[ $(curl -s --max-time 1 "$BASE/healthz" || true) == ok ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "server exited during start-up"; }
    sleep 0.1
done
[[ $(curl -s --max-time 1 "$BASE/healthz" || true) == ok ]] || die "server not healthy after 10 s"

# kib FIELD: a field of the server's /proc status, in KiB.
kib() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$SERVER_PID/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
threads() { awk '$1 == "Threads:" {print $2}' "/proc/$SERVER_PID/status"; }

# --- accounts ----------------------------------------------------------------

# One account per right password in a round, so no account ever has two
# checks at once: the per-account throttle (5 at once) then never refuses a
# right password. Random password per run, never printed; the whole database
# is deleted on exit anyway.
ACCOUNTS=$(( (CONCURRENCY + RIGHT_EVERY - 1) / RIGHT_EVERY ))
PW=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
echo "bench: creating $ACCOUNTS accounts" >&2
for k in $(seq 0 $((ACCOUNTS - 1))); do
    printf '%s\n' "$PW" | "$BIN" --data-dir "$TMP" user create \
        --email "bench-$k@example.org" --permission synchronisation --password-stdin >/dev/null \
        || die "could not create bench account $k"
done

sleep 1
IDLE_RSS=$(kib VmRSS)
IDLE_THREADS=$(threads)

# --- load --------------------------------------------------------------------

# One round: CONCURRENCY requests at once (a barrier releases them together),
# the next round when all have answered. Every RIGHT_EVERY-th request has the
# right password for one of the accounts (201, a new device); the others name
# an email nobody has,
# which the server checks against its dummy hash exactly like a wrong
# password (401). Each request comes from its own 10.x.y.z address. Prints
# the RSS after each round and the count of each HTTP status.
echo "bench: $ROUNDS rounds of $CONCURRENCY concurrent POST /server/api/device" >&2
START=$(date +%s.%N)
RESULT=$(PW="$PW" PORT="$PORT" PID="$SERVER_PID" ROUNDS="$ROUNDS" CONCURRENCY="$CONCURRENCY" \
    RIGHT_EVERY="$RIGHT_EVERY" ACCOUNTS="$ACCOUNTS" python3 - <<'EOF'
import collections, http.client, json, os, threading

port, pid = int(os.environ["PORT"]), os.environ["PID"]
rounds, n = int(os.environ["ROUNDS"]), int(os.environ["CONCURRENCY"])
right_every, password = int(os.environ["RIGHT_EVERY"]), os.environ["PW"]
accounts = int(os.environ["ACCOUNTS"])
statuses = collections.Counter()
lock = threading.Lock()

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def one(seq):
    if seq % right_every == 0:
        account = seq // right_every % accounts
        body = {"email": f"bench-{account}@example.org", "password": password}
    else:
        body = {"email": f"nobody-{seq}@example.org", "password": f"wrong-{seq}"}
    body.update(deviceName=f"bench {seq}", deviceType="script")
    address = f"10.{seq >> 16 & 255}.{seq >> 8 & 255}.{seq & 255}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/server/api/device", json.dumps(body),
                     {"Content-Type": "application/json", "X-Forwarded-For": address})
        resp = conn.getresponse()
        resp.read()
        status = str(resp.status)
    except Exception as e:
        status = type(e).__name__
    finally:
        conn.close()
    with lock:
        statuses[status] += 1

per_round = []
for r in range(rounds):
    barrier = threading.Barrier(n)
    def worker(seq):
        barrier.wait()
        one(seq)
    workers = [threading.Thread(target=worker, args=(r * n + i + 1,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    per_round.append(rss_kib())
print(json.dumps({"per_round": per_round, "statuses": dict(sorted(statuses.items()))}))
EOF
)
END=$(date +%s.%N)
unset PW
PEAK_RSS=$(kib VmHWM)
BUSY_THREADS=$(threads)

echo "bench: idle for ${SETTLE}s" >&2
sleep "$SETTLE"
SETTLED_RSS=$(kib VmRSS)
SETTLED_THREADS=$(threads)
kill -0 "$SERVER_PID" 2>/dev/null || die "server died during the run"

# --- report ------------------------------------------------------------------

if COMMIT=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD -- . ':(exclude)bench' || COMMIT="$COMMIT (+ uncommitted changes)"
else
    COMMIT="unknown (not a git checkout)"
fi

echo
echo "latchkey memory bench  commit: $COMMIT  nproc: $(nproc)  $(uname -sr)"
printf '%s rounds x %s concurrent POST /server/api/device (1 in %s right), %.1f s, 127.0.0.1\n' \
    "$ROUNDS" "$CONCURRENCY" "$RIGHT_EVERY" "$(awk -v a="$START" -v b="$END" 'BEGIN {print b - a}')"
echo
printf '%-34s %10s %8s\n' '' 'MiB' threads
printf '%-34s %10s %8s\n' 'idle after start-up (VmRSS)' "$(mib "$IDLE_RSS")" "$IDLE_THREADS"
printf '%-34s %10s %8s\n' 'peak (VmHWM)' "$(mib "$PEAK_RSS")" "$BUSY_THREADS"
printf '%-34s %10s %8s\n' "settled, ${SETTLE}s idle (VmRSS)" "$(mib "$SETTLED_RSS")" "$SETTLED_THREADS"
echo
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("VmRSS after each round (MiB):", " ".join(f"{k / 1024:.0f}" for k in r["per_round"]))
print("answers:", ", ".join(f"{n} x {s}" for s, n in r["statuses"].items()))' "$RESULT"

STATUS=0
# Exit status 0 when some answer was neither 201 nor 401.
if python3 -c 'import json, sys; s = json.loads(sys.argv[1])["statuses"]; sys.exit(0 if set(s) - {"201", "401"} else 1)' "$RESULT"; then
    echo
    echo "WARNING: answers other than 201 and 401: some requests did not reach the hasher"
    STATUS=2
fi
if [[ -s $TMP/server.log ]]; then
    echo
    echo "server log ($(wc -l <"$TMP/server.log") warn/error lines, first 10):"
    head -n 10 "$TMP/server.log"
fi
exit "$STATUS"
