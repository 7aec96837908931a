//! Scenario files: TOML -> [`raw`] serde structs -> a checked [`Scenario`]. Every number, duration
//! and combination is checked here, with messages that point at the file, line and field.

mod error;
mod objectives;
pub mod raw;
mod workload;

pub use error::ScenarioError;
pub use objectives::{ErrorBudget, Percentile, Search, Slo, MAX_PROBES};
pub use workload::{
    describe as describe_workload, WorkloadSpec, MAX_ANSWER_MEMORY, MAX_FANOUT_TASKS, MAX_HOPS,
    MAX_PART_DURATION, MAX_RESPONSE_BYTES, MAX_TASKS_ALIVE,
};

use raw::{OneOrMany, RawScenario};
use runbench_plugin_abi::{Protocol, Workload, MAX_HEADER_BYTES};
use serde::Serialize;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Payloads above this are refused: the plugins and load generator keep messages in memory.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;
/// The longest `load.send_window`: a send grouped with later ones is late by up to the window,
/// and beyond a millisecond it would count as late (`protocol::LATE_SEND`).
pub const MAX_SEND_WINDOW: Duration = Duration::from_micros(500);
/// Hard ceiling for one measurement, so a typo cannot occupy a machine for a day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Upper bound for connection counts (far above what one machine can hold; the preflight is the
/// real check).
pub const MAX_CONNECTIONS: i64 = 1_000_000;
/// The shortest measured window: below it no request may complete inside the window, and the
/// load generator's millisecond schedule rounds it to nothing.
pub const MIN_DURATION: Duration = Duration::from_millis(100);
/// Scenario files above this size are refused before they are read (the shipped ones are under
/// 2 KB), so no input makes the parser allocate without bound.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Longest scenario or target name: it becomes a folder name and a table entry.
pub const MAX_NAME_LEN: usize = 100;

/// A validated scenario. Lists are sweeps: every combination is a point of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(skip)]
    pub source: PathBuf,
    /// `None`: every built plugin.
    pub runtimes: Option<Vec<String>>,
    pub server: ServerSpec,
    pub load: LoadSpec,
    /// `[workload]`'s protocol keys.
    pub protocol: ProtocolSpec,
    pub shutdown: ShutdownSpec,
    pub run: RunSpec,
    pub target: Option<TargetSpec>,
    pub slo: Option<Slo>,
    pub search: Option<Search>,
    /// What each request is and what the server does with it: one, or a sweep of named ones
    /// (`[workload]`, with `[server] work`/`sleep` folded in).
    pub workloads: Vec<WorkloadSpec>,
}

/// What the bytes on a connection are, and how an HTTP client sends them.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProtocolSpec {
    #[serde(serialize_with = "protocol_name")]
    pub protocol: Protocol,
    /// Requests in flight per connection (closed model).
    pub pipeline: u32,
    /// An extra request header's bytes.
    pub header_bytes: u32,
}

impl Default for ProtocolSpec {
    fn default() -> Self {
        ProtocolSpec {
            protocol: Protocol::Echo,
            pipeline: 1,
            header_bytes: 0,
        }
    }
}

fn protocol_name<S: serde::Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// The most requests a connection may keep in flight (`[workload] pipeline`).
pub const MAX_PIPELINE: i64 = 1024;

#[derive(Clone, Debug, Serialize)]
pub struct ServerSpec {
    pub threads: Vec<usize>,
    pub cpus: Vec<usize>,
    /// 0 = no limit.
    pub max_connections: Vec<usize>,
    /// Server processes sharing the port with SO_REUSEPORT (with `processes_auto`, the plan
    /// decides and writes its choice here).
    pub processes: usize,
    /// `processes = "auto"`: the fewest the open-files limit allows.
    pub processes_auto: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Closed,
    Open,
}

#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    #[serde(with = "as_text")]
    pub duration: Duration,
    pub connections: Option<usize>,
    pub rate: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadSpec {
    pub model: Model,
    pub connections: Vec<usize>,
    /// Bytes per request (`[workload] request_bytes`, or its older name `payload_bytes`).
    pub payload_bytes: Vec<u64>,
    /// Open model only; empty for closed.
    pub rate: Vec<u64>,
    #[serde(with = "as_text")]
    pub warmup: Duration,
    /// The measured window (with phases: their total minus warmup).
    #[serde(with = "as_text")]
    pub duration: Duration,
    pub cpus: Vec<usize>,
    pub threads: usize,
    pub requests_per_connection: Option<u64>,
    /// Open model: the generator sleeps at most once per window (zero: each send on time).
    #[serde(with = "as_text")]
    pub send_window: Duration,
    pub phases: Vec<Phase>,
    /// Uneven load over the connections; `None`: even (round robin, or every connection as
    /// fast as it is answered).
    pub skew: Option<Skew>,
    /// Connections held open without traffic beside the active ones.
    pub idle_connections: usize,
}

