#!/usr/bin/env bash
# What the timer primitives cost on this machine, in wall and thread-CPU microseconds: the facts
# behind the load generator's cost per request (docs/benchmarks.md).
# primitives.c: clock_gettime, a syscall, timerfd re-arm and arm+disarm, epoll_wait(0),
# sched_yield, a cross-CPU pipe round trip. sleep.c: N sleeps of D µs (mode 0 nanosleep, 1
# epoll_wait timeout, 2 timerfd + epoll_wait; optionally with the timer slack set), CPU per sleep.
set -euo pipefail
cd "$(dirname "$0")"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 primitives.c -o "$dir/primitives" -lpthread
cc -O2 sleep.c -o "$dir/sleep"
"$dir/primitives"
for us in 50 200 1000; do "$dir/sleep" 2000 "$us" 0; done
# Sleeps shorter than the time between sends at 100,000/s, with the generator's 1 ns timer slack:
# what one wait costs however short it is.
for us in 1 5 10; do "$dir/sleep" 20000 "$us" 0 1; done
"$dir/sleep" 2000 50 2
"$dir/sleep" 2000 1000 1
