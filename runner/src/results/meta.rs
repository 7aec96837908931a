//! meta.json: what was run, where, with what — enough to reproduce or to refuse a comparison.
//! One type writes it and reads it back (`runbench plot`, `compare`); every field has a default,
//! so a meta.json from an older runbench, or a partial one, still reads.

use crate::plan::{Plan, Subject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the run stands: `running` until it ends (a run that still says so was killed),
/// `complete`, `interrupted` (SIGINT, SIGTERM or SIGHUP; `interrupted_by` names the signal), or
/// `write_failed` (a result file could not be written, `write_error` says which; the run stopped
/// there and the files hold the measurements up to the last complete write).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Running,
    Complete,
    Interrupted,
    WriteFailed,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub status: RunStatus,
    pub interrupted_by: Option<String>,
    pub write_error: Option<String>,
    /// Measurements planned (trials x points x runtimes) and those that ran to the end.
    pub steps_planned: usize,
    pub steps_done: usize,
    pub runbench_version: String,
    /// The command that made the run, as it was typed (its arguments, the program first).
    pub command_line: Vec<String>,
    /// Every file the run wrote in its folder (the result files after each step; the plots and
    /// report.md once the run ended).
    pub files: Vec<String>,
    /// The scenario as resolved (overrides applied), as `scenario::Scenario` serialises it.
    pub scenario: serde_json::Value,
    pub scenario_file: String,
    pub server_processes: usize,
    /// Seed of the trial order shuffles and the bootstrap; pass `--seed` to repeat the order.
    pub seed: u64,
    pub points: Vec<String>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Stop signal during the load (seconds after its start), or null: after the load.
    pub shutdown_at_s: Option<f64>,
    pub interval_s: f64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub host: HostInfo,
    pub rustc: String,
    pub git_commit: String,
    pub plugins: Vec<PluginInfo>,
    /// Per-runtime caveats a run records (report.md shows them beside the standing ones).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime_notes: BTreeMap<String, String>,
    /// A run across machines: its agents, their clock offsets and round trips.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<crate::cluster::AgentInfo>,
    /// How far apart any two agents' start instants can be, from their offsets' errors (ns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_skew_bound_ns: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginInfo {
    pub runtime: String,
    pub path: String,
    /// SHA-256 of the library file, so a result names exactly what was loaded.
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Meta {
    /// The scenario's name (the output folder's name).
    pub fn scenario_name(&self) -> String {
        self.scenario_text("/name").unwrap_or_default()
    }

    /// A text field of the recorded scenario, e.g. `/load/warmup`.
    pub fn scenario_text(&self, pointer: &str) -> Option<String> {
        self.scenario.pointer(pointer)?.as_str().map(str::to_string)
    }
}

impl Meta {
    pub fn new(plan: &Plan, started: chrono::DateTime<chrono::Utc>) -> Meta {
        let s = &plan.scenario;
        Meta {
            status: RunStatus::Running,
            interrupted_by: None,
            write_error: None,
            steps_planned: plan.steps.len(),
            steps_done: 0,
            runbench_version: env!("CARGO_PKG_VERSION").into(),
            command_line: std::env::args().collect(),
            files: Vec::new(),
            scenario: serde_json::to_value(s).expect("a scenario serialises"),
            scenario_file: s.source.display().to_string(),
            server_processes: plan.server_processes,
            seed: plan.seed,
            points: plan.points.iter().map(|p| p.label()).collect(),
            warmup_s: s.load.warmup.as_secs_f64(),
            duration_s: s.load.duration.as_secs_f64(),
            shutdown_at_s: s.shutdown.at.map(|d| d.as_secs_f64()),
            interval_s: s.run.interval.as_secs_f64(),
            started_at: started.to_rfc3339(),
            finished_at: None,
            host: HostInfo::read(plan.nofile_limit),
            rustc: RUSTC_VERSION.into(),
            git_commit: GIT_COMMIT.into(),
            plugins: plan
                .subjects
                .iter()
                .filter_map(|s| match s {
                    Subject::Plugin(p) => Some(PluginInfo {
                        runtime: p.name.clone(),
                        path: p.path.display().to_string(),
                        sha256: crate::plugin::sha256_file(&p.path),
                        note: None,
                    }),
                    Subject::External(_) => None,
                })
                .collect(),
            runtime_notes: BTreeMap::new(),
            agents: plan
                .placement
                .meta_agents()
                .map(|(a, _)| a)
                .unwrap_or_default(),
            start_skew_bound_ns: plan.placement.meta_agents().map(|(_, s)| s),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub hostname: String,
    pub nofile_limit: u64,
}

impl HostInfo {
    pub fn read(nofile_limit: u64) -> Self {
        let (cpu_model, kernel, hostname) = crate::os::procfs::machine();
        HostInfo {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            hostname,
            nofile_limit,
        }
    }
}

pub const RUSTC_VERSION: &str = env!("RUNBENCH_RUSTC_VERSION");
pub const GIT_COMMIT: &str = env!("RUNBENCH_GIT_COMMIT");
