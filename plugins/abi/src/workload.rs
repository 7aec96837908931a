//! [`Workload`]: what one request is, what the server does with it and what a correct answer is.
//! One definition both sides use: the scenario produces it, the plan carries it, the load
//! generator frames requests and checks answers with it, and every plugin serves it (the host
//! passes it in [`crate::ServeConfig`], the plugin reads it as [`crate::Config::workload`]).

use crate::ServeConfig;
use std::time::Duration;

/// [`crate::PluginHeader::workloads`] bit: the plugin busy-spins [`Workload::cpu`] per request
/// on the thread serving the connection.
pub const WORKLOAD_CPU: u32 = 1 << 0;
/// [`crate::PluginHeader::workloads`] bit: the plugin awaits [`Workload::sleep`] per request on
/// its runtime's own timer.
pub const WORKLOAD_SLEEP: u32 = 1 << 1;
/// [`crate::PluginHeader::workloads`] bit: the plugin answers [`Workload::response_bytes`] per
/// request when it differs from the request's size (not an echo).
pub const WORKLOAD_RESPONSE: u32 = 1 << 2;
/// [`crate::PluginHeader::workloads`] bit: [`Workload::cpu`] and [`Workload::sleep`] may be
/// drawn from a distribution ([`Dist::Exp`], [`Dist::LogNormal`]) per request.
pub const WORKLOAD_DIST: u32 = 1 << 3;
/// [`crate::PluginHeader::workloads`] bit: the plugin spawns [`Workload::fanout`]'s tasks per
/// request on its runtime and joins them all before answering.
pub const WORKLOAD_FANOUT: u32 = 1 << 4;
/// [`crate::PluginHeader::workloads`] bit: the plugin hands [`Workload::blocking`] to its
/// runtime's blocking pool per request and awaits it.
pub const WORKLOAD_BLOCKING: u32 = 1 << 5;
/// [`crate::PluginHeader::workloads`] bit: the request crosses [`Workload::hops`] tasks through
/// the runtime's channels and back.
pub const WORKLOAD_HOPS: u32 = 1 << 6;
/// [`crate::PluginHeader::workloads`] bit: the plugin serves [`Protocol::Http1`] (HTTP/1.1 with
/// keep-alive, through [`crate::http`]); not part of [`WORKLOAD_ALL`], which is the per-request
/// parts: a plugin declares it beside them once its runtime has an HTTP stack.
pub const WORKLOAD_HTTP1: u32 = 1 << 7;
/// Every part there is.
pub const WORKLOAD_ALL: u32 = WORKLOAD_CPU
    | WORKLOAD_SLEEP
    | WORKLOAD_RESPONSE
    | WORKLOAD_DIST
    | WORKLOAD_FANOUT
    | WORKLOAD_BLOCKING
    | WORKLOAD_HOPS;
/// The parts every plugin built before [`crate::PluginHeader::workloads`] existed serves (they
/// read `work_ns` and `sleep_ns` from the first version of the ABI on).
pub const WORKLOAD_V1: u32 = WORKLOAD_CPU | WORKLOAD_SLEEP;

/// Every part, with the name a scenario gives it.
const PARTS: [(u32, &str); 8] = [
    (WORKLOAD_CPU, "cpu"),
    (WORKLOAD_SLEEP, "sleep"),
    (WORKLOAD_RESPONSE, "response_bytes"),
    (WORKLOAD_DIST, "distributions"),
    (WORKLOAD_FANOUT, "fanout"),
    (WORKLOAD_BLOCKING, "blocking"),
    (WORKLOAD_HOPS, "hops"),
    (WORKLOAD_HTTP1, "protocol = \"http1\""),
];

/// The longest request header a scenario may ask the client to add ([`Workload::header_bytes`]):
/// 64 KiB, beyond what servers accept by default (hyper's whole head is at most ~400 KiB,
/// nginx's one header line 8 KiB), so a larger one is a mistake, not a load.
pub const MAX_HEADER_BYTES: u32 = 64 * 1024;

