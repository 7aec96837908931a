# runbench tasks. `just run FILE [ARGS]` and `just test` are the two README commands.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build the runner and every plugin in release.
build:
    cargo build --release

# Run scenarios: `just run scenarios/smoke.toml --runtimes tokio`.
run *ARGS: build
    ./target/release/runbench run {{ARGS}}

# List the built plugins.
list: build
    ./target/release/runbench list

# Check scenario files without running them.
validate *FILES: build
    ./target/release/runbench validate {{FILES}}

# The whole test suite: format, lints, then every test (test-only plugins included).
test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo build --workspace
    # The closing line counts every test binary's results ("N passed, N failed").
    cargo test --workspace 2>&1 | awk '{ print } /^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }'

# Is the load generator the bottleneck? C epoll client vs runbench's, against a C epoll server.
bench-loadgen:
    benchmarks/c-epoll/run.sh

# (`just bench-loadgen-cost 20000 50000` for other rates)
# What the load generator costs per request, closed and open, at several rates.
bench-loadgen-cost *RATES:
    benchmarks/loadgen-cost/run.sh {{RATES}}

# (`just bench-ontime 100000` for other rates; ROUNDS=5 for more rounds)
# The open model against an on-time C client and one C echo server: CPU/request, p50, p99.
bench-ontime *RATES:
    benchmarks/ontime/run.sh {{RATES}}

# (exit code 3 = a confirmed regression; `just nightly --out /tmp/n --trials 3`)
# The nightly: every scenarios/nightly/*.toml, history, verdicts, trend plots, nightly.md.
nightly *ARGS: build
    ./target/release/runbench nightly {{ARGS}}

# Fuzz the scenario parser for SECONDS with cargo-fuzz (libFuzzer; needs a nightly toolchain).
fuzz SECONDS="60":
    #!/usr/bin/env bash
    set -euo pipefail
    if ! rustup toolchain list | grep -q '^nightly'; then
        echo "just fuzz: cargo-fuzz needs a nightly toolchain; installing it" >&2
        if ! rustup toolchain install nightly --profile minimal; then
            echo "just fuzz: no nightly toolchain here and it could not be installed; fuzzing needs" >&2
            echo "  nightly (cargo-fuzz builds with -Zsanitizer). Install it with" >&2
            echo "  'rustup toolchain install nightly' where that is possible." >&2
            exit 1
        fi
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    # The corpus (fuzz/corpus/scenario_parse) starts from seed-*.toml, copies of shipped scenarios.
    cargo +nightly fuzz run scenario_parse -- \
        -max_total_time={{SECONDS}} -dict={{justfile_directory()}}/fuzz/scenario.dict
