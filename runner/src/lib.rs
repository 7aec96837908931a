//! runbench: how do Rust async runtimes behave under a given load?
//!
//! Data flows one way: [`scenario`] (TOML, checked) -> [`plan`] (what to run, preflight) ->
//! [`run`] (supervised server and [`loadgen`] processes) -> [`measure`] (the load processes'
//! [`protocol::LoadCounters`] and [`histograms::LoadHistograms`] merged in one place, the servers'
//! readings at the window's edges) -> [`audit`] and [`objectives`] (witnesses, thresholds) ->
//! [`results`] (one type per file of the run folder, written as each step finishes) ->
//! [`render`] (PNG [`plot`]s and [`report`].md, drawn from the files alone) and [`nightly`]
//! (history and verdicts, from the run's rows in memory).

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