/// TechEmpower's plaintext body, HTTP's default answer.
pub const PLAINTEXT: &[u8] = b"Hello, World!";
/// Its length.
pub const PLAINTEXT_BYTES: u64 = PLAINTEXT.len() as u64;
/// The `Server` header of every HTTP answer.
pub const SERVER_NAME: &str = "runbench";

/// What the bytes on a connection are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Protocol {
    /// Fixed-size messages, echoed or answered with `response_bytes` (the default).
    #[default]
    Echo,
    /// HTTP/1.1 with keep-alive: a GET (a POST with `request_bytes` of body, when set) answered
    /// 200 with TechEmpower's plaintext body (`Hello, World!`) or `response_bytes` of body.
    Http1,
}

impl Protocol {
    /// The name a scenario gives it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
            Protocol::Http1 => "http1",
        }
    }

    fn encode(self) -> u32 {
        match self {
            Protocol::Echo => 0,
            Protocol::Http1 => 1,
        }
    }

    fn decode(code: u32) -> Protocol {
        match code {
            1 => Protocol::Http1,
            _ => Protocol::Echo,
        }
    }
}

/// The most a drawn duration may be, as a multiple of its mean: draws beyond are clamped, so a
/// heavy tail cannot hold a connection for minutes.
pub const DIST_CLAMP: u32 = 100;

/// The standard normal's 99th percentile.
const Z99: f64 = 2.326_347_874_040_841;

/// A duration per request: fixed, or drawn per request from the run's seeded sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Dist {
    Fixed(Duration),
    /// Exponential with this mean.
    Exp {
        mean: Duration,
    },
    /// Log-normal with this mean and 99th percentile (`p99 > mean`, at most
    /// [`Dist::LOGNORMAL_MAX_RATIO`] times it).
    LogNormal {
        mean: Duration,
        p99: Duration,
    },
}

impl Default for Dist {
    fn default() -> Self {
        Dist::Fixed(Duration::ZERO)
    }
}

impl Dist {
    /// A log-normal's p99 can be at most this many times its mean (where σ reaches Z99: beyond
    /// that no log-normal has both).
    pub const LOGNORMAL_MAX_RATIO: f64 = 14.95;

    pub const ZERO: Dist = Dist::Fixed(Duration::ZERO);

