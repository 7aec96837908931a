#!/usr/bin/env bash
# How the load generator takes steps of the realtime clock (the clock the kernel stamps answers
# by): the open model at 100,000/s on 100 connections against the epoll plugin, once with the
# clock left alone and once per step size while stepper.c steps it back and forth every 50 ms.
# Prints the row's counts of steps, rejected stamps and impossible latencies, and its audit.
# Root only; it steps this machine's clock (net drift well under a millisecond).
# Usage: benchmarks/clock-step/run.sh [STEP_US ...]   (default: 5 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(5 300)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 benchmarks/clock-step/stepper.c -o "$dir/stepper"
cargo build -q --release -p runbench -p runbench-plugin-epoll
cat > "$dir/s.toml" <<'TOML'
name = "clock-step"
[load]
model = "open"
rate = 100000
connections = 100
payload_bytes = 64
warmup = "300ms"
duration = "1s"
TOML
one() {
    ./target/release/runbench run "$dir/s.toml" --out "$dir/out" \
        --plugin target/release/librunbench_plugin_epoll.so >/dev/null 2>&1
    python3 - "$dir/out/clock-step/latest/summary.csv" "$1" <<'PY'
import csv, sys
r = next(csv.DictReader(open(sys.argv[1])))
keys = ("clock_steps", "reads", "reads_stamp_rejected", "latency_clamped", "latency_below_floor", "p99_us")
print(sys.argv[2] + ": " + ", ".join(f"{k}={r[k]}" for k in keys))
print("  audit: " + r["audit"])
PY
}
one "clock left alone"
for us in "${steps[@]}"; do
    "$dir/stepper" "$us" 40 &
    stepper=$!
    one "stepped ${us} µs every 50 ms"
    wait "$stepper"
done
