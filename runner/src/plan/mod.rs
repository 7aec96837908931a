//! Scenario + command-line overrides + the machine -> a [`Plan`]: which plugins, how many server
//! and load-generator processes, which source addresses. Refuses (preflight) what cannot work.

pub mod budget;
pub mod point;

use crate::cluster::Placement;
use crate::plugin::{self, PluginFile};
use crate::protocol::Ramp;
use crate::scenario::{Scenario, TargetSpec};
use runbench_plugin_abi::Workload;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// Descriptors a process keeps for itself beside its sockets (stdio, epoll, pipes, libraries).
pub const FD_RESERVE: usize = 128;
/// Connections per client source address: well under the 28k ephemeral ports of one
/// (source, destination) pair, leaving room for TIME_WAIT sockets of earlier runs.
pub const CONNECTIONS_PER_SOURCE: usize = 10_000;
/// Source blocks available for one run (127.x.y.2 ..= 127.x.y.251).
const SOURCES_PER_RUN: usize = 250;

/// What the command line changes of a scenario (`runbench run`'s options: their docs are its
/// help text).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Only these runtimes (comma-separated), overriding the scenario's list.
    #[arg(long, value_delimiter = ',')]
    pub runtimes: Option<Vec<String>>,
    /// Override the scenario's connection count.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Spread the server over K processes sharing the port (SO_REUSEPORT).
    #[arg(long)]
    pub server_processes: Option<usize>,
    /// Trials per runtime and point (overrides `[run] repeat`).
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Seed of the shuffled order and of the workload's drawn durations (overrides `[run]
    /// seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Allow an external [target] that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Run this plugin file instead of the built plugins (repeatable).
    #[arg(long = "plugin")]
    pub plugins: Vec<std::path::PathBuf>,
}

/// One load-generator process: a contiguous range of connection indices.
#[derive(Clone, Debug)]
pub struct Shard {
    pub first_connection: usize,
    pub connections: usize,
}

/// What is measured: a plugin, or an external echo server.
#[derive(Clone, Debug)]
pub enum Subject {
    Plugin(PluginFile),
    External(TargetSpec),
}

impl Subject {
    pub fn name(&self) -> &str {
        match self {
            Subject::Plugin(p) => &p.name,
            Subject::External(t) => &t.name,
        }
    }
}

pub use point::{Param, Point};

/// One measurement to make: which trial, point and subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub trial: usize,
    pub point: usize,
    pub subject: usize,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario with overrides applied (what meta.json records).
    pub scenario: Scenario,
    pub subjects: Vec<Subject>,
    /// Per subject, what it can take part in.
    pub limits: Vec<SubjectLimits>,
    pub points: Vec<Point>,
    pub server_processes: usize,
    pub nofile_limit: u64,
    /// Seed of the shuffles (recorded in meta.json).
    pub seed: u64,
    /// Execution order: per trial, points and subjects shuffled.
    pub steps: Vec<Step>,
    /// Where its processes run: this host, or the agents of a run across machines.
    pub placement: Placement,
}

impl Plan {
    /// The plan with its processes placed by `placement` (across machines: on the agents that
    /// joined, known only after the plan was checked).
    pub fn placed(self, placement: Placement) -> Plan {
        Plan { placement, ..self }
    }

    /// The load-generator processes for `point`.
    pub fn shards(&self, point: &Point) -> Vec<Shard> {
        let shards = split_shards(
            self.scenario.load.phases_peak(point.connections),
            self.nofile_limit,
        );
        // Across machines every load agent gets a share: as many shards as the limit needs,
        // rounded up to a multiple of the agents (shard i runs on agent i mod agents).
        let agents = self.placement.load_agents();
        if agents <= 1 {
            return shards;
        }
        let count = shards.len().div_ceil(agents) * agents;
        split_into(self.scenario.load.phases_peak(point.connections), count)
    }

