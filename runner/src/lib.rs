//! runbench: how do Rust async runtimes behave under a given load?
//!
//! Data flows one way: [`scenario`] (TOML, checked) -> [`plan`] (what to run, preflight) ->
//! [`run`] (supervised server and load-generator processes) -> [`measure`] (merged histograms,
//! counters) -> [`results`] (CSV, JSON, written as each runtime finishes) -> [`render`] (PNG
//! [`plot`]s and [`report`].md, drawn from the files alone).

pub mod audit;
pub mod authoring;
pub mod budget;
pub mod cli;
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