/// Uneven load: the first `hot` fraction of the connections carries `share` of the requests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Skew {
    pub hot: f64,
    pub share: f64,
}

impl Skew {
    /// The hot connections among `n` (n >= 2): the first `round(hot x n)`, at least one and at
    /// most all but one.
    pub fn hot_of(&self, n: u64) -> u64 {
        ((self.hot * n as f64).round() as u64).clamp(1, n.saturating_sub(1).max(1))
    }

    /// Whether connection `c` of `n` is hot.
    pub fn is_hot(&self, c: u64, n: u64) -> bool {
        n >= 2 && c < self.hot_of(n)
    }

    /// Open model: the connection of request `k` among `n`. Request `k` is hot when
    /// `floor((k+1)·share) > floor(k·share)` (exactly `share` of every stretch of requests, no
    /// randomness, so every load thread computes the same), and goes round robin among the hot
    /// connections or among the cold ones.
    pub fn connection(&self, k: u64, n: u64) -> u64 {
        if n < 2 {
            return 0;
        }
        let h = self.hot_of(n);
        let hot_before = |k: u64| (k as f64 * self.share).floor() as u64;
        let hot_k = hot_before(k);
        if hot_before(k + 1) > hot_k {
            hot_k % h
        } else {
            h + (k - hot_k) % (n - h)
        }
    }

    /// Closed model: how long a cold connection thinks after each answer, for answers that
    /// take `latency`, so the hot connections (no think time) carry `share`. With H hot and C
    /// cold connections, a hot one sends 1/L requests a second and a cold one 1/(L+T):
    /// share = (H/L) / (H/L + C/(L+T)), so T = L·(C·share / (H·(1-share)) - 1), at least 0
    /// (where the even load already gives the hot ones that share).
    pub fn think_time(&self, n: u64, latency: Duration) -> Duration {
        let h = self.hot_of(n) as f64;
        let c = n as f64 - h;
        let factor = c * self.share / (h * (1.0 - self.share)) - 1.0;
        latency.mul_f64(factor.max(0.0))
    }
}

impl Scenario {
    /// The workload named `name` (a point's) sending `request_bytes` per request: what the
    /// server does with each request, and what answers it (seed 0: the plan sets the run's).
    pub fn workload(&self, name: &str, request_bytes: u64) -> Workload {
        let spec = self
            .workloads
            .iter()
            .find(|w| w.name == name)
            .unwrap_or(&self.workloads[0]);
        let p = self.protocol;
        Workload {
            protocol: p.protocol,
            pipeline: p.pipeline,
            header_bytes: p.header_bytes,
            // HTTP: the request's body (none: a GET).
            request_bytes: match p.protocol {
                Protocol::Http1 => (request_bytes > 0).then_some(request_bytes),
                Protocol::Echo => Some(request_bytes),
            },
            ..spec.workload
        }
    }
}