    /// Why subject `k` cannot take part at `point` by its nature, if it cannot (its row is then
    /// `skipped`, before anything runs).
    pub fn skip_reason(&self, k: usize, point: &Point) -> Option<String> {
        let l = &self.limits[k];
        if let Some(why) = self.workload(point).unsupported(l.workloads) {
            return Some(why);
        }
        // The idle connections are the servers' to hold too.
        let peak = (self.scenario.load.phases_peak(point.connections)
            + self.scenario.load.idle_connections) as u64;
        if l.needs_tap && self.server_processes > 1 {
            let why = if self.scenario.server.processes_auto {
                format!(
                    "{peak} connections need {} server processes here (processes = \"auto\")",
                    self.server_processes
                )
            } else {
                format!(
                    "this run asks for {} server processes",
                    self.server_processes
                )
            };
            return Some(format!(
                "it drives one TAP device, which one server process holds, and {why}"
            ));
        }
        let per_process = peak.div_ceil(self.server_processes.max(1) as u64);
        if let Some(limit) = l.connection_limit.filter(|&limit| per_process > limit) {
            let need = if self.server_processes > 1 {
                format!(
                    "{per_process} in each of its {} server processes",
                    self.server_processes
                )
            } else {
                peak.to_string()
            };
            return Some(format!(
                "it serves at most {limit} connections at once (per server process) by design, \
                 and this point needs {need}"
            ));
        }
        if l.thread_per_connection {
            return threads_short(peak, self.server_processes);
        }
        None
    }

    /// What each request is at `point`, and what the server does with it.
    pub fn workload(&self, point: &Point) -> Workload {
        Workload {
            seed: self.seed,
            ..self.scenario.workload(&point.workload, point.payload_bytes)
        }
    }

    /// The connections and (open model) the rate over time at `point`: its values, then the
    /// phases' targets. What the load generators follow and the audit checks against.
    pub fn ramps(&self, point: &Point) -> (Ramp, Option<Ramp>) {
        let phases = |f: &dyn Fn(&crate::scenario::Phase) -> Option<f64>| {
            let list = &self.scenario.load.phases;
            list.iter()
                .map(|p| (p.duration.as_millis() as u64, f(p)))
                .collect::<Vec<_>>()
        };
        let connections = Ramp {
            start: point.connections as f64,
            phases: phases(&|p| p.connections.map(|c| c as f64)),
        };
        let rate = point.rate.map(|r| Ramp {
            start: r as f64,
            phases: phases(&|p| p.rate.map(|r| r as f64)),
        });
        (connections, rate)
    }

    /// Rough wall time of the whole plan, for --dry-run and the progress line.
    pub fn estimate(&self) -> Duration {
        self.steps.iter().map(|st| self.step_estimate(st)).sum()
    }

