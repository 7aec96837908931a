//! meta.json: what was run, where, with what — enough to reproduce or to refuse a comparison.

use crate::scenario::Scenario;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    pub runbench_version: &'static str,
    pub scenario: Scenario,
    pub scenario_file: String,
    pub server_processes: usize,
    pub loadgen_processes: usize,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub host: HostInfo,
    pub rustc: &'static str,
    pub git_commit: &'static str,
    pub plugins: Vec<PluginInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PluginInfo {
    pub runtime: String,
    pub path: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostInfo {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub hostname: String,
    pub nofile_limit: u64,
}

impl HostInfo {
    pub fn read(nofile_limit: u64) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        HostInfo {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease"),
            hostname: read("/proc/sys/kernel/hostname"),
            nofile_limit,
        }
    }
}

pub const RUSTC_VERSION: &str = env!("RUNBENCH_RUSTC_VERSION");
pub const GIT_COMMIT: &str = env!("RUNBENCH_GIT_COMMIT");