impl LoadSpec {
    /// Warmup plus measured window: how long load is applied.
    pub fn total(&self) -> Duration {
        self.warmup + self.duration
    }
    /// The most connections open at any time (for the preflight).
    pub fn peak_connections(&self) -> usize {
        self.phases_peak(self.connections.iter().copied().max().unwrap_or(0))
    }
    /// The most connections open at a point that starts with `connections`.
    pub fn phases_peak(&self, connections: usize) -> usize {
        let phase_max = self
            .phases
            .iter()
            .filter_map(|p| p.connections)
            .max()
            .unwrap_or(0);
        connections.max(phase_max)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ShutdownSpec {
    #[serde(with = "as_text")]
    pub grace: Duration,
    /// Stop signal this long after the load starts; `None`: after the load.
    #[serde(with = "as_text_opt")]
    pub at: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSpec {
    pub repeat: usize,
    pub seed: Option<u64>,
    #[serde(with = "as_text")]
    pub interval: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetSpec {
    pub address: SocketAddr,
    pub command: Option<Vec<String>>,
    pub name: String,
}

mod as_text {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

mod as_text_opt {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::as_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

/// Facts about the machine that validation needs.
#[derive(Clone, Debug)]
pub struct Host {
    pub cpus: usize,
    /// Server and load run on other machines, each its own (a run across machines): their CPU
    /// numbers cannot compete, and the load's default is every CPU of its host (unpinned).
    pub elsewhere: bool,
}

impl Host {
    /// CPU numbers that belong to other machines (a run across machines, a rendered
    /// deployment): only their form is checked here; an agent whose host lacks one fails its
    /// process with the reason.
    pub fn elsewhere() -> Self {
        Host {
            cpus: 4096,
            elsewhere: true,
        }
    }

    pub fn current() -> Self {
        Host {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            elsewhere: false,
        }
    }
}

/// Reads and checks a scenario file.
pub fn load(path: &Path, host: &Host) -> Result<Scenario, ScenarioError> {
    if path.is_dir() {
        return Err(ScenarioError::Directory {
            path: path.to_path_buf(),
            toml_files: toml_files(path)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        });
    }
    if !path.exists() {
        return Err(ScenarioError::Missing {
            path: path.to_path_buf(),
            hint: closest_scenario(path)
                .map(|p| format!("; did you mean {}?", p.display()))
                .unwrap_or_default(),
        });
    }
    let text = read_regular(path, MAX_FILE_BYTES).map_err(|reason| ScenarioError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    parse(path, &text, host)
}

/// Reads a regular file of at most `limit` bytes as text (see [`crate::os::sys::open_regular`]).
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let file = crate::os::sys::open_regular(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {len} bytes; scenario files are at most {limit}"),
        ));
    }
    let mut text = String::new();
    // `take`: the file may grow after the check.
    file.take(limit).read_to_string(&mut text)?;
    Ok(text)
}

/// The rule for names that become a folder and a table entry (scenario and target names):
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit, so `.` and `..` cannot
/// climb out of the output folder and `|` or a newline cannot break report.md.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        return Ok(());
    }
    let shown: String = name
        .chars()
        .take(40)
        .collect::<String>()
        .escape_debug()
        .to_string();
    let more = if name.chars().count() > 40 { "..." } else { "" };
    Err(format!(
        "must be 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.`, starting with a letter or \
         digit (it names a folder and a table row), got \"{shown}{more}\""
    ))
}

/// The `.toml` files directly in `dir`, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// A scenario beside a missing `path` whose name is a likely typo of it.
fn closest_scenario(path: &Path) -> Option<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let wanted = path.file_name()?.to_str()?;
    toml_files(dir)
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            Some((strsim::damerau_levenshtein(wanted, &name), p))
        })
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, p)| match path.parent() {
            Some(d) if d.as_os_str().is_empty() => PathBuf::from(p.file_name().unwrap_or_default()),
            _ => p,
        })
}

/// Checks scenario text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str, host: &Host) -> Result<Scenario, ScenarioError> {
    if text.trim().is_empty() {
        return Err(ScenarioError::Empty {
            path: path.to_path_buf(),
        });
    }
    let raw: RawScenario =
        toml::from_str(text).map_err(|e| ScenarioError::from_toml(path, text, &e))?;
    Checker { path, text, host }.check(raw)
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    host: &'a Host,
}