    /// Rough wall time of one step.
    pub fn step_estimate(&self, step: &Step) -> Duration {
        crate::plan::budget::plan_step_time(&self.scenario, self.points[step.point].connections)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Runtimes the scenario or `--runtimes` names that no built plugin is: `at` says where
    /// (the scenario's line, or the option), `message` which and what there is.
    #[error("{at}{message}")]
    UnknownRuntime { at: String, message: String },
    #[error("no plugins found in {}; build them with `cargo build --release` (or `just build`)", dir.display())]
    NoPlugins { dir: std::path::PathBuf },
    #[error("{0}")]
    Preflight(String),
    /// Bad command-line options (combinations the scenario alone cannot have).
    #[error("{0}")]
    Options(String),
    #[error("{}: {}", scenario.display(), message)]
    TooBig {
        scenario: std::path::PathBuf,
        message: String,
    },
}

/// Refuses `--runtimes` that would run a runtime twice (as two "trials"), or that would be
/// ignored beside `--plugin` or a `[target]`.
fn check_runtime_options(s: &Scenario, o: &Overrides) -> Result<(), PlanError> {
    let Some(names) = &o.runtimes else {
        return Ok(());
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(PlanError::Options(format!(
            "--runtimes lists `{twice}` twice; give each runtime once (use --repeat N for trials)"
        )));
    }
    if !o.plugins.is_empty() {
        return Err(PlanError::Options(
            "--runtimes cannot be combined with --plugin: the plugin files given are what runs"
                .into(),
        ));
    }
    if s.target.is_some() {
        return Err(PlanError::Options(format!(
            "--runtimes cannot be used with {}: its [target] is the only server measured",
            s.source.display()
        )));
    }
    Ok(())
}

/// Why `run` would refuse this scenario's target without `--allow-remote`, if it would.
fn remote_target(s: &Scenario) -> Option<String> {
    let t = s.target.as_ref()?;
    (!t.address.ip().is_loopback()).then(|| {
        format!(
            "target {} is not a loopback address; runbench only loads other machines with \
             --allow-remote",
            t.address
        )
    })
}

/// What `validate` checks beyond the file itself: the plan `run` would make, its preflight
/// included (descriptors, ports, threads, the plan's size), so `validate` refuses what `run`
/// would. Returns notes on what `run` needs beyond the scenario (e.g. `--allow-remote`) and the
/// runtimes it would skip, with why.
pub fn check(s: &Scenario, dir: &Path) -> anyhow::Result<Vec<String>> {
    // A remote target is a note here, not a refusal: `run --allow-remote` takes it.
    let overrides = Overrides {
        allow_remote: true,
        ..Overrides::default()
    };
    let plan = plan(s, &overrides, dir)?;
    // `run` writes each runtime's row skipped, with the reason; `validate` says at once that
    // no row would run.
    no_one_serves(s, &plan.subjects, &plan.limits)?;
    let mut notes: Vec<String> = remote_target(s)
        .map(|why| format!("{why}: `runbench run` refuses it without that option"))
        .into_iter()
        .collect();
    for (k, subject) in plan.subjects.iter().enumerate() {
        let skipped: Vec<String> = (plan.points.iter())
            .filter_map(|p| plan.skip_reason(k, p))
            .collect();
        if let Some(why) = skipped.first() {
            notes.push(format!(
                "`{}` would be skipped at {} of {} point(s): {why}",
                subject.name(),
                skipped.len(),
                plan.points.len()
            ));
        }
    }
    Ok(notes)
}

fn check_size(s: &Scenario, subjects: usize) -> Result<(), PlanError> {
    crate::plan::budget::check(s, subjects)
        .map(|_| ())
        .map_err(|message| PlanError::TooBig {
            scenario: s.source.clone(),
            message,
        })
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
    let known: Vec<String> = available.iter().map(|p| p.name.clone()).collect();
    let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(n)).collect();
    if let Some(first) = unknown.first() {
        let described: Vec<String> = unknown
            .iter()
            .map(|name| {
                let closest = known
                    .iter()
                    .min_by_key(|k| strsim::levenshtein(k, name))
                    .filter(|k| strsim::levenshtein(k, name) <= 2);
                match closest {
                    Some(k) => format!("`{name}` (did you mean `{k}`?)"),
                    None => format!("`{name}`"),
                }
            })
            .collect();
        let message = format!(
            "unknown runtime{} {}; built plugins: {}",
            if unknown.len() > 1 { "s" } else { "" },
            described.join(", "),
            known.join(", ")
        );
        let at = match wanted {
            Some(_) => "--runtimes: ".to_string(),
            None => runtime_at(scenario, first),
        };
        return Err(PlanError::UnknownRuntime { at, message }.into());
    }
    Ok(names
        .iter()
        .filter_map(|n| available.iter().find(|p| &p.name == n).cloned())
        .collect())
}

/// Where the scenario file names runtime `name`: `file:line:column: `runtimes`: `, or the file
/// alone when its text cannot be read again or does not spell the name plainly.
fn runtime_at(scenario: &Scenario, name: &str) -> String {
    let file = scenario.source.display().to_string();
    let text = std::fs::read(&scenario.source)
        .ok()
        .filter(|b| b.len() as u64 <= crate::scenario::MAX_FILE_BYTES)
        .and_then(|b| String::from_utf8(b).ok());
    let Some(text) = text else {
        return format!("{file}: ");
    };
    let quoted = format!("\"{name}\"");
    let after_key = text.find("runtimes").unwrap_or(0);
    match text[after_key..].find(&quoted) {
        Some(i) => {
            let start = after_key + i;
            let line = text[..start].matches('\n').count() + 1;
            let line_start = text[..start].rfind('\n').map_or(0, |j| j + 1);
            let column = text[line_start..start].chars().count() + 1;
            format!("{file}:{line}:{column}: `runtimes`: ")
        }
        None => format!("{file}: "),
    }
}

