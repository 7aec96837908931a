//! runbench: how do Rust async runtimes behave under a given load?
//!
//! Data flows one way: [`scenario`] (TOML, checked) -> [`plan`] (what to run, preflight) ->
//! [`run`] (supervised server and [`loadgen`] processes) -> [`measure`] (the load processes'
//! [`protocol::LoadCounters`] and [`histograms::LoadHistograms`] merged in one place, the servers'
//! readings at the window's edges) -> [`audit`] and [`objectives`] (witnesses, thresholds) ->
//! [`results`] (one type per file of the run folder, written as each step finishes) ->
//! [`render`] (PNG [`plot`]s and [`report`].md, drawn from the files alone) and [`nightly`]
//! (history and verdicts, from the run's rows in memory).

pub mod audit;
pub mod authoring;
pub mod budget;
pub mod cli;
pub mod cluster;
pub mod deploy;
pub mod error;
pub mod histograms;
pub mod interrupt;
pub mod loadgen;
pub mod measure;
pub mod netns;
pub mod nightly;
pub mod notes;
pub mod objectives;
pub mod plan;
pub mod plot;
pub mod plugin;
pub mod procfs;
pub mod progress;
pub mod protocol;
pub mod render;
pub mod report;
pub mod results;
pub mod rss_trend;
pub mod run;
pub mod scenario;
pub mod serve_child;
pub mod stats;
pub mod supervise;
pub mod sys;
pub mod terminal;
pub mod timeline;