impl Checker<'_> {
    /// Byte range of the value at dotted `field` (e.g. `load.connections`); the whole file when
    /// it cannot be found (a defaulted key has no place in the file).
    fn locate(&self, field: &str) -> Range<usize> {
        let Ok(doc) = toml::de::DeTable::parse(self.text) else {
            return 0..0;
        };
        let mut span = doc.span();
        let mut value = toml::de::DeValue::Table(doc.into_inner());
        for part in field.split('.') {
            let next = match part.parse::<usize>() {
                Ok(i) => value.get(i),
                Err(_) => value.get(part),
            };
            let Some(next) = next else { return span };
            span = next.span();
            let inner = next.get_ref().clone();
            value = inner;
        }
        span
    }

    fn err<T>(&self, field: &str, message: String) -> Result<T, ScenarioError> {
        Err(ScenarioError::at(
            self.path,
            self.text,
            self.locate(field),
            Some(field.to_string()),
            message,
        ))
    }

    fn int(&self, field: &str, n: i64, min: i64, max: i64) -> Result<u64, ScenarioError> {
        if n < min || n > max {
            return self.err(field, format!("must be between {min} and {max}, got {n}"));
        }
        Ok(n as u64)
    }

    fn ints(
        &self,
        field: &str,
        v: &OneOrMany<i64>,
        min: i64,
        max: i64,
    ) -> Result<Vec<u64>, ScenarioError> {
        let values = v.to_vec();
        if values.is_empty() {
            return self.err(
                field,
                "is an empty list; give a number or a non-empty list".into(),
            );
        }
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, n) in values.iter().enumerate() {
            let at = match v {
                OneOrMany::One(_) => field.to_string(),
                OneOrMany::Many(_) => format!("{field}.{i}"),
            };
            let n = self.int(&at, *n, min, max)?;
            if !seen.insert(n) {
                return self.err(&at, format!("{n} is listed twice"));
            }
            out.push(n);
        }
        Ok(out)
    }

    fn duration(
        &self,
        field: &str,
        text: &str,
        allow_zero: bool,
    ) -> Result<Duration, ScenarioError> {
        if text.trim().starts_with('-') {
            return self.err(
                field,
                format!("`{text}` is negative; a duration is zero or more, e.g. \"500ms\""),
            );
        }
        let d = humantime::parse_duration(text.trim()).or_else(|e| {
            self.err(
                field,
                format!("`{text}` is not a duration ({e}); write e.g. \"500ms\", \"5s\", \"2m\""),
            )
        })?;
        if d.is_zero() && !allow_zero {
            return self.err(field, "must be longer than zero".into());
        }
        if d > MAX_DURATION {
            return self.err(
                field,
                format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_DURATION)
                ),
            );
        }
        Ok(d)
    }

    fn opt_duration(
        &self,
        field: &str,
        v: &Option<String>,
        default: Duration,
        allow_zero: bool,
    ) -> Result<Duration, ScenarioError> {
        match v {
            Some(t) => self.duration(field, t, allow_zero),
            None => Ok(default),
        }
    }

    fn cpus(&self, field: &str, v: &[i64]) -> Result<Vec<usize>, ScenarioError> {
        let last = self.host.cpus as i64 - 1;
        if v.is_empty() {
            return self.err(field, format!("needs at least one CPU (0..={last})"));
        }
        let mut out = Vec::new();
        for &c in v {
            if c < 0 || c > last {
                return self.err(
                    field,
                    format!("CPU {c} does not exist; this machine has CPUs 0..={last}"),
                );
            }
            if out.contains(&(c as usize)) {
                return self.err(field, format!("CPU {c} is listed twice"));
            }
            out.push(c as usize);
        }
        Ok(out)
    }

    /// The whole scenario, section by section; then what only the sections together can say.
    fn check(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let name = raw.name.trim();
        if let Err(e) = check_name(name) {
            return self.err("name", e);
        }
        let runtimes = self.runtimes(&raw.runtimes)?;
        let server = self.server(&raw.server)?;
        let protocol = self.protocol(&raw, &raw.load)?;
        let http = protocol.protocol == Protocol::Http1;
        let (request_bytes, workloads) = self.workloads(&raw, i64::from(!http))?;
        let load = self.load(&raw.load, &server, raw.search.is_some(), request_bytes)?;
        let listed = matches!(raw.workload, Some(raw::TableOrList::Many(_)));
        self.workloads_fit(&workloads, listed, &load)?;
        let shutdown = self.shutdown(&raw.shutdown, &load)?;
        let run = self.run(&raw.run)?;
        let target = match &raw.target {
            Some(t) => Some(self.target(t)?),
            None => None,
        };
        let slo = match &raw.slo {
            Some(r) => Some(self.slo(r, load.model)?),
            None => None,
        };
        let search = match &raw.search {
            Some(r) => Some(self.search(r)?),
            None => None,
        };
        if search.is_some() {
            self.search_fits(slo.is_some(), &load, &run)?;
        }
        if target.is_some() && runtimes.is_some() {
            return self.err(
                "runtimes",
                "cannot be combined with [target]: an external target is the only server measured"
                    .into(),
            );
        }
        Ok(Scenario {
            name: name.to_string(),
            description: raw.description,
            source: self.path.to_path_buf(),
            runtimes,
            server,
            load,
            protocol,
            shutdown,
            run,
            target,
            slo,
            search,
            workloads,
        })
    }

    fn runtimes(&self, list: &Option<Vec<String>>) -> Result<Option<Vec<String>>, ScenarioError> {
        let Some(list) = list else { return Ok(None) };
        if list.is_empty() {
            return self.err(
                "runtimes",
                "is empty; list runtimes, or leave the key out to run every built plugin".into(),
            );
        }
        // A set, not `Vec::contains`: a long list must not take quadratic time.
        let mut seen = std::collections::HashSet::new();
        let mut names: Vec<String> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let n = item.trim();
            if !seen.insert(n) {
                return self.err(&format!("runtimes.{i}"), format!("`{n}` is listed twice"));
            }
            names.push(n.to_string());
        }
        Ok(Some(names))
    }

    fn shutdown(
        &self,
        raw: &raw::RawShutdown,
        load: &LoadSpec,
    ) -> Result<ShutdownSpec, ScenarioError> {
        let grace =
            self.opt_duration("shutdown.grace", &raw.grace, Duration::from_secs(2), true)?;
        let Some(t) = &raw.at else {
            return Ok(ShutdownSpec { grace, at: None });
        };
        let at = self.duration("shutdown.at", t, false)?;
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        if at >= load.total() {
            return self.err(
                "shutdown.at",
                format!(
                    "must fall inside the load ({} long); leave it out to stop after the load",
                    fmt(load.total())
                ),
            );
        }
        // Inside the warmup the stop would come before the measured window begins: nothing
        // would be measured.
        if at <= load.warmup {
            return self.err(
                "shutdown.at",
                format!(
                    "falls inside the warmup ({}), before the measured window starts; give a \
                     time between {} and {}",
                    fmt(load.warmup),
                    fmt(load.warmup),
                    fmt(load.total())
                ),
            );
        }
        Ok(ShutdownSpec {
            grace,
            at: Some(at),
        })
    }

    fn run(&self, raw: &raw::RawRun) -> Result<RunSpec, ScenarioError> {
        let run = RunSpec {
            repeat: match raw.repeat {
                Some(n) => self.int("run.repeat", n, 1, 1000)? as usize,
                None => 1,
            },
            seed: match raw.seed {
                Some(n) => Some(self.int("run.seed", n, 0, i64::MAX)?),
                None => None,
            },
            interval: self.opt_duration(
                "run.interval",
                &raw.interval,
                Duration::from_secs(1),
                false,
            )?,
        };
        if run.interval < Duration::from_millis(100) {
            return self.err("run.interval", "must be at least 100ms".into());
        }
        Ok(run)
    }

    /// `[workload]`'s protocol keys: `pipeline` and `header_bytes` are HTTP's, and
    /// pipelining is the closed model's (the open model's schedule sends regardless).
    fn protocol(
        &self,
        raw: &RawScenario,
        load: &raw::RawLoad,
    ) -> Result<ProtocolSpec, ScenarioError> {
        let list: Vec<raw::RawWorkload> = raw
            .workload
            .as_ref()
            .map(raw::TableOrList::to_vec)
            .unwrap_or_default();
        let listed = matches!(raw.workload, Some(raw::TableOrList::Many(_)));
        let at = |i: usize, key: &str| match listed {
            true => format!("workload.{i}.{key}"),
            false => format!("workload.{key}"),
        };
        // One protocol for the whole scenario: the first table that says, and the others alike.
        let mut first: Option<(usize, raw::RawWorkload)> = None;
        for (i, w) in list.iter().enumerate() {
            let says = w.protocol.is_some() || w.pipeline.is_some() || w.header_bytes.is_some();
            match &first {
                None if says => first = Some((i, w.clone())),
                Some((j, f))
                    if says
                        && (f.protocol != w.protocol
                            || f.pipeline != w.pipeline
                            || f.header_bytes != w.header_bytes) =>
                {
                    return self.err(
                        &at(i, "protocol"),
                        format!(
                            "differs from `{}`: the protocol (with pipeline and header_bytes) \
                             is one for the whole scenario; write it once, in the first \
                             [[workload]]",
                            at(*j, "protocol")
                        ),
                    )
                }
                _ => {}
            }
        }
        let (i, w) = first.unwrap_or_default();
        let field = |key: &str| at(i, key);
        let protocol = match w.protocol.as_deref().map(str::trim) {
            None | Some("echo") => Protocol::Echo,
            Some("http1") => Protocol::Http1,
            Some(other) => {
                return self.err(
                    &field("protocol"),
                    format!("`{other}` is not a protocol; use \"echo\" (default) or \"http1\""),
                )
            }
        };
        let http = protocol == Protocol::Http1;
        let mut spec = ProtocolSpec {
            protocol,
            ..ProtocolSpec::default()
        };
        if let Some(n) = w.pipeline {
            if !http {
                return self.err(
                    &field("pipeline"),
                    "pipelines HTTP requests; the echo protocol has no requests to pipeline \
                     (set protocol = \"http1\", or leave pipeline out)"
                        .into(),
                );
            }
            spec.pipeline = self.int(&field("pipeline"), n, 1, MAX_PIPELINE)? as u32;
            let open = self.model(&load.model)? == Model::Open;
            if spec.pipeline > 1 && open {
                return self.err(
                    &field("pipeline"),
                    "is the closed model's; the open model's schedule already sends without \
                     waiting for answers (leave pipeline out, or use model = \"closed\")"
                        .into(),
                );
            }
        }
        if let Some(n) = w.header_bytes {
            if !http {
                return self.err(
                    &field("header_bytes"),
                    "is an HTTP request header's size; the echo protocol has no headers \
                     (set protocol = \"http1\", or leave header_bytes out)"
                        .into(),
                );
            }
            spec.header_bytes =
                self.int(&field("header_bytes"), n, 0, i64::from(MAX_HEADER_BYTES))? as u32;
        }
        Ok(spec)
    }

    fn target(&self, t: &raw::RawTarget) -> Result<TargetSpec, ScenarioError> {
        let address: SocketAddr = t.address.trim().parse().or_else(|e| {
            self.err(
                "target.address",
                format!(
                    "`{}` is not an ip:port address ({e}), e.g. \"127.0.0.1:7000\"",
                    t.address
                ),
            )
        })?;
        if t.command.as_ref().is_some_and(|c| c.is_empty()) {
            return self.err(
                "target.command",
                "is empty; give the program and its arguments, or leave it out".into(),
            );
        }
        let name = t.name.clone().unwrap_or_else(|| "external".into());
        if let Err(e) = check_name(&name) {
            return self.err("target.name", e);
        }
        Ok(TargetSpec {
            address,
            command: t.command.clone(),
            name,
        })
    }

    /// What a `[search]` needs of the rest of the scenario.
    fn search_fits(
        &self,
        has_slo: bool,
        load: &LoadSpec,
        run: &RunSpec,
    ) -> Result<(), ScenarioError> {
        if !has_slo {
            return self.err(
                "search",
                "needs `[slo]`: the search finds the highest rate that meets it".into(),
            );
        }
        if load.model != Model::Open {
            return self.err(
                "load.model",
                "`[search]` needs model = \"open\": only an open load sets the rate".into(),
            );
        }
        if !load.phases.is_empty() {
            return self.err(
                "load.phases",
                "cannot be combined with `[search]`, which holds each probe at one rate".into(),
            );
        }
        if run.repeat > 1 {
            return self.err(
                "run.repeat",
                "cannot be combined with `[search]`: `search.confirm` sets the trials at the \
                 found rate"
                    .into(),
            );
        }
        Ok(())
    }

    fn server(&self, s: &raw::RawServer) -> Result<ServerSpec, ScenarioError> {
        let cpus = match &s.cpus {
            Some(v) => self.cpus("server.cpus", v)?,
            None => vec![0],
        };
        Ok(ServerSpec {
            threads: match &s.threads {
                Some(v) => self
                    .ints("server.threads", v, 1, 1024)?
                    .into_iter()
                    .map(|n| n as usize)
                    .collect(),
                None => vec![cpus.len()],
            },
            max_connections: match &s.max_connections {
                Some(v) => self
                    .ints("server.max_connections", v, 0, MAX_CONNECTIONS)?
                    .into_iter()
                    .map(|n| n as usize)
                    .collect(),
                None => vec![0],
            },
            processes: match &s.processes {
                Some(raw::CountOrAuto::Count(n)) => {
                    self.int("server.processes", *n, 1, 256)? as usize
                }
                Some(raw::CountOrAuto::Word(w)) if w.trim() == "auto" => 1,
                Some(raw::CountOrAuto::Word(w)) => {
                    return self.err(
                        "server.processes",
                        format!(
                            "`{w}` is not a process count; give a number from 1 to 256 or \"auto\""
                        ),
                    )
                }
                None => 1,
            },
            processes_auto: matches!(&s.processes, Some(raw::CountOrAuto::Word(w)) if w.trim() == "auto"),
            cpus,
        })
    }

    fn load(
        &self,
        l: &raw::RawLoad,
        server: &ServerSpec,
        searching: bool,
        payload_bytes: Vec<u64>,
    ) -> Result<LoadSpec, ScenarioError> {
        let model = self.model(&l.model)?;
        let has_phases = l.phases.as_ref().is_some_and(|p| !p.is_empty());
        let min_conns = if has_phases { 0 } else { 1 };
        let connections: Vec<usize> = self
            .ints(
                "load.connections",
                &l.connections,
                min_conns,
                MAX_CONNECTIONS,
            )?
            .into_iter()
            .map(|n| n as usize)
            .collect();
        let rate = self.rate(&l.rate, model, searching)?;
        let warmup = self.opt_duration("load.warmup", &l.warmup, Duration::ZERO, true)?;
        let phases = self.phases(l.phases.as_deref().unwrap_or_default(), model)?;
        let duration = if phases.is_empty() {
            self.window(&l.duration)?
        } else {
            self.window_of_phases(l, &phases, warmup, connections.len() > 1 || rate.len() > 1)?
        };
        let cpus = self.load_cpus(l, server)?;
        let skew = self.skew(l, &connections, !phases.is_empty())?;
        let idle_connections = match l.idle_connections {
            Some(n) => self.int("load.idle_connections", n, 0, MAX_CONNECTIONS)? as usize,
            None => 0,
        };
        Ok(LoadSpec {
            model,
            connections,
            payload_bytes,
            rate,
            warmup,
            duration,
            threads: match l.threads {
                Some(n) => self.int("load.threads", n, 1, 1024)? as usize,
                None => cpus.len(),
            },
            cpus,
            requests_per_connection: match l.requests_per_connection {
                Some(n) => Some(self.int("load.requests_per_connection", n, 1, i64::MAX)?),
                None => None,
            },
            send_window: self.send_window(&l.send_window, model)?,
            skew,
            idle_connections,
            phases,
        })
    }

    fn skew(
        &self,
        l: &raw::RawLoad,
        connections: &[usize],
        has_phases: bool,
    ) -> Result<Option<Skew>, ScenarioError> {
        let Some(k) = &l.skew else { return Ok(None) };
        for (key, v) in [("hot", k.hot), ("share", k.share)] {
            if !(v > 0.0 && v < 1.0) {
                return self.err(
                    &format!("load.skew.{key}"),
                    format!("must be above 0 and below 1 (a fraction), got {v}"),
                );
            }
        }
        if has_phases {
            return self.err(
                "load.skew",
                "cannot be combined with phases (the hot connections are a share of a \
                 constant count)"
                    .into(),
            );
        }
        if let Some(&n) = connections.iter().find(|&&n| n < 2) {
            return self.err(
                "load.connections",
                format!("skew needs at least 2 connections (hot and cold ones), got {n}"),
            );
        }
        Ok(Some(Skew {
            hot: k.hot,
            share: k.share,
        }))
    }

    fn send_window(&self, text: &Option<String>, model: Model) -> Result<Duration, ScenarioError> {
        let field = "load.send_window";
        let window = self.opt_duration(field, text, Duration::ZERO, true)?;
        if window > MAX_SEND_WINDOW {
            return self.err(
                field,
                format!(
                    "at most {MAX_SEND_WINDOW:?}: every send in a window is late by up to its \
                     length, charged to the server's latency"
                ),
            );
        }
        if !window.is_zero() && model != Model::Open {
            return self.err(
                field,
                "only applies to model = \"open\" (it groups scheduled sends)".into(),
            );
        }
        Ok(window)
    }

    fn model(&self, text: &Option<String>) -> Result<Model, ScenarioError> {
        match text.as_deref().map(str::trim) {
            None | Some("closed") => Ok(Model::Closed),
            Some("open") => Ok(Model::Open),
            Some(other) => self.err(
                "load.model",
                format!("`{other}` is not a load model; use \"closed\" or \"open\""),
            ),
        }
    }

    fn rate(
        &self,
        rate: &Option<OneOrMany<i64>>,
        model: Model,
        searching: bool,
    ) -> Result<Vec<u64>, ScenarioError> {
        match (rate, model) {
            (Some(_), Model::Open) if searching => self.err(
                "load.rate",
                "is chosen by `[search]` (each probe's rate); remove it".into(),
            ),
            (None, Model::Open) if searching => Ok(Vec::new()),
            (Some(r), Model::Open) => self.ints("load.rate", r, 1, 100_000_000),
            (Some(_), Model::Closed) => self.err(
                "load.rate",
                "only applies to model = \"open\" (closed load runs as fast as the server \
                 answers)"
                    .into(),
            ),
            (None, Model::Open) => self.err(
                "load.model",
                "model = \"open\" needs `rate` (requests/s over all connections)".into(),
            ),
            (None, Model::Closed) => Ok(Vec::new()),
        }
    }

    fn phases(&self, list: &[raw::RawPhase], model: Model) -> Result<Vec<Phase>, ScenarioError> {
        let mut phases = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let at = |k: &str| format!("load.phases.{i}.{k}");
            let duration = self.duration(&at("duration"), &p.duration, false)?;
            let connections = match p.connections {
                Some(n) => Some(self.int(&at("connections"), n, 0, MAX_CONNECTIONS)? as usize),
                None => None,
            };
            let rate = match (p.rate, model) {
                (Some(_), Model::Closed) => {
                    return self.err(&at("rate"), "phase rates need model = \"open\"".into())
                }
                (Some(r), Model::Open) => Some(self.int(&at("rate"), r, 0, 100_000_000)?),
                (None, _) => None,
            };
            if connections.is_none() && rate.is_none() {
                return self.err(
                    &format!("load.phases.{i}"),
                    "a phase needs a `connections` or `rate` target".into(),
                );
            }
            phases.push(Phase {
                duration,
                connections,
                rate,
            });
        }
        Ok(phases)
    }

    /// The measured window without phases: `duration`, long enough to measure anything.
    fn window(&self, text: &Option<String>) -> Result<Duration, ScenarioError> {
        let Some(t) = text else {
            return self.err(
                "load",
                "missing `duration` (the measured window, e.g. \"10s\")".into(),
            );
        };
        let d = self.duration("load.duration", t, false)?;
        if d < MIN_DURATION {
            return self.err(
                "load.duration",
                format!(
                    "must be at least {} (the measured window; shorter ones measure nothing), \
                     got {}",
                    humantime::format_duration(MIN_DURATION),
                    humantime::format_duration(d)
                ),
            );
        }
        Ok(d)
    }

    /// With phases the load lasts as long as they do; the window is what the warmup leaves.
    fn window_of_phases(
        &self,
        l: &raw::RawLoad,
        phases: &[Phase],
        warmup: Duration,
        swept: bool,
    ) -> Result<Duration, ScenarioError> {
        if l.duration.is_some() {
            return self.err(
                "load.duration",
                "with phases the load lasts as long as the phases; remove `duration`".into(),
            );
        }
        if swept {
            return self.err(
                "load.phases",
                "phases cannot be combined with a sweep of connections or rate".into(),
            );
        }
        let total: Duration = phases.iter().map(|p| p.duration).sum();
        if total < warmup + MIN_DURATION {
            return self.err(
                "load.warmup",
                format!(
                    "leaves less than {} of the phases ({} together) to measure",
                    humantime::format_duration(MIN_DURATION),
                    humantime::format_duration(total)
                ),
            );
        }
        Ok(total - warmup)
    }

    /// The load's CPUs: given, or every CPU the server leaves; never the server's unless allowed.
    fn load_cpus(
        &self,
        l: &raw::RawLoad,
        server: &ServerSpec,
    ) -> Result<Vec<usize>, ScenarioError> {
        let cpus = match &l.cpus {
            Some(v) => self.cpus("load.cpus", v)?,
            // Each load agent's host, whole: not pinned.
            None if self.host.elsewhere => Vec::new(),
            None => {
                let rest: Vec<usize> = (0..self.host.cpus)
                    .filter(|c| !server.cpus.contains(c))
                    .collect();
                if rest.is_empty() {
                    server.cpus.clone()
                } else {
                    rest
                }
            }
        };
        let overlap: Vec<usize> = cpus
            .iter()
            .copied()
            .filter(|c| server.cpus.contains(c))
            .collect();
        let single_cpu_default = l.cpus.is_none() && self.host.cpus == 1;
        if !overlap.is_empty()
            && !single_cpu_default
            && !self.host.elsewhere
            && l.allow_shared_cpus != Some(true)
        {
            return self.err(
                "load.cpus",
                format!(
                    "overlaps server.cpus on CPU(s) {overlap:?}, so load and server would compete \
                     for cores; choose disjoint CPUs or set `allow_shared_cpus = true` in [load]"
                ),
            );
        }
        Ok(cpus)
    }
}
