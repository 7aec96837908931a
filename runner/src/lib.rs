//! runbench: how do Rust async runtimes behave under a given load?
//!
//! Data flows one way: [`scenario`] (TOML, checked) -> [`plan`] (the points, each with its
//! [`runbench_plugin_abi::Workload`], where each process runs ([`cluster::Placement`]),
//! preflight) -> [`run`] (supervised server and [`loadgen`] processes, [`supervise`]) ->
//! [`measure`] (the load processes' [`protocol::LoadCounters`] and
//! [`protocol::histograms::LoadHistograms`] merged in one place, the servers' readings at the
//! window's edges, the audit's witnesses) -> [`judge`] (every pass or fail: row problems, RSS
//! trend, `[slo]`, a probe's verdict) -> [`results`] (one type per file of the run folder,
//! written as each step finishes) -> [`plot`] (PNG charts and report.md, drawn from the files
//! alone) and [`nightly`] (history and verdicts, from the run's rows in memory). [`console`] is
//! what a person sees meanwhile; [`os`] what runbench reads from the operating system.
//! `benchmarks/structure/deps.py` checks that no module depends on a later layer.

pub mod authoring;
pub mod cli;
pub mod cluster;
pub mod console;
pub mod deploy;
pub mod error;
pub mod judge;
pub mod loadgen;
pub mod measure;
pub mod nightly;
pub mod os;
pub mod plan;
pub mod plot;
pub mod plugin;
pub mod protocol;
pub mod results;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod supervise;
