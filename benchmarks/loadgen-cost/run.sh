#!/usr/bin/env bash
# What does the load generator itself cost per request? The epoll plugin on CPU 0, runbench's
# load generator on CPU 1, 100 connections of 64-byte echoes, 1 s warmup + 3 s: the closed model
# at full speed, then the open model at fixed rates and at 90% of what the closed model reached.
# Prints achieved requests/s, the load generator's CPU (seconds and share of its core), CPU per
# request, and how many scheduled sends went out late. `benchmarks/loadgen-cost/run.sh 20000 50000`
# measures other rates; RUNBENCH=path/to/runbench measures another build (its plugins beside it).
# Then 20,000/s again with each of WINDOWS (default "250us 500us"; WINDOWS= for none): the
# open model's `send_window`, at most one sleep per window, at the price of lateness.
# Last, the closed model with each of FEW (default "1 4") connections, each followed by the open
# model (100 connections) at the rate it reached: the two models at the same throughput, where
# the closed one also sleeps between answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${RUNBENCH:-}" ]; then
    cargo build --release -q
    RUNBENCH=./target/release/runbench
fi
rates=("$@")
if [ ${#rates[@]} -eq 0 ]; then rates=(1000 20000 100000 200000); fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

scenario() { # name model [rate [send_window [connections]]]
    local window_line=""
    if [ -n "${4:-}" ]; then window_line="send_window = \"$4\""; fi
    cat > "$dir/$1.toml" <<TOML
name = "$1"
runtimes = ["epoll"]
[server]
threads = 1
cpus = [0]
[load]
model = "$2"
${3:+rate = $3}
$window_line
connections = ${5:-100}
payload_bytes = 64
warmup = "1s"
duration = "3s"
cpus = [1]
TOML
}

row() { # name -> one table row from its summary.csv
    python3 - "$dir/out/$1/latest/summary.csv" "$1" <<'PY'
import csv, sys
r = next(csv.DictReader(open(sys.argv[1])))
rps, cpu = float(r["requests_per_sec"]), float(r["loadgen_cpu_s"])
# Over the warmup (1 s) and the window: the processes' CPU includes connecting 100 sockets and
# the drain, both negligible beside 4 s of load.
life = float(r["duration_s"]) + 1.0
served = rps * life
# Older builds lack the lateness and CPU-busy columns.
late = r.get("sent_late") or "-"
busy = float(r.get("loadgen_cpu_busy") or r["loadgen_busy"])
print(f"| {sys.argv[2]:<18} | {rps:>10,.0f} | {cpu:5.2f} s = {cpu / life:4.2f} core | "
      f"{cpu * 1e6 / served:6.2f} µs | {busy:4.2f} | {late:>7} | "
      f"{float(r['p50_us']):>10,.1f} | {float(r['p99_us']):>10,.1f} | "
      f"{r.get('send_window_us') or '-':>6} | {r['loadgen_saturated']:<5} |")
PY
}

echo "| load               | achieved/s | load generator CPU      | CPU/req   | busy | late    | p50 µs     | p99 µs     | window | sat.  |"
echo "| ---                | ---:       | ---                     | ---:      | ---: | ---:    | ---:       | ---:       | ---:   | ---   |"
scenario closed closed
"$RUNBENCH" run "$dir/closed.toml" --out "$dir/out" >/dev/null 2>&1
row closed
max=$(python3 -c "import csv;print(int(float(next(csv.DictReader(open('$dir/out/closed/latest/summary.csv')))['requests_per_sec'])*0.9))")
for rate in "${rates[@]}" "$max"; do
    scenario "open-$rate" open "$rate"
    "$RUNBENCH" run "$dir/open-$rate.toml" --out "$dir/out" >/dev/null 2>&1
    row "open-$rate"
done
echo "(the last row above is 90% of the closed model's rate)"
for window in ${WINDOWS-250us 500us}; do
    scenario "open-20000-$window" open 20000 "$window"
    "$RUNBENCH" run "$dir/open-20000-$window.toml" --out "$dir/out" >/dev/null 2>&1
    row "open-20000-$window"
done
for few in ${FEW-1 4}; do
    scenario "closed-$few-conns" closed "" "" "$few"
    "$RUNBENCH" run "$dir/closed-$few-conns.toml" --out "$dir/out" >/dev/null 2>&1
    row "closed-$few-conns"
    same=$(python3 -c "import csv;print(int(float(next(csv.DictReader(open('$dir/out/closed-$few-conns/latest/summary.csv')))['requests_per_sec'])))")
    scenario "open-$same" open "$same"
    "$RUNBENCH" run "$dir/open-$same.toml" --out "$dir/out" >/dev/null 2>&1
    row "open-$same"
done
