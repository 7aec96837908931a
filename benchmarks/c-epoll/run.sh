#!/usr/bin/env bash
# Is runbench's load generator the bottleneck? Three runs of the same shape (100 connections,
# 64-byte echoes, server on CPU 0, client on CPU 1):
#   1. the minimal C epoll client against the minimal C epoll server (the machine's echo limit);
#   2. runbench's load generator against the same C server;
#   3. runbench's load generator against the tokio plugin.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p target/c-epoll
cc -O2 -o target/c-epoll/echo_server benchmarks/c-epoll/echo_server.c
cc -O2 -o target/c-epoll/echo_client benchmarks/c-epoll/echo_client.c
cargo build --release -q

echo "== 1. C client vs C server"
taskset -c 0 target/c-epoll/echo_server 7101 & server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 0.3
kill -0 $server 2>/dev/null || { echo "the C echo server did not start (port 7101 in use?)" >&2; exit 1; }
taskset -c 1 target/c-epoll/echo_client 7101 100 64 10
kill $server; wait $server 2>/dev/null || true

echo "== 2. runbench load generator vs C server"
./target/release/runbench run benchmarks/c-epoll/loadgen-vs-c.toml --out output

echo "== 3. runbench load generator vs the tokio plugin"
./target/release/runbench run scenarios/throughput.toml --runtimes tokio --out output
