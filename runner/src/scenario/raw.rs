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
    /// What each request is and what the server does with it: one `[workload]` table, or a
    /// `[[workload]]` list of named ones (a sweep: every workload is a point of the plan).
    pub workload: Option<TableOrList<RawWorkload>>,
}

/// One table, or a list of tables (`[[section]]`). Read by hand rather than as an untagged enum
/// so an error inside a table keeps its own message and place.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum TableOrList<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> TableOrList<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            TableOrList::One(v) => vec![v.clone()],
            TableOrList::Many(v) => v.clone(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TableOrList<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = TableOrList<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table or a list of tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(TableOrList::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(TableOrList::Many)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A duration per request: `"20us"` (fixed), or drawn per request from the run's seeded
/// sequence: `{ mean = "20us", dist = "exp" }`, `{ mean = "20us", dist = "lognormal", p99 =
/// "100us" }`.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum RawDist {
    Fixed(String),
    Drawn(RawDrawn),
}

impl<'de> Deserialize<'de> for RawDist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawDist;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a duration such as \"20us\", or a table such as { mean = \"20us\", dist = \"exp\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDist, E> {
                Ok(RawDist::Fixed(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawDist, A::Error> {
                RawDrawn::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawDist::Drawn)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrawn {
    /// The mean duration, e.g. "20us".
    pub mean: String,
    /// "fixed" (default: always the mean), "exp" (exponential) or "lognormal" (needs `p99`).
    pub dist: Option<String>,
    /// Log-normal only: the 99th percentile, above the mean and at most 14.95 times it.
    pub p99: Option<String>,
}

/// What one request is and what the server does with it, in this order: `cpu`, `sleep`, the
/// `fanout`, the `blocking` job, the `hops`; then it answers `response_bytes`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// Names this workload in a `[[workload]]` list (rows, plots): 1 to 100 letters, digits,
    /// `-`, `_`, `.`. Default: `cpu`, `sleep`, ... from its parts.
    pub name: Option<String>,
    /// Bytes the client sends per request (a list sweeps); `[load] payload_bytes` is the same
    /// key under its older name.
    pub request_bytes: Option<OneOrMany<i64>>,
    /// Bytes the server answers per request (at most 1 MiB); default: the request's own bytes
    /// (an echo).
    pub response_bytes: Option<i64>,
    /// Busy CPU time per request on the thread serving the connection (`[server] work` is the
    /// same key under its older name).
    pub cpu: Option<RawDist>,
    /// Awaited per request on the runtime's own timer, a downstream call (`[server] sleep` is
    /// the same key under its older name).
    pub sleep: Option<RawDist>,
    /// Spawn `tasks` tasks per request (at most 1024), each spinning `cpu` and awaiting `sleep`;
    /// join them all, then answer.
    pub fanout: Option<RawFanout>,
    /// Busy CPU time per request handed to the runtime's blocking pool and awaited.
    pub blocking: Option<String>,
    /// The request crosses this many tasks through the runtime's channels and back (at most 64).
    pub hops: Option<i64>,
    /// One for the whole scenario (in every `[[workload]]` alike): "echo" (fixed-size messages
    /// echoed, the default) or "http1" (HTTP/1.1 with keep-alive: a
    /// GET, or a POST of `request_bytes` when above 0, answered 200 `Hello, World!`).
    pub protocol: Option<String>,
    /// HTTP, closed model: requests in flight per connection (1 to 1024; default 1: the next
    /// goes out when the last answer is in).
    pub pipeline: Option<i64>,
    /// HTTP: bytes of an extra request header (`X-Pad`) per request, 0 to 65536 (cookies,
    /// tokens). Default 0.
    pub header_bytes: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFanout {
    /// Tasks spawned per request, 1 to 1024.
    pub tasks: i64,
    /// Busy CPU time in each task, e.g. "5us".
    pub cpu: Option<String>,
    /// Awaited on the runtime's timer in each task, e.g. "200us".
    pub sleep: Option<String>,
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
    /// CPU work per request: busy-spin this long before echoing, e.g. "50us" (the older name
    /// of `[workload] cpu`).
    pub work: Option<String>,
    /// Await the runtime's timer this long before echoing, e.g. "1ms" (the older name of
    /// `[workload] sleep`).
    pub sleep: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// "closed" (one request in flight per connection, default) or "open" (fixed schedule).
    pub model: Option<String>,
    /// Concurrent connections (a list sweeps); with phases, the starting count.
    pub connections: OneOrMany<i64>,
    /// Bytes the client sends per request (a list sweeps): the older name of `[workload]
    /// request_bytes` (HTTP: the request's body; 0 is a GET).
    pub payload_bytes: Option<OneOrMany<i64>>,
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
    /// Uneven load: `{ hot = 0.1, share = 0.9 }`, the first 10% of the connections carry 90% of
    /// the requests (open: by weight; closed: the others think between requests).
    pub skew: Option<RawSkew>,
    /// Connections established and accepted before the load and held open without traffic
    /// beside the active ones (the server's memory per connection).
    pub idle_connections: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSkew {
    /// The fraction of the connections that are hot, above 0 and below 1.
    pub hot: f64,
    /// The fraction of the requests the hot connections carry, above 0 and below 1.
    pub share: f64,
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
    /// Seed of the shuffles, the bootstrap and the workload's drawn durations; default: random,
    /// recorded in meta.json.
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
