//! Scenario files: TOML -> [`raw`] serde structs -> a checked [`Scenario`].

mod error;
mod raw;

pub use error::ScenarioError;

use raw::RawScenario;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Payloads above this are refused: the load generator and the servers buffer whole messages.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;
/// Hard ceiling for one measurement, so a typo cannot occupy a machine for a day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A validated scenario. Everything here has been range-checked.
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
    pub shutdown: ShutdownSpec,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerSpec {
    pub threads: usize,
    pub cpus: Vec<usize>,
    /// 0 = no limit.
    pub max_connections: usize,
    /// Server processes sharing the port with SO_REUSEPORT.
    pub processes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadSpec {
    pub connections: usize,
    pub payload_bytes: u64,
    #[serde(with = "humantime_serde_ms")]
    pub warmup: Duration,
    #[serde(with = "humantime_serde_ms")]
    pub duration: Duration,
    pub cpus: Vec<usize>,
    /// Load-generator worker threads per process.
    pub threads: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShutdownSpec {
    #[serde(with = "humantime_serde_ms")]
    pub grace: Duration,
}

mod humantime_serde_ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Facts about the machine that validation needs.
#[derive(Clone, Debug)]
pub struct Host {
    pub cpus: usize,
}

impl Host {
    pub fn current() -> Self {
        Host {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Reads and checks a scenario file.
pub fn load(path: &Path, host: &Host) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, host)
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
    fn err<T>(
        &self,
        field: &str,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ScenarioError> {
        Err(ScenarioError::at(
            self.path,
            self.text,
            span,
            Some(field.to_string()),
            message,
        ))
    }

    fn int(&self, field: &str, v: &Spanned<i64>, min: i64, max: i64) -> Result<u64, ScenarioError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return self.err(
                field,
                v.span(),
                format!("must be between {min} and {max}, got {n}"),
            );
        }
        Ok(n as u64)
    }

    fn duration(
        &self,
        field: &str,
        v: &Spanned<String>,
        allow_zero: bool,
    ) -> Result<Duration, ScenarioError> {
        let d = humantime::parse_duration(v.get_ref().trim()).or_else(|e| {
            self.err(
                field,
                v.span(),
                format!(
                    "`{}` is not a duration ({e}); write e.g. \"500ms\", \"5s\", \"2m\"",
                    v.get_ref()
                ),
            )
        })?;
        if d.is_zero() && !allow_zero {
            return self.err(field, v.span(), "must be longer than zero".into());
        }
        if d > MAX_DURATION {
            return self.err(
                field,
                v.span(),
                format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_DURATION)
                ),
            );
        }
        Ok(d)
    }

    fn cpus(&self, field: &str, v: &Spanned<Vec<i64>>) -> Result<Vec<usize>, ScenarioError> {
        let last = self.host.cpus as i64 - 1;
        if v.get_ref().is_empty() {
            return self.err(
                field,
                v.span(),
                format!("needs at least one CPU (0..={last})"),
            );
        }
        let mut out = Vec::new();
        for &c in v.get_ref() {
            if c < 0 || c > last {
                return self.err(
                    field,
                    v.span(),
                    format!("CPU {c} does not exist; this machine has CPUs 0..={last}"),
                );
            }
            if out.contains(&(c as usize)) {
                return self.err(field, v.span(), format!("CPU {c} is listed twice"));
            }
            out.push(c as usize);
        }
        Ok(out)
    }

    fn check(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let name = raw.name.get_ref().trim();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !name_ok {
            return self.err("name", raw.name.span(), "must be non-empty and use only letters, digits, `-`, `_`, `.` (it names the output folder)".into());
        }
        let runtimes = match &raw.runtimes {
            None => None,
            Some(list) if list.get_ref().is_empty() => {
                return self.err(
                    "runtimes",
                    list.span(),
                    "is empty; list runtimes, or leave the key out to run every built plugin"
                        .into(),
                )
            }
            Some(list) => {
                let mut names: Vec<String> = Vec::new();
                for item in list.get_ref() {
                    let n = item.get_ref().trim().to_string();
                    if names.contains(&n) {
                        return self.err("runtimes", item.span(), format!("`{n}` is listed twice"));
                    }
                    names.push(n);
                }
                Some(names)
            }
        };

        let s = &raw.server;
        let (default_server_cpus, default_load_cpus) = default_cpus(self.host.cpus);
        let server_cpus = match &s.cpus {
            Some(v) => self.cpus("server.cpus", v)?,
            None => default_server_cpus,
        };
        let server = ServerSpec {
            threads: match &s.threads {
                Some(v) => self.int("server.threads", v, 1, 1024)? as usize,
                None => server_cpus.len(),
            },
            max_connections: match &s.max_connections {
                Some(v) => self.int("server.max_connections", v, 0, 10_000_000)? as usize,
                None => 0,
            },
            processes: match &s.processes {
                Some(v) => self.int("server.processes", v, 1, 256)? as usize,
                None => 1,
            },
            cpus: server_cpus,
        };

        let l = &raw.load;
        let load_cpus = match &l.cpus {
            Some(v) => self.cpus("load.cpus", v)?,
            None => default_load_cpus,
        };
        let load = LoadSpec {
            connections: self.int("load.connections", &l.connections, 1, 10_000_000)? as usize,
            payload_bytes: self.int(
                "load.payload_bytes",
                &l.payload_bytes,
                1,
                MAX_PAYLOAD_BYTES as i64,
            )?,
            warmup: match &l.warmup {
                Some(v) => self.duration("load.warmup", v, true)?,
                None => Duration::ZERO,
            },
            duration: self.duration("load.duration", &l.duration, false)?,
            threads: match &l.threads {
                Some(v) => self.int("load.threads", v, 1, 1024)? as usize,
                None => load_cpus.len(),
            },
            cpus: load_cpus,
        };
        let shutdown = ShutdownSpec {
            grace: match &raw.shutdown.grace {
                Some(v) => self.duration("shutdown.grace", v, true)?,
                None => Duration::from_secs(2),
            },
        };
        Ok(Scenario {
            name: name.to_string(),
            description: raw.description,
            source: self.path.to_path_buf(),
            runtimes,
            server,
            load,
            shutdown,
        })
    }
}

/// Server on CPU 0, load on the rest (or sharing CPU 0 on a one-CPU machine).
fn default_cpus(n: usize) -> (Vec<usize>, Vec<usize>) {
    if n <= 1 {
        (vec![0], vec![0])
    } else {
        (vec![0], (1..n).collect())
    }
}
