//! The scenario file exactly as written: serde structs that reject unknown keys, and the source of
//! `scenarios/schema.json`. Numbers are read as signed and durations as strings so `check` can say
//! what is wrong in our own words; spans for messages come from `locate`.

use schemars::JsonSchema;
use serde::Deserialize;

/// A value or a list of values to sweep over.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A number, or the word "auto".
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CountOrAuto {
    Count(i64),
    Word(String),
}

/// A runbench scenario: which runtimes, what server, what load, how to stop.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "runbench scenario")]
pub struct RawScenario {
    /// Names the output folder: 1 to 100 letters, digits, `-`, `_`, `.`, starting with a letter
    /// or digit.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Runtimes to run, by plugin name; omitted = every built plugin.
    pub runtimes: Option<Vec<String>>,
    #[serde(default)]
    pub server: RawServer,
    pub load: RawLoad,
    /// What the bytes are and how the client sends them (the protocol, HTTP's pipelining).
    #[serde(default)]
    pub workload: RawWorkload,
    #[serde(default)]
    pub shutdown: RawShutdown,
    #[serde(default)]
    pub run: RawRun,
    /// Benchmark an external server (echo, or HTTP with `[workload] protocol = "http1"`) instead
    /// of the plugins.
    pub target: Option<RawTarget>,
    /// Service-level objectives every row is judged against (pass / fail).
    pub slo: Option<RawSlo>,
    /// Open model: find each runtime's highest rate that meets `[slo]`.
    pub search: Option<RawSearch>,
}

/// Limits on latency (durations, e.g. "5ms"), errors and the achieved rate.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    pub p50: Option<String>,
    pub p90: Option<String>,
    pub p99: Option<String>,
    pub p999: Option<String>,
    pub max: Option<String>,
    /// Connection errors and unanswered requests allowed: a count (integer) or a fraction of the
    /// requests (a number below 1, e.g. 0.001).
    pub errors: Option<CountOrFraction>,
    /// Open model: the achieved rate at least this fraction of the target, e.g. 0.99.
    pub achieved: Option<f64>,
}

/// An integer count, or a fraction written with a decimal point.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CountOrFraction {
    Count(i64),
    Fraction(f64),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    /// Rates to search between (requests/s): `{ from = 1000, max = 2000000 }`.
    pub rate: RawRateRange,
    /// Stop when the bracket is within this fraction, e.g. 0.05. Default 0.05.
    pub resolution: Option<f64>,
    /// Trials at the found rate, all of which must pass. Default 3.
    pub confirm: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRateRange {
    pub from: i64,
    pub max: i64,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Runtime worker threads (a list sweeps). Default: one per server CPU.
    pub threads: Option<OneOrMany<i64>>,
    /// CPUs the server processes are pinned to. Default: [0].
    pub cpus: Option<Vec<i64>>,
    /// At most this many connections served at once, 0 = no limit (a list sweeps).
    pub max_connections: Option<OneOrMany<i64>>,
    /// Server processes sharing the port with SO_REUSEPORT, or "auto": the fewest the
    /// open-files limit allows for the connections (1 where it can). Default 1.
    pub processes: Option<CountOrAuto>,
    /// CPU work per request: busy-spin this long before echoing, e.g. "50us".
    pub work: Option<String>,
    /// Await the runtime's timer this long before echoing, e.g. "1ms".
    pub sleep: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// "closed" (one request in flight per connection, default) or "open" (fixed schedule).
    pub model: Option<String>,
    /// Concurrent connections (a list sweeps); with phases, the starting count.
    pub connections: OneOrMany<i64>,
    /// Bytes per echo message (a list sweeps); HTTP: bytes of the request's body (0: a GET).
    pub payload_bytes: OneOrMany<i64>,
    /// Open model: requests/s over all connections (a list runs each step, in shuffled order).
    pub rate: Option<OneOrMany<i64>>,
    /// Excluded from the measurement, e.g. "1s".
    pub warmup: Option<String>,
    /// The measured window, e.g. "10s"; at least "100ms". Not used with phases.
    pub duration: Option<String>,
    /// CPUs the load generator is pinned to. Default: every CPU but the server's.
    pub cpus: Option<Vec<i64>>,
    /// Load-generator threads per process. Default: one per load CPU.
    pub threads: Option<i64>,
    /// Close and reopen each connection after this many requests (connection churn).
    pub requests_per_connection: Option<i64>,
    /// Open model: the load generator sleeps at most once per window; a send due less than a
    /// window after it last woke waits for the window's end (late by up to it, charged to
    /// latency), sparser sends keep their times (e.g. "250us"; at most "500us"; default "0s").
    pub send_window: Option<String>,
    /// Stages ramping linearly from the previous target (k6-style).
    pub phases: Option<Vec<RawPhase>>,
    /// Allow the load CPUs to overlap the server CPUs (the two then compete for cores).
    pub allow_shared_cpus: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// "echo" (fixed-size messages echoed, the default) or "http1" (HTTP/1.1 with keep-alive: a
    /// GET, or a POST of `load.payload_bytes` when above 0, answered 200 `Hello, World!`).
    pub protocol: Option<String>,
    /// HTTP, closed model: requests in flight per connection (1 to 1024; default 1: the next
    /// goes out when the last answer is in).
    pub pipeline: Option<i64>,
    /// HTTP: bytes of an extra request header (`X-Pad`) per request, 0 to 65536 (cookies,
    /// tokens). Default 0.
    pub header_bytes: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub duration: String,
    /// Connection count reached at the end of this phase.
    pub connections: Option<i64>,
    /// Open-model rate reached at the end of this phase.
    pub rate: Option<i64>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// Drain deadline after the stop signal. Default "2s".
    pub grace: Option<String>,
    /// Send the stop signal this long after the load starts, after the warmup. Default: after
    /// the load.
    pub at: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// Trials per runtime and point; the order of runtimes is shuffled per trial. Default 1.
    pub repeat: Option<i64>,
    /// Seed of the shuffles and the bootstrap; default: random, recorded in meta.json.
    pub seed: Option<i64>,
    /// Timeline interval. Default "1s".
    pub interval: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `ip:port` of the echo server. Only loopback unless --allow-remote.
    pub address: String,
    /// Started before and stopped after the load (argv, no shell); its process group is
    /// measured and stopped as a whole.
    pub command: Option<Vec<String>>,
    /// Name used in results (the characters of a scenario name). Default "external".
    pub name: Option<String>,
}
