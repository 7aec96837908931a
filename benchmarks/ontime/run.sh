#!/usr/bin/env bash
# The open model against an on-time C client (issue 27): three clients drive one C epoll echo
# server (CPU 0) from CPU 1 with 100 connections of 64 B, 1 s warmup + 3 s, at each rate: the C
# client waking in epoll_pwait2 for each due send and each answer (c-epoll), the same client
# sleeping through answers to a send due within 1 ms and timing them by the kernel's receive
# stamps (c-sleep, the cheaper), and runbench's open model. Three rounds, the clients taking turns
# inside each round (the first to go moves every round), so a noisy minute hits all three.
# Prints every run with the machine's load average (uptime), then per client and rate the median
# over the rounds of: CPU per request (the client process's user + system time over its whole
# life, per request sent), p50 and p99 (µs, from the intended send time), sends more than 1 ms
# late, and runbench's audit; and runbench's CPU over the cheaper C client's, its p50 over
# c-epoll's and its p99 over both. Each run's line has the send lag's p99 and p99.9 and, for
# runbench, p99_after (its p99 counted from when it got to each request: without its own
# lateness); p99 far above p99_after means the client's lateness made the tail. Every run also
# has the server's own witness (echo_server.c): the p99 of how long the requests it read had
# waited in its sockets (from the kernel's receive stamp to its read), over that run: a client
# that sends in larger batches makes the server's queue, and this, longer; per_batch is how
# many requests each client sent per batch (runbench's loadgen_sends_per_batch).
#
#   benchmarks/ontime/run.sh                 # 20,000 50,000 100,000/s, 3 rounds
#   ROUNDS=5 benchmarks/ontime/run.sh 100000 # other rates, more rounds
#   RUNBENCH=path/to/runbench ...            # another build (default: cargo build --release)
#   BEFORE=path/to/older/runbench ...        # a fourth client, runbench-before, in the same
#                                            # rotation: before and after under the same noise
#   EXTRA_NS="300 600" ...                   # more clients: c-sleep doing that many ns of busy
#                                            # work more per request (c-sleep+300ns, ...): how
#                                            # the tail answers a client's cost per request
#   SERVER_CPU=0 CLIENT_CPU=1 PORT=7310      # where things run
#   NICE=-20 benchmarks/ontime/run.sh         # server and clients at nice -20, and this
#                                            # session's autogroup too (root): on a shared
#                                            # machine others' work then gets ~5% of the two
#                                            # CPUs instead of half, for the few minutes it runs
#
# The figures are only as quiet as the machine: run it where nothing else runs (check `uptime`
# and `top` first); every row carries the load average it was measured under.
set -euo pipefail
cd "$(dirname "$0")/../.."
rates=("$@")
if [ ${#rates[@]} -eq 0 ]; then rates=(20000 50000 100000); fi
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-7310}
CONNECTIONS=${CONNECTIONS:-100}
PAYLOAD=${PAYLOAD:-64}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-3}

bin=target/ontime
prio=()
group_nice=""
if [ -n "${NICE:-}" ]; then
    prio=(nice -n "$NICE")
    # With autogroup scheduling (kernel.sched_autogroup_enabled) a nice value counts only inside
    # this session's group; the group's own nice is what weighs against other sessions. It is
    # the caller's session's too: put back at exit.
    if [ -w /proc/self/autogroup ]; then
        group_nice=$(awk '{print $3}' /proc/self/autogroup)
        echo "$NICE" > /proc/self/autogroup
    fi
fi
mkdir -p "$bin"
cc -O2 -Wall -Wextra -o "$bin/echo_server" benchmarks/ontime/echo_server.c
cc -O2 -Wall -Wextra -o "$bin/ontime_client" benchmarks/ontime/ontime_client.c
if [ -z "${RUNBENCH:-}" ]; then
    CARGO_PROFILE_DEV_DEBUG=0 cargo build --release -q -p runbench
    RUNBENCH=./target/release/runbench
fi

dir=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    if [ -n "$group_nice" ]; then echo "$group_nice" > /proc/self/autogroup || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