    pub fn mean(&self) -> Duration {
        match *self {
            Dist::Fixed(d) => d,
            Dist::Exp { mean } | Dist::LogNormal { mean, .. } => mean,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.mean().is_zero()
    }

    /// Whether it draws (needs [`WORKLOAD_DIST`]).
    pub fn is_drawn(&self) -> bool {
        !matches!(self, Dist::Fixed(_)) && !self.is_zero()
    }

    /// Why this distribution cannot be drawn, if it cannot (for the scenario's errors).
    pub fn invalid(&self) -> Option<String> {
        if let Dist::LogNormal { mean, p99 } = *self {
            let ratio = p99.as_secs_f64() / mean.as_secs_f64().max(1e-12);
            if p99 <= mean {
                return Some(format!(
                    "a log-normal's p99 ({p99:?}) must be above its mean ({mean:?})"
                ));
            }
            if ratio > Self::LOGNORMAL_MAX_RATIO {
                return Some(format!(
                    "a log-normal's p99 can be at most {} times its mean; {p99:?} is {ratio:.1} \
                     times {mean:?} (use dist = \"exp\" or a smaller p99)",
                    Self::LOGNORMAL_MAX_RATIO
                ));
            }
        }
        None
    }

    /// The next duration from `rng`, clamped to [`DIST_CLAMP`] times the mean.
    pub fn draw(&self, rng: &mut Rng) -> Duration {
        let mean = self.mean().as_secs_f64();
        let secs = match *self {
            Dist::Fixed(d) => return d,
            Dist::Exp { .. } => -mean * (1.0 - rng.unit()).ln(),
            Dist::LogNormal { p99, .. } => {
                let (mu, sigma) = lognormal_params(mean, p99.as_secs_f64());
                (mu + sigma * rng.normal()).exp()
            }
        };
        Duration::from_secs_f64(secs.clamp(0.0, mean * f64::from(DIST_CLAMP)))
    }

    /// Encoding in [`ServeConfig`]: (shape, mean ns, p99 ns); shape 0 fixed, 1 exp, 2 log-normal.
    fn encode(&self) -> (u32, u64, u64) {
        let ns = |d: Duration| d.as_nanos() as u64;
        match *self {
            Dist::Fixed(d) => (0, ns(d), 0),
            Dist::Exp { mean } => (1, ns(mean), 0),
            Dist::LogNormal { mean, p99 } => (2, ns(mean), ns(p99)),
        }
    }

    fn decode(shape: u32, mean_ns: u64, p99_ns: u64) -> Dist {
        let (mean, p99) = (Duration::from_nanos(mean_ns), Duration::from_nanos(p99_ns));
        match shape {
            1 => Dist::Exp { mean },
            2 => Dist::LogNormal { mean, p99 },
            _ => Dist::Fixed(mean),
        }
    }
}

/// (μ, σ) of the log-normal with this mean and p99: mean = e^(μ+σ²/2), p99 = e^(μ+Z99·σ).
fn lognormal_params(mean: f64, p99: f64) -> (f64, f64) {
    let gap = (p99 / mean).ln().max(0.0);
    let sigma = Z99 - (Z99 * Z99 - 2.0 * gap).max(0.0).sqrt();
    (mean.ln() - sigma * sigma / 2.0, sigma)
}

/// The server's seeded sequence for drawn durations (SplitMix64): one per connection, seeded
/// from the run's seed and the connection's accept ordinal, so every runtime draws the same
/// sequence for its n-th connection and `--seed` repeats a run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Fan-out per request: spawn `tasks` tasks that each spin `cpu` and await `sleep` on the
/// runtime's timer, join them all, then answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fanout {
    pub tasks: u32,
    pub cpu: Duration,
    pub sleep: Duration,
}

/// One request shape. The client sends `request_bytes`; the server does, in order, `cpu`,
/// `sleep`, the `fanout`, the `blocking` job and the `hops`, then answers `response_bytes`
/// (the request's own bytes by default: an echo), which the client checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Workload {
    /// Bytes the client sends per request (`None`: unknown, as for an external target's own
    /// protocol; every read then counts as one request).
    pub request_bytes: Option<u64>,
    /// Bytes the server answers per request; `None` echoes the request's own bytes.
    pub response_bytes: Option<u64>,
    /// Busy CPU time per request, spent on the thread that serves the connection.
    pub cpu: Dist,
    /// Awaited per request on the runtime's own timer (a downstream call).
    pub sleep: Dist,
    /// Tasks spawned and joined per request.
    pub fanout: Option<Fanout>,
    /// Busy CPU time per request on the runtime's blocking pool.
    pub blocking: Duration,
    /// Tasks the request crosses through the runtime's channels, there and back.
    pub hops: u32,
    /// Seed of the server's drawn durations ([`Rng`]).
    pub seed: u64,
    /// What the bytes are: the echo's messages or HTTP/1.1.
    pub protocol: Protocol,
    /// HTTP: requests each connection keeps in flight in the closed model (1: the next goes out
    /// when the last answer is in; more pipelines them). The client's alone: never sent to the
    /// server.
    pub pipeline: u32,
    /// HTTP: bytes of an extra request header (`X-Pad`) the client sends with each request, at
    /// most [`MAX_HEADER_BYTES`]; 0 = none. The client's alone.
    pub header_bytes: u32,
}

impl Workload {
    /// The plain echo of `request_bytes`, with no work per request.
    pub const fn echo(request_bytes: u64) -> Self {
        Workload {
            request_bytes: Some(request_bytes),
            response_bytes: None,
            cpu: Dist::ZERO,
            sleep: Dist::ZERO,
            fanout: None,
            blocking: Duration::ZERO,
            hops: 0,
            seed: 0,
            protocol: Protocol::Echo,
            pipeline: 1,
            header_bytes: 0,
        }
    }

