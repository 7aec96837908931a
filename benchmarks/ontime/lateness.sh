#!/usr/bin/env bash
# Does the audit say when the client's own lateness makes a reported percentile? A generator
# losing its CPU for BURST_US of every PERIOD_US (default 800 of 40,000: 2% of the time, each
# send at most 0.8 ms late, so the "sent more than 1 ms late" check stays silent) against the C
# echo server, 10,000/s over 10 connections, 0.5 s + 3 s, everything at real-time priority 1
# and the hog (hog.c) at 2 on the generator's CPU, so other work on the machine cannot blur it.
# Each runbench given (default target/release/runbench) runs ROUNDS times without the hog and
# with it; printed: p50, p99, p99 from when the client got to each request (newer builds), the
# send lag's p99 and p99.9, sends more than 1 ms late, and the audit.
#
#   benchmarks/ontime/lateness.sh                         # the current build
#   benchmarks/ontime/lateness.sh old/runbench new/runbench
#   BURST_US=2000 PERIOD_US=50000 ROUNDS=3 benchmarks/ontime/lateness.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
builds=("$@")
if [ ${#builds[@]} -eq 0 ]; then
    CARGO_PROFILE_DEV_DEBUG=0 cargo build --release -q -p runbench
    builds=(./target/release/runbench)
fi
BURST_US=${BURST_US:-800}
PERIOD_US=${PERIOD_US:-40000}
ROUNDS=${ROUNDS:-2}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-7311}
bin=target/ontime
mkdir -p "$bin"
cc -O2 -Wall -Wextra -o "$bin/echo_server" benchmarks/ontime/echo_server.c
cc -O2 -Wall -Wextra -o "$bin/hog" benchmarks/ontime/hog.c
dir=$(mktemp -d)
server=""
hog=""
cleanup() {
    for p in $hog $server; do kill "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
chrt -f 1 taskset -c "$SERVER_CPU" "$bin/echo_server" "$PORT" > "$dir/server.out" &
server=$!
for _ in $(seq 50); do
    grep -q ready "$dir/server.out" 2>/dev/null && break
    sleep 0.1
done
grep -q ready "$dir/server.out" || { echo "the echo server did not start (port $PORT in use?)" >&2; exit 1; }
cat > "$dir/lateness.toml" <<TOML
name = "lateness"
[target]
address = "127.0.0.1:$PORT"
name = "c-echo"
[load]
model = "open"
rate = 10000
connections = 10
payload_bytes = 64
warmup = "500ms"
duration = "3s"
cpus = [$CLIENT_CPU]
threads = 1
TOML
echo "hog: ${BURST_US} µs of every ${PERIOD_US} µs on CPU $CLIENT_CPU; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    for build in "${builds[@]}"; do
        for with in none hog; do
            if [ "$with" = hog ]; then
                "$bin/hog" "$CLIENT_CPU" "$BURST_US" "$PERIOD_US" 30 &
                hog=$!
            fi
            chrt -f 1 "$build" run "$dir/lateness.toml" --out "$dir/out" > "$dir/run.log" 2>&1 || true
            if [ "$with" = hog ]; then kill "$hog"; wait "$hog" 2>/dev/null || true; hog=""; fi
            python3 - "$dir/out/lateness/latest/summary.csv" "$round" "$build" "$with" <<'PY'
import csv, sys
path, rnd, build, with_ = sys.argv[1:]
r = next(csv.DictReader(open(path)))
g = lambda k: r.get(k) or "-"
print(f"round {rnd} {build} {with_:<4}: p50 {g('p50_us')} p99 {g('p99_us')} p99_after_lag {g('p99_after_lag_us')} "
      f"lag p99 {g('send_lag_p99_us')} p99.9 {g('send_lag_p999_us')} late {g('sent_late')} | audit: {g('audit')}")
PY
        done
    done
done