${prio[@]+"${prio[@]}"} taskset -c "$SERVER_CPU" "$bin/echo_server" "$PORT" > "$dir/server.out" &
server=$!
for _ in $(seq 50); do
    grep -q ready "$dir/server.out" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "the echo server did not start (port $PORT in use?)" >&2; exit 1; }
    sleep 0.1
done
grep -q ready "$dir/server.out" || { echo "the echo server did not say ready in 5 s" >&2; exit 1; }

results="$dir/results.tsv"
: > "$results"
load() { cut -d, -f1 /proc/loadavg | awk '{print $1}'; }
# The echo server's "run" lines so far, and the wait p99 of the next one (it prints one when the
# last connection of a run closes).
server_runs() { grep -c '^run ' "$dir/server.out" || true; }
server_wait_p99() { # runs seen before the client ran
    for _ in $(seq 50); do
        if [ "$(server_runs)" -gt "$1" ]; then
            grep '^run ' "$dir/server.out" | tail -1 | tr ' ' '\n' | sed -n 's/^wait_p99_us=//p'
            return
        fi
        sleep 0.1
    done
    echo "the echo server did not report the run within 5 s" >&2
    echo nan
}

run_c() { # rate round mode [extra ns of work per request]
    local before out
    before=$(load)
    out=$(ONTIME_EXTRA_NS=${4:-0} ${prio[@]+"${prio[@]}"} taskset -c "$CLIENT_CPU" "$bin/ontime_client" "$PORT" "$CONNECTIONS" "$PAYLOAD" "$1" "$WARMUP" "$DURATION" "$3")
    python3 - "$1" "$2" "$before" "$(load)" "$out" >> "$results" <<'PY'
import sys
rate, rnd, l0, l1, line = sys.argv[1:]
f = dict(kv.split("=") for kv in line.split())
label = f"c-{f['mode']}" + (f"+{f['extra_ns']}ns" if f["extra_ns"] != "0" else "")
print("\t".join([label, rate, rnd, f"{l0}/{l1}", f["cpu_us_per_request"], f["p50_us"], f["p99_us"],
                 f["late_1ms"], f["lag_p99_us"], f["lag_p999_us"], "-", f["per_batch"],
                 f"answered={f['answered']}/{f['scheduled']}"]))
PY
}
run_c_epoll() { run_c "$1" "$2" epoll; }
run_c_sleep() { run_c "$1" "$2" sleep; }
run_c_sleep_extra() { run_c "$2" "$3" sleep "$1"; } # extra rate round

run_runbench() { # rate round [binary label]
    local bin=${3:-$RUNBENCH} label=${4:-runbench}
    local name="ontime-$label-$1-$2" before
    cat > "$dir/$name.toml" <<TOML
name = "$name"
[target]
address = "127.0.0.1:$PORT"
name = "c-echo"
[load]
model = "open"
rate = $1
connections = $CONNECTIONS
payload_bytes = $PAYLOAD
warmup = "${WARMUP}s"
duration = "${DURATION}s"
cpus = [$CLIENT_CPU]
threads = 1
TOML
    before=$(load)
    if ! ${prio[@]+"${prio[@]}"} "$bin" run "$dir/$name.toml" --out "$dir/out" > "$dir/$name.log" 2>&1; then
        # A row the audit flagged exits non-zero too; only a missing summary is a failure here.
        [ -f "$dir/out/$name/latest/summary.csv" ] || { cat "$dir/$name.log" >&2; exit 1; }
    fi
    python3 - "$dir/out/$name/latest/summary.csv" "$1" "$2" "$before" "$(load)" "$WARMUP" "$DURATION" "$label" >> "$results" <<'PY'
import csv, sys
path, rate, rnd, l0, l1, warmup, duration, label = sys.argv[1:]
r = next(csv.DictReader(open(path)))
if r["status"] != "ok" or not r.get("loadgen_cpu_s"):
    # Left out of the medians (nan), with the reason.
    print("\t".join([label, rate, rnd, f"{l0}/{l1}"] + ["nan"] * 8 + [f"{r['status']}: {r['error']}"]))
    sys.exit(0)
# Requests sent over the process's life: the schedule over warmup + window.
sent = float(rate) * (float(warmup) + float(duration))
cpu = float(r["loadgen_cpu_s"]) * 1e6 / sent
lag999 = r.get("send_lag_p999_us") or "-"
print("\t".join([label, rate, rnd, f"{l0}/{l1}", f"{cpu:.2f}", r["p50_us"], r["p99_us"], r["sent_late"],
                 r["send_lag_p99_us"], lag999, r.get("p99_after_lag_us") or "-",
                 f"{float(r['loadgen_sends_per_batch']):.2f}" if r.get("loadgen_sends_per_batch") else "-", r["audit"].replace("\t", " ")]))
PY
}