    /// The HTTP/1.1 plaintext request (a GET answered `Hello, World!`), with no work.
    pub const fn http1() -> Self {
        Workload {
            request_bytes: None,
            protocol: Protocol::Http1,
            ..Workload::echo(0)
        }
    }

    /// Requests in flight per connection in the closed model (at least 1).
    pub fn pipeline(&self) -> u32 {
        self.pipeline.max(1)
    }

    /// Bytes of a correct answer to one request: `response_bytes`, or the request's own bytes
    /// (an echo). For HTTP: bytes of a correct answer's body (`response_bytes`, or the plaintext's 13).
    pub fn response_bytes(&self) -> Option<u64> {
        match self.protocol {
            Protocol::Echo => self.response_bytes.or(self.request_bytes),
            Protocol::Http1 => Some(self.response_bytes.unwrap_or(PLAINTEXT_BYTES)),
        }
    }

    /// Whether the answer is the request's own bytes (never for HTTP).
    pub fn is_echo(&self) -> bool {
        self.protocol == Protocol::Echo
            && (self.response_bytes.is_none() || self.response_bytes == self.request_bytes)
    }

    /// Byte `pos` of every sized (non-echo) answer: a fixed pattern both sides know, so the
    /// client checks answers without the server knowing which connection it serves.
    pub fn response_byte(pos: usize) -> u8 {
        (pos.wrapping_mul(131) % 251) as u8
    }

    /// The fan-out, if it spawns any task.
    pub fn fanout(&self) -> Option<Fanout> {
        self.fanout.filter(|f| f.tasks > 0)
    }

    /// Writes the workload into the host's [`ServeConfig`] (the host's side of the ABI).
    pub fn write_into(&self, config: &mut ServeConfig) {
        config.message_bytes = self.request_bytes.unwrap_or(0);
        let (cpu_shape, cpu_mean, cpu_p99) = self.cpu.encode();
        let (sleep_shape, sleep_mean, sleep_p99) = self.sleep.encode();
        config.work_ns = cpu_mean;
        config.sleep_ns = sleep_mean;
        config.response_bytes = if self.is_echo() {
            0
        } else {
            self.response_bytes.unwrap_or(0)
        };
        (config.cpu_shape, config.cpu_p99_ns) = (cpu_shape, cpu_p99);
        (config.sleep_shape, config.sleep_p99_ns) = (sleep_shape, sleep_p99);
        let fanout = self.fanout().unwrap_or_default();
        config.fanout_tasks = u64::from(fanout.tasks);
        config.fanout_cpu_ns = fanout.cpu.as_nanos() as u64;
        config.fanout_sleep_ns = fanout.sleep.as_nanos() as u64;
        config.blocking_ns = self.blocking.as_nanos() as u64;
        config.hops = u64::from(self.hops);
        config.seed = self.seed;
        config.protocol = self.protocol.encode();
    }

    /// The workload a host wrote into `config` (the plugin's side of the ABI). Fields appended
    /// to [`ServeConfig`] later are read only where `config.size` covers them.
    pub fn read_from(config: &ServeConfig) -> Workload {
        let mut w = Workload {
            cpu: Dist::Fixed(Duration::from_nanos(config.work_ns)),
            sleep: Dist::Fixed(Duration::from_nanos(config.sleep_ns)),
            ..Workload::echo(config.message_bytes)
        };
        w.request_bytes = (config.message_bytes > 0).then_some(config.message_bytes);
        if (config.size as usize) < ServeConfig::WORKLOAD_END {
            return w;
        }
        w.response_bytes = (config.response_bytes > 0).then_some(config.response_bytes);
        w.cpu = Dist::decode(config.cpu_shape, config.work_ns, config.cpu_p99_ns);
        w.sleep = Dist::decode(config.sleep_shape, config.sleep_ns, config.sleep_p99_ns);
        w.fanout = (config.fanout_tasks > 0).then(|| Fanout {
            tasks: config.fanout_tasks.min(u64::from(u32::MAX)) as u32,
            cpu: Duration::from_nanos(config.fanout_cpu_ns),
            sleep: Duration::from_nanos(config.fanout_sleep_ns),
        });
        w.blocking = Duration::from_nanos(config.blocking_ns);
        w.hops = config.hops.min(u64::from(u32::MAX)) as u32;
        w.seed = config.seed;
        if (config.size as usize) >= ServeConfig::PROTOCOL_END {
            w.protocol = Protocol::decode(config.protocol);
        }
        w
    }

