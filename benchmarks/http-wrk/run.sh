#!/usr/bin/env bash
# Does runbench's HTTP/1.1 load generator agree with wrk? Both drive the same plugin (one
# `runbench serve` child, server on CPU 0) with the same connections for the same duration,
# client on CPU 1, alternating TRIALS times; prints one table row per trial: requests/s of
# each, their ratio, each client's CPU per request, the cores each client and the server used
# while that client ran (user + system time over wall time), and the load average when it ran.
# Where both clients used their whole core and the server did not, both measured their own
# limit, not the server's: their ratio is then that of their costs per request, and says so.
#
#   benchmarks/http-wrk/run.sh [RUNTIME]        (default tokio; CONNS, SECS, TRIALS in the env)
#
# Needs wrk (Debian: apt-get install wrk). On a shared machine the figures move with the
# neighbours' load: read the load-average column, and re-run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNTIME=${1:-tokio}
CONNS=${CONNS:-64}
SECS=${SECS:-10}
TRIALS=${TRIALS:-3}
PORT=${PORT:-7181}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release -q
bin=$PWD/target/release/runbench
lib=$PWD/target/release/librunbench_plugin_${RUNTIME//-/_}.so
work=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null || true; rm -rf "$work"' EXIT

spec=$(printf '{"plugin":"%s","addr":"127.0.0.1:%d","threads":1,"cpus":[0],"max_connections":0,"grace_ms":1000,"workload":{"protocol":"http1"}}' "$lib" "$PORT")
# The serve child stops when its stdin closes (fd 3, closed on exit).
exec 3> >("$bin" serve --spec "$spec" >/dev/null 2>"$work/serve.log")
for _ in $(seq 50); do
    (exec 4<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
done
server=$(pgrep -n -f "serve --spec .*127.0.0.1:$PORT")
hz=$(getconf CLK_TCK)
# The server's CPU time (user + system ticks) and the wall clock, to take differences of.
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
wall() { date +%s.%N; }
cores() { awk -v t0="$1" -v t1="$2" -v w0="$3" -v w1="$4" -v hz="$hz" 'BEGIN {printf "%.2f", (t1 - t0) / hz / (w1 - w0)}'; }

cat >"$work/wrk.toml" <<TOML
name = "http-wrk"
[workload]
protocol = "http1"
[target]
address = "127.0.0.1:$PORT"
[server]
cpus = [0]
[load]
connections = $CONNS
payload_bytes = 0
warmup = "1s"
duration = "${SECS}s"
cpus = [1]
TOML

printf '| trial | wrk req/s | runbench req/s | runbench / wrk | wrk CPU µs/req | runbench CPU µs/req | cores: wrk, server | cores: runbench, server | load average | note |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for trial in $(seq "$TRIALS"); do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    # wrk's CPU: its user + system time (bash's `times` of the finished child).
    TIMEFORMAT='%U %S'
    t0=$(server_ticks); w0=$(wall)
    { time taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/" >"$work/wrk.out"; } 2>"$work/wrk.time"
    t1=$(server_ticks); w1=$(wall)
    wrk_server=$(cores "$t0" "$t1" "$w0" "$w1")
    wrk_cores=$(awk -v s="$SECS" '{printf "%.2f", ($1 + $2) / s}' "$work/wrk.time")
    wrk_rate=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
    wrk_total=$(awk '/requests in/ {print $1}' "$work/wrk.out")
    wrk_cpu=$(awk -v n="$wrk_total" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$work/wrk.time")
    t0=$(server_ticks); w0=$(wall)
    "$bin" run "$work/wrk.toml" --out "$work/out" >"$work/run.log" 2>&1
    t1=$(server_ticks); w1=$(wall)
    # Over the whole run (connects, warmup and shutdown included): a lower bound of its share.
    ours_server=$(cores "$t0" "$t1" "$w0" "$w1")
    summary="$work/out/http-wrk/latest/summary.csv"
    ours=$(python3 -c 'import csv,sys; r=next(csv.DictReader(open(sys.argv[1]))); print(r["requests_per_sec"], r["loadgen_cpu_s"], r["requests"], r["duration_s"], r["warmup_s"] if "warmup_s" in r else "1")' "$summary")
    read -r rate cpu_s requests duration _ <<<"$ours"
    # The load generator's CPU covers warmup + window; its requests/s times that time is the
    # requests it served then.
    ours_cpu=$(awk -v c="$cpu_s" -v r="$rate" -v d="$duration" 'BEGIN {printf "%.2f", c * 1e6 / (r * (d + 1))}')
    ours_cores=$(awk -v c="$cpu_s" -v d="$duration" 'BEGIN {printf "%.2f", c / (d + 1)}')
    ratio=$(awk -v a="$rate" -v b="$wrk_rate" 'BEGIN {printf "%.3f", a / b}')
    note=$(awk -v a="$wrk_cores" -v b="$ours_cores" -v s="$wrk_server" -v cw="$wrk_cpu" -v cr="$ours_cpu" 'BEGIN {
        if (a >= 0.95 && b >= 0.95 && s < 0.95)
            printf "both clients at their core, the server not: the ratio is their costs (wrk/runbench CPU per request %.3f)", cw / cr
        else if (s >= 0.95) printf "server-bound: the ratio compares the two on the server"
        else printf "-" }')
    printf '| %d | %.0f | %.0f | %s | %s | %s | %s, %s | %s, %s | %s | %s |\n' "$trial" "$wrk_rate" "$rate" "$ratio" "$wrk_cpu" "$ours_cpu" \
        "$wrk_cores" "$wrk_server" "$ours_cores" "$ours_server" "$load" "$note"
done