echo "runs (load average before/after each; µs; nice ${NICE:-0}; $(uname -r)):"
printf "%-15s %7s %5s %11s %8s %10s %10s %7s %9s %10s %10s %9s %9s  %s\n" client rate round load cpu/req p50 p99 late lag_p99 lag_p99.9 p99_after per_batch srv_wait_p99 note
run_before() { run_runbench "$1" "$2" "$BEFORE" runbench-before; }
clients=(run_c_epoll run_c_sleep run_runbench)
if [ -n "${BEFORE:-}" ]; then clients+=(run_before); fi
for ns in ${EXTRA_NS:-}; do clients+=("run_c_sleep_extra $ns"); done
for round in $(seq "$ROUNDS"); do
    for rate in "${rates[@]}"; do
        # The clients in turn, the first moving on each round.
        for k in "${!clients[@]}"; do
            client=${clients[$(((k + round - 1) % ${#clients[@]}))]}
            seen=$(server_runs)
            $client "$rate" "$round"
            sed -i "\$ s/\$/\t$(server_wait_p99 "$seen")/" "$results"
            tail -1 "$results" | awk -F'\t' '{printf "%-15s %7s %5s %11s %8s %10s %10s %7s %9s %10s %10s %9s %9s  %s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$14,$13}'
        done
    done
done

echo
echo "median of $ROUNDS rounds:"
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def med(xs):
    v = [float(x) for x in xs if x not in ("nan", "-")]
    return statistics.median(v) if v else float("nan")
print(f"| {'rate':>8} | {'client':<9} | {'CPU/request':>11} | {'p50 µs':>9} | {'p99 µs':>9} | {'late sends':>10} | "
      f"{'per batch':>9} | {'server wait p99 µs':>18} | {'load avg':>17} |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
by = {}
for r in rows:
    by.setdefault((int(r[1]), r[0]), []).append(r)
clients = list(dict.fromkeys(r[0] for r in rows))
order = ["c-epoll", "c-sleep", "runbench", "runbench-before"]
clients.sort(key=lambda c: (order.index(c) if c in order else len(order), c))
for rate in sorted({k[0] for k in by}):
    m = {}
    for client in clients:
        rs = by.get((rate, client), [])
        if not rs:
            continue
        m[client] = (med(r[4] for r in rs), med(r[5] for r in rs), med(r[6] for r in rs), med(r[7] for r in rs),
                     med(r[13] for r in rs), med(r[11] for r in rs))
        loads = [float(x) for r in rs for x in r[3].split("/")]
        print(f"| {rate:>8,} | {client:<9} | {m[client][0]:8.2f} µs | {m[client][1]:9.1f} | {m[client][2]:9.1f} | "
              f"{m[client][3]:10.0f} | {m[client][5]:9.2f} | {m[client][4]:18.1f} | {min(loads):.2f}-{max(loads):.2f} |")
    if "c-epoll" in m and "c-sleep" in m:
        ce, cs = m["c-epoll"], m["c-sleep"]
        cheaper = min(ce[0], cs[0])
        for client in ("runbench", "runbench-before") + tuple(c for c in clients if "+" in c):
            if client in m:
                rb = m[client]
                print(f"| {rate:>8,} | {client} / C | {rb[0] / cheaper:.2f}x the cheaper | {rb[1] / ce[1]:.2f}x epoll | "
                      f"{rb[2] / ce[2]:.2f}x epoll, {rb[2] / cs[2]:.2f}x sleep | | | {rb[4] / cs[4]:.2f}x sleep | |")
PY
