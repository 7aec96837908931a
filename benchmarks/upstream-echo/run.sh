#!/usr/bin/env bash
# Our plugin against a runtime's own echo example, under the throughput shape (1 server core,
# 100 connections, 64-byte echoes, closed loop): is the plugin within 5% of what the runtime's
# authors wrote? Upstream code is built elsewhere and never committed; pass its command.
#
#   benchmarks/upstream-echo/run.sh RUNTIME ADDRESS [ROUNDS] -- COMMAND...
#   e.g. benchmarks/upstream-echo/run.sh compio 127.0.0.1:7200 3 -- /tmp/upstream/compio/echo 7200
#
# The pair runs back to back, alternating, ROUNDS times (default 3); prints each run's requests/s
# and the medians. The upstream server is started by runbench pinned to CPU 0, as the plugin is.
set -euo pipefail
cd "$(dirname "$0")/../.."
runtime=$1 addr=$2
shift 2
rounds=3
if [[ ${1:-} != -- ]]; then rounds=$1; shift; fi
[[ ${1:-} == -- ]] || { echo "usage: $0 RUNTIME ADDRESS [ROUNDS] -- COMMAND..." >&2; exit 2; }
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command_toml=$(printf '"%s", ' taskset -c 0 "$@")
cat > "$work/upstream.toml" <<TOML
name = "upstream-$runtime"
description = "$runtime's own echo example as an external target"
[target]
address = "$addr"
command = [${command_toml%, }]
name = "$runtime-upstream"
[load]
connections = 100
payload_bytes = 64
warmup = "1s"
duration = "5s"
cpus = [1]
TOML
rps() { # requests/s of the only row of a run's summary.csv (<out>/<scenario>/<time>/)
  python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/summary.csv")))
print(rows[0]["requests_per_sec"])
PY
}
ours=() theirs=()
for i in $(seq "$rounds"); do
  ./target/release/runbench run scenarios/throughput.toml --runtimes "$runtime" --out "$work/ours-$i" >/dev/null
  ours+=("$(rps "$(ls -d "$work/ours-$i"/*/*/ | head -1)")")
  ./target/release/runbench run "$work/upstream.toml" --out "$work/theirs-$i" >/dev/null
  theirs+=("$(rps "$(ls -d "$work/theirs-$i"/*/*/ | head -1)")")
  echo "round $i: plugin ${ours[-1]} req/s, upstream ${theirs[-1]} req/s"
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
mo, mt = statistics.median(o), statistics.median(t)
print(f"median: plugin {mo:.0f} req/s (range {min(o):.0f}-{max(o):.0f}), "
      f"upstream {mt:.0f} req/s (range {min(t):.0f}-{max(t):.0f}); plugin/upstream {mo / mt:.3f}")
PY