    /// The [`crate::PluginHeader::workloads`] bits a plugin must have to serve this workload.
    pub fn needs(&self) -> u32 {
        let mut bits = 0;
        let mut need = |yes: bool, bit: u32| {
            if yes {
                bits |= bit;
            }
        };
        need(!self.cpu.is_zero(), WORKLOAD_CPU);
        need(!self.sleep.is_zero(), WORKLOAD_SLEEP);
        need(
            self.response_bytes.is_some() && !self.is_echo(),
            WORKLOAD_RESPONSE,
        );
        need(self.cpu.is_drawn() || self.sleep.is_drawn(), WORKLOAD_DIST);
        need(self.fanout().is_some(), WORKLOAD_FANOUT);
        need(!self.blocking.is_zero(), WORKLOAD_BLOCKING);
        need(self.hops > 0, WORKLOAD_HOPS);
        need(self.protocol == Protocol::Http1, WORKLOAD_HTTP1);
        bits
    }

    /// Why a plugin whose header declares `has` cannot serve this workload, if it cannot: the
    /// parts it lacks, named as a scenario names them.
    pub fn unsupported(&self, has: u32) -> Option<String> {
        let missing = self.needs() & !has;
        if missing == 0 {
            return None;
        }
        let names: Vec<&str> = PARTS
            .into_iter()
            .filter(|(bit, _)| missing & bit != 0)
            .map(|(_, name)| name)
            .collect();
        Some(format!(
            "the plugin does not serve the workload's {} per request",
            names.join(" and ")
        ))
    }

    /// What one request asks of the server, for the audit: (timers, tasks spawned, blocking
    /// jobs, channel messages) per request.
    pub fn per_request(&self) -> PerRequest {
        let fanout = self.fanout().unwrap_or_default();
        let timers = u64::from(!self.sleep.is_zero())
            + if fanout.sleep.is_zero() {
                0
            } else {
                u64::from(fanout.tasks)
            };
        PerRequest {
            timers,
            tasks: u64::from(fanout.tasks),
            blocking_jobs: u64::from(!self.blocking.is_zero()),
            hop_messages: u64::from(self.hops),
        }
    }
}

