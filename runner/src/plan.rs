//! Scenario + command-line overrides + the machine -> a [`Plan`]: which plugins, how many server
//! and load-generator processes, which source addresses. Refuses (preflight) what cannot work.

use crate::plugin::{self, PluginFile};
use crate::scenario::Scenario;
use std::net::Ipv4Addr;
use std::path::Path;

/// Descriptors a process keeps for itself beside its sockets (stdio, epoll, pipes, libraries).
pub const FD_RESERVE: usize = 128;
/// Connections per client source address: well under the 28k ephemeral ports of one
/// (source, destination) pair, leaving room for TIME_WAIT sockets of earlier runs.
pub const CONNECTIONS_PER_SOURCE: usize = 10_000;
/// Source blocks available for one run (127.x.y.2 ..= 127.x.y.251).
const SOURCES_PER_RUN: usize = 250;

#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub runtimes: Option<Vec<String>>,
    pub connections: Option<usize>,
    pub server_processes: Option<usize>,
}

/// One load-generator process: its connections and the source addresses they come from.
#[derive(Clone, Debug)]
pub struct Shard {
    pub first_connection: usize,
    pub connections: usize,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario with overrides applied (what meta.json records).
    pub scenario: Scenario,
    pub plugins: Vec<PluginFile>,
    pub server_processes: usize,
    pub shards: Vec<Shard>,
    pub nofile_limit: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{}: unknown runtime `{name}`; built plugins: {}{hint}", scenario.display(), available.join(", "))]
    UnknownRuntime {
        scenario: std::path::PathBuf,
        name: String,
        available: Vec<String>,
        hint: String,
    },
    #[error("no plugins found in {}; build them with `cargo build --release` (or `just build`)", dir.display())]
    NoPlugins { dir: std::path::PathBuf },
    #[error("{0}")]
    Preflight(String),
}

/// The plugins a scenario asks for (or every built one), in the order given.
pub fn resolve_runtimes(
    scenario: &Scenario,
    wanted: Option<&[String]>,
    dir: &Path,
) -> anyhow::Result<Vec<PluginFile>> {
    let available = plugin::discover(dir)?;
    if available.is_empty() {
        return Err(PlanError::NoPlugins {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let Some(names) = wanted.or(scenario.runtimes.as_deref()) else {
        return Ok(available);
    };
    let mut out = Vec::new();
    for name in names {
        match available.iter().find(|p| &p.name == name) {
            Some(p) => out.push(p.clone()),
            None => {
                let names: Vec<String> = available.iter().map(|p| p.name.clone()).collect();
                let hint = names
                    .iter()
                    .min_by_key(|n| strsim::levenshtein(n, name))
                    .filter(|n| strsim::levenshtein(n, name) <= 2)
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                return Err(PlanError::UnknownRuntime {
                    scenario: scenario.source.clone(),
                    name: name.clone(),
                    available: names,
                    hint,
                }
                .into());
            }
        }
    }
    Ok(out)
}

pub fn plan(scenario: &Scenario, overrides: &Overrides, dir: &Path) -> anyhow::Result<Plan> {
    let mut scenario = scenario.clone();
    if let Some(n) = overrides.connections {
        anyhow::ensure!(n > 0, "--connections must be at least 1");
        scenario.load.connections = n;
    }
    if let Some(k) = overrides.server_processes {
        anyhow::ensure!(
            (1..=256).contains(&k),
            "--server-processes must be between 1 and 256"
        );
        scenario.server.processes = k;
    }
    let plugins = resolve_runtimes(&scenario, overrides.runtimes.as_deref(), dir)?;
    let nofile_limit = crate::sys::raise_nofile()?;
    let shards = preflight(&scenario, nofile_limit)?;
    Ok(Plan {
        server_processes: scenario.server.processes,
        scenario,
        plugins,
        shards,
        nofile_limit,
    })
}

/// Checks descriptor and port budgets; splits the load over processes.
pub fn preflight(s: &Scenario, nofile: u64) -> Result<Vec<Shard>, PlanError> {
    let per_process = (nofile as usize).saturating_sub(FD_RESERVE);
    let conns = s.load.connections;
    let k = s.server.processes;
    let per_server = conns.div_ceil(k);
    if per_server > per_process {
        let needed = conns.div_ceil(per_process.max(1));
        return Err(PlanError::Preflight(format!(
            "scenario `{name}` needs {conns} connections; with {k} server process(es) each would hold \
             {per_server} sockets, but one process may open at most {nofile} files (RLIMIT_NOFILE hard \
             limit) and keeps {FD_RESERVE} for itself.\n\
             Ways out:\n  \
             - raise the hard limit (e.g. `ulimit -Hn`, /etc/security/limits.conf), if this machine allows it;\n  \
             - measure fewer connections: --connections {fit};\n  \
             - spread the server over processes sharing the port: --server-processes {needed} \
             (SO_REUSEPORT; recorded in the results, since it changes what is measured).",
            name = s.name,
            fit = per_process * k,
        )));
    }
    let sources_needed = conns.div_ceil(CONNECTIONS_PER_SOURCE);
    if sources_needed > SOURCES_PER_RUN {
        return Err(PlanError::Preflight(format!(
            "{conns} connections need {sources_needed} client source addresses; at most {SOURCES_PER_RUN} \
             are used per run (at most {} connections)",
            SOURCES_PER_RUN * CONNECTIONS_PER_SOURCE
        )));
    }
    let shard_count = conns.div_ceil(per_process.max(1));
    let base = conns / shard_count;
    let extra = conns % shard_count;
    let mut shards = Vec::new();
    let mut first = 0;
    for i in 0..shard_count {
        let n = base + usize::from(i < extra);
        shards.push(Shard {
            first_connection: first,
            connections: n,
        });
        first += n;
    }
    Ok(shards)
}

/// Client source address for connection `index` of run number `run`. Each run gets its own
/// block (127.<hi>.<lo>.x), so TIME_WAIT sockets of one run never block the next.
pub fn source_address(run: usize, index: usize) -> Ipv4Addr {
    let block = (run % 65_000) + 1;
    let source = (index / CONNECTIONS_PER_SOURCE) + 2;
    Ipv4Addr::new(127, (block >> 8) as u8, (block & 0xff) as u8, source as u8)
}