/// `--plugin PATH` files, named by their headers (checked now, so a bad file is bad input).
fn explicit_plugins(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Subject>> {
    paths
        .iter()
        .map(|path| {
            let loaded = plugin::load(path)?;
            Ok(Subject::Plugin(PluginFile {
                name: loaded.name().to_string(),
                path: path.clone(),
            }))
        })
        .collect()
}

/// The cartesian product of every swept parameter, in file order.
pub fn points(s: &Scenario) -> Vec<Point> {
    let rates: Vec<Option<u64>> = if s.load.rate.is_empty() {
        vec![None]
    } else {
        s.load.rate.iter().map(|&r| Some(r)).collect()
    };
    let mut out = Vec::new();
    for &connections in &s.load.connections {
        for &payload_bytes in &s.load.payload_bytes {
            for &rate in &rates {
                for &threads in &s.server.threads {
                    for &max_connections in &s.server.max_connections {
                        for w in &s.workloads {
                            out.push(Point {
                                connections,
                                payload_bytes,
                                rate,
                                threads,
                                max_connections,
                                workload: w.name.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Trials x points x subjects, with points and subjects shuffled per trial so slow drift of the
/// machine biases no runtime (and rate steps run in shuffled order).
pub fn schedule(trials: usize, points: usize, subjects: usize, seed: u64) -> Vec<Step> {
    use rand::seq::SliceRandom;
    let mut rng = crate::stats::seeded_rng(seed);
    let mut steps = Vec::new();
    for trial in 0..trials {
        let mut point_order: Vec<usize> = (0..points).collect();
        point_order.shuffle(&mut rng);
        for point in point_order {
            let mut order: Vec<usize> = (0..subjects).collect();
            order.shuffle(&mut rng);
            steps.extend(order.into_iter().map(|subject| Step {
                trial,
                point,
                subject,
            }));
        }
    }
    steps
}

/// The plan of `scenario` with the command line's `overrides` and its plugins from `dir`, every
/// process on this host until [`Plan::placed`] says otherwise.
pub fn plan(scenario: &Scenario, overrides: &Overrides, dir: &Path) -> anyhow::Result<Plan> {
    let mut scenario = scenario.clone();
    if let Some(n) = overrides.connections {
        anyhow::ensure!(n > 0, "--connections must be at least 1");
        scenario.load.connections = vec![n];
    }
    if let Some(k) = overrides.server_processes {
        anyhow::ensure!(
            (1..=256).contains(&k),
            "--server-processes must be between 1 and 256"
        );
        scenario.server.processes = k;
        scenario.server.processes_auto = false;
    }
    if let Some(r) = overrides.repeat {
        anyhow::ensure!(
            (1..=1000).contains(&r),
            "--repeat must be between 1 and 1000"
        );
        scenario.run.repeat = r;
    }
    if overrides.seed.is_some() {
        scenario.run.seed = overrides.seed;
    }
    check_runtime_options(&scenario, overrides)?;
    let subjects = match &scenario.target {
        Some(t) => {
            if let Some(why) = remote_target(&scenario).filter(|_| !overrides.allow_remote) {
                return Err(
                    PlanError::Preflight(format!("{}: {why}", scenario.source.display())).into(),
                );
            }
            vec![Subject::External(t.clone())]
        }
        None if !overrides.plugins.is_empty() => explicit_plugins(&overrides.plugins)?,
        None => resolve_runtimes(&scenario, overrides.runtimes.as_deref(), dir)?
            .into_iter()
            .map(Subject::Plugin)
            .collect(),
    };
    // What ran, not what the file asked: the command line's choice of runtimes is recorded
    // with the scenario (meta.json, report.md).
    if overrides.runtimes.is_some() || !overrides.plugins.is_empty() {
        scenario.runtimes = Some(subjects.iter().map(|s| s.name().to_string()).collect());
    }
    // Before any point or step is built: a sweep may multiply to more than memory holds.
    check_size(&scenario, subjects.len())?;
    let nofile_limit = crate::os::sys::raise_nofile()?;
    if scenario.server.processes_auto {
        scenario.server.processes = auto_processes(
            scenario.load.peak_connections() + scenario.load.idle_connections,
            nofile_limit,
        );
    }
    preflight(&scenario, nofile_limit)?;
    let limits = subjects.iter().map(SubjectLimits::of).collect();
    let points = points(&scenario);
    let seed = scenario.run.seed.unwrap_or_else(crate::stats::fresh_seed);
    scenario.run.seed = Some(seed);
    let steps = schedule(scenario.run.repeat, points.len(), subjects.len(), seed);
    Ok(Plan {
        server_processes: scenario.server.processes,
        scenario,
        subjects,
        limits,
        points,
        nofile_limit,
        seed,
        steps,
        placement: Placement::local(),
    })
}

/// Refuses a workload that no runtime of the run serves (every row would be skipped), naming
/// what each lacks.
fn no_one_serves(
    s: &Scenario,
    subjects: &[Subject],
    limits: &[SubjectLimits],
) -> Result<(), PlanError> {
    for w in &s.workloads {
        let why: Vec<String> = (subjects.iter().zip(limits))
            .filter_map(|(subject, l)| {
                let reason = w.workload.unsupported(l.workloads)?;
                Some(format!("`{}`: {reason}", subject.name()))
            })
            .collect();
        if !subjects.is_empty() && why.len() == subjects.len() {
            let which = match w.name.as_str() {
                "" => String::new(),
                name => format!(" `{name}`"),
            };
            return Err(PlanError::Preflight(format!(
                "{}: no runtime of this run serves the workload{which} ({}); {}",
                s.source.display(),
                w.parts,
                why.join("; ")
            )));
        }
    }
    Ok(())
}

/// `processes = "auto"`: the fewest server processes whose share of `connections` fits one
/// process's descriptors.
pub fn auto_processes(connections: usize, nofile: u64) -> usize {
    let per_process = (nofile as usize).saturating_sub(FD_RESERVE).max(1);
    connections.div_ceil(per_process).clamp(1, 256)
}

/// Why `peak` connections, one thread each over `processes` server processes, cannot all get
/// a thread on this machine now: its thread ceiling less the threads already running, or the
/// per-process ceiling of stack mappings.
fn threads_short(peak: u64, processes: usize) -> Option<String> {
    let limits = runbench_plugin_abi::os::ThreadLimits::read();
    let in_use = crate::os::procfs::threads_running().unwrap_or(0);
    let per_process = peak.div_ceil(processes.max(1) as u64);
    let describe = limits.describe();
    if let Some(ceiling) = limits.machine_ceiling() {
        let free = ceiling.saturating_sub(in_use);
        if peak > free {
            return Some(format!(
                "it needs a thread per connection, {peak} threads, and this machine has room for \
                 {free} more ({in_use} already in use; {describe})"
            ));
        }
    }
    match limits.process_ceiling() {
        Some(ceiling) if per_process > ceiling => Some(format!(
            "it needs a thread per connection, {per_process} in each server process, and a \
             process can hold {ceiling} ({describe})"
        )),
        _ => None,
    }
}

/// What a subject can take part in by its nature, read from its plugin header at plan time.
#[derive(Clone, Copy, Debug)]
pub struct SubjectLimits {
    /// The parts of a workload it serves (`runbench_plugin_abi::WORKLOAD_CPU` bits).
    pub workloads: u32,
    /// Drives one TAP device, which one server process holds.
    pub needs_tap: bool,
    /// Most connections it can serve at once.
    pub connection_limit: Option<u64>,
    /// Serves each connection on a thread of its own.
    pub thread_per_connection: bool,
    /// What serves its HTTP (the plugin header's `http_stack`); empty where it has none or says
    /// nothing (an external server).
    pub http_stack: &'static str,
}

impl Default for SubjectLimits {
    /// A subject that says nothing of itself: an external server (whose work is its own) or a
    /// plugin that cannot be loaded (its row fails when it runs, with the reason).
    fn default() -> Self {
        SubjectLimits {
            workloads: u32::MAX,
            needs_tap: false,
            connection_limit: None,
            thread_per_connection: false,
            http_stack: "",
        }
    }
}

impl SubjectLimits {
    fn of(subject: &Subject) -> SubjectLimits {
        match subject {
            // A plugin that cannot even be loaded fails its row when it runs, with the reason.
            Subject::Plugin(p) => match plugin::load(&p.path) {
                Ok(l) => SubjectLimits {
                    workloads: l.workloads(),
                    needs_tap: l.needs_tap(),
                    connection_limit: l.connection_limit(),
                    thread_per_connection: l.thread_per_connection(),
                    http_stack: l.http_stack(),
                },
                Err(_) => SubjectLimits::default(),
            },
            Subject::External(_) => SubjectLimits::default(),
        }
    }
}

/// Checks descriptor and port budgets for the largest point of the scenario.
pub fn preflight(s: &Scenario, nofile: u64) -> Result<(), PlanError> {
    let per_process = (nofile as usize).saturating_sub(FD_RESERVE);
    let idle = s.load.idle_connections;
    if idle > per_process {
        return Err(PlanError::Preflight(format!(
            "scenario `{}` holds {idle} idle connections; runbench holds them open itself, and \
             one process may open at most {nofile} files (RLIMIT_NOFILE hard limit) and keeps \
             {FD_RESERVE} for itself: at most {per_process} idle connections",
            s.name
        )));
    }
    // The servers hold the idle connections beside the active ones.
    let conns = s.load.peak_connections() + idle;
    let k = s.server.processes;
    let per_server = conns.div_ceil(k);
    if s.target.is_none() && per_server > per_process {
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
    Ok(())
}

/// Splits `conns` connections over as few load-generator processes as the descriptor limit allows.
pub fn split_shards(conns: usize, nofile: u64) -> Vec<Shard> {
    let per_process = (nofile as usize).saturating_sub(FD_RESERVE).max(1);
    split_into(conns, conns.div_ceil(per_process).max(1))
}

/// `conns` connections in `shard_count` shards as equal as can be, in order.
pub fn split_into(conns: usize, shard_count: usize) -> Vec<Shard> {
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
    shards
}

/// Client source address for connection `index` of run number `run`. Each run gets its own
/// block (127.<hi>.<lo>.x), so TIME_WAIT sockets of one run never block the next.
pub fn source_address(run: usize, index: usize) -> Ipv4Addr {
    let block = (run % 65_000) + 1;
    let source = (index / CONNECTIONS_PER_SOURCE) + 2;
    Ipv4Addr::new(127, (block >> 8) as u8, (block & 0xff) as u8, source as u8)
}

/// The expanded plan in words, for --dry-run.
pub fn describe(plan: &Plan) -> String {
    let s = &plan.scenario;
    let mut out = format!(
        "scenario {} ({}): {} step(s) = {} trial(s) x {} point(s) x {} runtime(s), seed {}\n",
        s.name,
        s.source.display(),
        plan.steps.len(),
        s.run.repeat,
        plan.points.len(),
        plan.subjects.len(),
        plan.seed
    );
    for (n, st) in plan.steps.iter().enumerate() {
        let p = &plan.points[st.point];
        let shards = plan.shards(p).len();
        out.push_str(&format!(
            "  {:>4}. trial {} {:<16} {} ({} load process(es), {} server process(es))\n",
            n + 1,
            st.trial + 1,
            plan.subjects[st.subject].name(),
            p.label(),
            shards,
            plan.server_processes
        ));
    }
    if plan.steps.len() > 1 {
        // The order is drawn from the seed: a run without it draws another.
        out.push_str(&format!(
            "  the order above is seed {}'s; `run` draws a fresh one unless given `--seed {}` \
             (or `[run] seed`)\n",
            plan.seed, plan.seed
        ));
    }
    let est = plan.estimate();
    out.push_str(&format!(
        "  load per step: {} warmup + {} measured; estimated total: {}\n",
        humantime::format_duration(s.load.warmup),
        humantime::format_duration(s.load.duration),
        humantime::format_duration(Duration::from_secs(est.as_secs().max(1)))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::threads_short;

    #[test]
    fn a_thread_per_connection_beyond_the_machines_limits_is_refused_with_them() {
        assert_eq!(threads_short(10, 1), None);
        // No kernel allows this many threads (pid_max is at most 2^22).
        let why = threads_short(10_000_000, 1).expect("too many threads");
        assert!(
            why.contains("10000000 threads") && why.contains("kernel.pid_max"),
            "{why}"
        );
    }
}