/// What one request asks of the server ([`Workload::per_request`]), in the units the server's
/// counters ([`crate::ServeReport`]) count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerRequest {
    pub timers: u64,
    pub tasks: u64,
    pub blocking_jobs: u64,
    /// Messages the relay tasks receive: the request goes round a ring of `hops` relay tasks
    /// (out through the first, back from the last), each receiving it once.
    pub hop_messages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_needs_nothing_and_answers_its_own_bytes() {
        let w = Workload::echo(64);
        assert_eq!(w.needs(), 0);
        assert_eq!(w.response_bytes(), Some(64));
        assert_eq!(w.unsupported(0), None);
    }

    #[test]
    fn a_plugin_without_a_part_is_told_which() {
        let w = Workload {
            cpu: Dist::Fixed(Duration::from_micros(20)),
            sleep: Dist::Fixed(Duration::from_millis(1)),
            ..Workload::echo(64)
        };
        assert_eq!(w.needs(), WORKLOAD_V1);
        assert_eq!(w.unsupported(WORKLOAD_V1), None);
        assert_eq!(
            w.unsupported(WORKLOAD_CPU).as_deref(),
            Some("the plugin does not serve the workload's sleep per request")
        );
        let w = Workload {
            hops: 2,
            blocking: Duration::from_micros(100),
            ..w
        };
        assert_eq!(
            w.unsupported(WORKLOAD_V1).as_deref(),
            Some("the plugin does not serve the workload's blocking and hops per request")
        );
    }

    #[test]
    fn every_field_survives_the_abi() {
        let w = Workload {
            request_bytes: Some(64),
            response_bytes: Some(1024),
            cpu: Dist::LogNormal {
                mean: Duration::from_micros(20),
                p99: Duration::from_micros(100),
            },
            sleep: Dist::Exp {
                mean: Duration::from_millis(1),
            },
            fanout: Some(Fanout {
                tasks: 8,
                cpu: Duration::from_micros(5),
                sleep: Duration::from_micros(200),
            }),
            blocking: Duration::from_micros(100),
            hops: 2,
            seed: 42,
            protocol: Protocol::Http1,
            // The client's alone: not carried.
            pipeline: 1,
            header_bytes: 0,
        };
        let mut c = ServeConfig::new();
        w.write_into(&mut c);
        assert_eq!(Workload::read_from(&c), w);
        // A host from before the workload fields: the v1 reading.
        c.size = ServeConfig::WORKLOAD_END as u32 - 8;
        let old = Workload::read_from(&c);
        assert_eq!(old.cpu, Dist::Fixed(Duration::from_micros(20)));
        assert_eq!(old.fanout, None);
        // A host from before the protocol field: the echo.
        c.size = ServeConfig::PROTOCOL_END as u32 - 4;
        assert_eq!(Workload::read_from(&c).protocol, Protocol::Echo);
        assert_eq!(Workload::read_from(&c).fanout, w.fanout);
    }

    #[test]
    fn http_needs_its_bit_and_names_it() {
        let w = Workload::http1();
        assert_eq!(w.needs(), WORKLOAD_HTTP1);
        assert!(!w.is_echo());
        assert_eq!(
            w.unsupported(WORKLOAD_ALL).as_deref(),
            Some("the plugin does not serve the workload's protocol = \"http1\" per request")
        );
        let posted = Workload {
            request_bytes: Some(64),
            response_bytes: Some(64),
            ..Workload::http1()
        };
        // The same size both ways is still an HTTP answer, not an echo.
        assert_eq!(posted.needs(), WORKLOAD_HTTP1 | WORKLOAD_RESPONSE);
        let mut c = ServeConfig::new();
        posted.write_into(&mut c);
        assert_eq!(c.response_bytes, 64);
    }

    #[test]
    fn draws_have_their_mean_and_p99_and_repeat_with_the_seed() {
        let mean = Duration::from_micros(20);
        let p99 = Duration::from_micros(100);
        for dist in [Dist::Exp { mean }, Dist::LogNormal { mean, p99 }] {
            let mut rng = Rng::new(7, 0);
            let mut draws: Vec<f64> = (0..200_000)
                .map(|_| dist.draw(&mut rng).as_secs_f64() * 1e6)
                .collect();
            let avg = draws.iter().sum::<f64>() / draws.len() as f64;
            assert!((avg - 20.0).abs() < 0.5, "{dist:?}: mean {avg}");
            draws.sort_by(f64::total_cmp);
            let q99 = draws[draws.len() * 99 / 100];
            if let Dist::LogNormal { .. } = dist {
                assert!((q99 - 100.0).abs() < 3.0, "{dist:?}: p99 {q99}");
            } else {
                // exp: p99 = mean * ln(100)
                assert!(
                    (q99 - 20.0 * 100f64.ln()).abs() < 3.0,
                    "{dist:?}: p99 {q99}"
                );
            }
        }
        let (mut a, mut b) = (Rng::new(1, 5), Rng::new(1, 5));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(1, 5).next_u64(), Rng::new(1, 6).next_u64());
    }

    #[test]
    fn impossible_lognormals_are_refused() {
        let mean = Duration::from_micros(20);
        assert!(Dist::LogNormal { mean, p99: mean }.invalid().is_some());
        let p99 = mean * 20;
        assert!(Dist::LogNormal { mean, p99 }.invalid().is_some());
        let p99 = mean * 5;
        assert!(Dist::LogNormal { mean, p99 }.invalid().is_none());
    }
}
