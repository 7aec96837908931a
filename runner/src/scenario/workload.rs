//! The `[workload]` section (and its older names `[load] payload_bytes`, `[server] work` and
//! `sleep`): what each request is and what the server does with it, checked part by part with
//! bounds that keep every input's memory bounded.

use super::raw::{self, RawDist, RawScenario, TableOrList};
use super::{Checker, ScenarioError, MAX_PAYLOAD_BYTES};
use runbench_plugin_abi::{Dist, Fanout, Protocol, Workload};
use serde::Serialize;
use std::time::Duration;

/// The longest duration of any part of a request (a mean, for drawn ones): a request that
/// takes longer than this measures the timeout, not the runtime.
pub const MAX_PART_DURATION: Duration = Duration::from_secs(10);
/// The most tasks one request may fan out to: the server holds them all at once per connection.
pub const MAX_FANOUT_TASKS: i64 = 1024;
/// The most channel hops one request may cross (each is a relay task per connection).
pub const MAX_HOPS: i64 = 64;
/// The largest answer: the server builds one per connection in memory.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
/// The most tasks the workload may keep alive at once over all connections (fan-out tasks and
/// hop relays, times connections): each is a task in the runtime's memory.
pub const MAX_TASKS_ALIVE: u64 = 1 << 20;
/// The most answer bytes the servers may hold at once over all connections: the answers to
/// the requests one read completed (one in the closed model; in the open model up to
/// `ECHO_BUFFER_BYTES / request_bytes`), built in one buffer per connection.
pub const MAX_ANSWER_MEMORY: u64 = 4 << 30;

/// One workload of the scenario, with the name its rows carry. `request_bytes` is left unset:
/// it is the point's (`payload_bytes`, a sweep of its own).
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadSpec {
    /// Empty for the single `[workload]` table (and scenarios without one): the point's key
    /// then reads as it always has.
    pub name: String,
    /// What it does, in words (meta.json, the rows' `workload` column).
    pub parts: String,
    #[serde(skip)]
    pub workload: Workload,
}

/// `cpu 20µs · sleep exp(1ms) · fanout 8×(5µs, 200µs) · blocking 100µs · 2 hops · 1024 B
/// answers` (led by `http1`, with its `pipeline` when deeper than 1, for HTTP), or `echo`.
pub fn describe(w: &Workload) -> String {
    let t = |d: Duration| humantime::format_duration(d).to_string();
    let dist = |d: &Dist| match *d {
        Dist::Fixed(x) => t(x),
        Dist::Exp { mean } => format!("exp({})", t(mean)),
        Dist::LogNormal { mean, p99 } => format!("lognormal({}, p99 {})", t(mean), t(p99)),
    };
    let mut parts = Vec::new();
    if w.protocol == Protocol::Http1 {
        parts.push(match w.pipeline() {
            1 => "http1".to_string(),
            n => format!("http1 pipeline {n}"),
        });
    }
    if !w.cpu.is_zero() {
        parts.push(format!("cpu {}", dist(&w.cpu)));
    }
    if !w.sleep.is_zero() {
        parts.push(format!("sleep {}", dist(&w.sleep)));
    }
    if let Some(f) = w.fanout() {
        parts.push(format!("fanout {}×({}, {})", f.tasks, t(f.cpu), t(f.sleep)));
    }
    if !w.blocking.is_zero() {
        parts.push(format!("blocking {}", t(w.blocking)));
    }
    if w.hops > 0 {
        parts.push(format!(
            "{} hop{}",
            w.hops,
            if w.hops == 1 { "" } else { "s" }
        ));
    }
    if let Some(r) = w.response_bytes.filter(|_| !w.is_echo()) {
        parts.push(format!("{r} B answers"));
    }
    if parts.is_empty() {
        "echo".into()
    } else {
        parts.join(" · ")
    }
}

/// A default name from the parts: `cpu`, `sleep`, `cpu-sleep`, `fanout`, ... (`echo` for none).
fn default_name(w: &Workload) -> String {
    let mut parts = Vec::new();
    for (yes, name) in [
        (w.protocol == Protocol::Http1, "http1"),
        (!w.cpu.is_zero(), "cpu"),
        (!w.sleep.is_zero(), "sleep"),
        (w.fanout().is_some(), "fanout"),
        (!w.blocking.is_zero(), "blocking"),
        (w.hops > 0, "hops"),
        (w.response_bytes.is_some() && !w.is_echo(), "sized"),
    ] {
        if yes {
            parts.push(name);
        }
    }
    if parts.is_empty() {
        "echo".into()
    } else {
        parts.join("-")
    }
}

impl Checker<'_> {
    /// The request sizes (the `payload_bytes` sweep) and the workloads, from `[workload]` and the
    /// older keys, which must agree with it where both are given.
    /// `min_request`: the smallest request size (an HTTP GET has no body: 0; an echo 1).
    pub(super) fn workloads(
        &self,
        raw: &RawScenario,
        min_request: i64,
    ) -> Result<(Vec<u64>, Vec<WorkloadSpec>), ScenarioError> {
        let list: Vec<raw::RawWorkload> = raw
            .workload
            .as_ref()
            .map(TableOrList::to_vec)
            .unwrap_or_else(|| vec![raw::RawWorkload::default()]);
        let listed = matches!(raw.workload, Some(TableOrList::Many(_)));
        if list.is_empty() {
            return self.err(
                "workload",
                "is an empty list; give one [workload] table or [[workload]] entries".into(),
            );
        }
        let at = |i: usize, key: &str| match listed {
            true => format!("workload.{i}.{key}"),
            false => format!("workload.{key}"),
        };
        let request_bytes = self.request_bytes(raw, &list, &at, min_request)?;
        let mut specs: Vec<WorkloadSpec> = Vec::new();
        for (i, w) in list.iter().enumerate() {
            let workload = self.one_workload(raw, w, &|key| at(i, key))?;
            let name = match (&w.name, listed) {
                (Some(n), _) => {
                    let n = n.trim().to_string();
                    if let Err(e) = super::check_name(&n) {
                        return self.err(&at(i, "name"), e);
                    }
                    n
                }
                (None, true) => default_name(&workload),
                (None, false) => String::new(),
            };
            if let Some(twice) = specs.iter().find(|s| s.name == name) {
                return self.err(
                    &at(i, "name"),
                    format!(
                        "`{}` names two workloads; give each [[workload]] its own `name`",
                        twice.name
                    ),
                );
            }
            specs.push(WorkloadSpec {
                name,
                parts: describe(&workload),
                workload,
            });
        }
        Ok((request_bytes, specs))
    }

    /// `[workload] request_bytes` or its older name `[load] payload_bytes` (the same sweep).
    fn request_bytes(
        &self,
        raw: &RawScenario,
        list: &[raw::RawWorkload],
        at: &dyn Fn(usize, &str) -> String,
        min: i64,
    ) -> Result<Vec<u64>, ScenarioError> {
        let max = MAX_PAYLOAD_BYTES as i64;
        let mut from_workload: Option<(String, Vec<u64>)> = None;
        for (i, w) in list.iter().enumerate() {
            let Some(v) = &w.request_bytes else { continue };
            let field = at(i, "request_bytes");
            let values = self.ints(&field, v, min, max)?;
            match &from_workload {
                Some((first, seen)) if *seen != values => {
                    return self.err(
                        &field,
                        format!(
                            "differs from `{first}`: the request size is one sweep for every \
                             workload (write it once, in the first)"
                        ),
                    )
                }
                Some(_) => {}
                None => from_workload = Some((field, values)),
            }
        }
        let old = match &raw.load.payload_bytes {
            Some(v) => Some(self.ints("load.payload_bytes", v, min, max)?),
            None => None,
        };
        match (from_workload, old) {
            (Some((_, new)), Some(old)) if new != old => self.err(
                "load.payload_bytes",
                format!(
                    "is the older name of `[workload] request_bytes`, which says {}; give one \
                     of them",
                    show_list(&new)
                ),
            ),
            (Some((_, v)), _) | (None, Some(v)) => Ok(v),
            (None, None) => self.err(
                "load",
                "missing the request size: `request_bytes` in [workload] (or `payload_bytes` in \
                 [load]), e.g. 64"
                    .into(),
            ),
        }
    }

    fn one_workload(
        &self,
        raw: &RawScenario,
        w: &raw::RawWorkload,
        at: &dyn Fn(&str) -> String,
    ) -> Result<Workload, ScenarioError> {
        let cpu = self.aliased_dist(at("cpu"), &w.cpu, "server.work", &raw.server.work)?;
        let sleep = self.aliased_dist(at("sleep"), &w.sleep, "server.sleep", &raw.server.sleep)?;
        let response_bytes = match w.response_bytes {
            Some(n) => Some(self.int(&at("response_bytes"), n, 1, MAX_RESPONSE_BYTES as i64)?),
            None => None,
        };
        let fanout = match &w.fanout {
            Some(f) => Some(Fanout {
                tasks: self.int(&at("fanout.tasks"), f.tasks, 1, MAX_FANOUT_TASKS)? as u32,
                cpu: self.part(&at("fanout.cpu"), f.cpu.as_deref())?,
                sleep: self.part(&at("fanout.sleep"), f.sleep.as_deref())?,
            }),
            None => None,
        };
        Ok(Workload {
            request_bytes: None,
            response_bytes,
            cpu,
            sleep,
            fanout,
            blocking: self.part(&at("blocking"), w.blocking.as_deref())?,
            hops: match w.hops {
                Some(n) => self.int(&at("hops"), n, 0, MAX_HOPS)? as u32,
                None => 0,
            },
            seed: 0,
            // Scenario-wide (`Scenario::protocol`), set per point by `Scenario::workload`.
            ..Workload::default()
        })
    }

    /// `[workload] cpu`/`sleep`, or the older `[server] work`/`sleep` when it is not given; both
    /// given must say the same.
    fn aliased_dist(
        &self,
        field: String,
        new: &Option<RawDist>,
        old_field: &str,
        old: &Option<String>,
    ) -> Result<Dist, ScenarioError> {
        let old = match old {
            Some(t) => Some(self.part(old_field, Some(t))?),
            None => None,
        };
        let Some(new) = new else {
            return Ok(Dist::Fixed(old.unwrap_or_default()));
        };
        let dist = self.dist(&field, new)?;
        if let Some(old) = old.filter(|&o| Dist::Fixed(o) != dist) {
            return self.err(
                old_field,
                format!(
                    "is the older name of `{field}`, which differs from it ({} against {}); \
                     give one of them",
                    humantime::format_duration(old),
                    describe_dist(&dist)
                ),
            );
        }
        Ok(dist)
    }

    /// One duration of a request's work: at least zero, at most [`MAX_PART_DURATION`].
    fn part(&self, field: &str, text: Option<&str>) -> Result<Duration, ScenarioError> {
        let Some(text) = text else {
            return Ok(Duration::ZERO);
        };
        let d = self.duration(field, text, true)?;
        if d > MAX_PART_DURATION {
            return self.err(
                field,
                format!(
                    "at most {} per request (longer measures the timeouts, not the runtime), got \
                     {}",
                    humantime::format_duration(MAX_PART_DURATION),
                    humantime::format_duration(d)
                ),
            );
        }
        Ok(d)
    }

    fn dist(&self, field: &str, raw: &RawDist) -> Result<Dist, ScenarioError> {
        let d = match raw {
            RawDist::Fixed(t) => return Ok(Dist::Fixed(self.part(field, Some(t))?)),
            RawDist::Drawn(d) => d,
        };
        let mean = self.part(&format!("{field}.mean"), Some(&d.mean))?;
        let shape = d.dist.as_deref().map(str::trim).unwrap_or("fixed");
        if shape != "lognormal" && d.p99.is_some() {
            return self.err(
                &format!("{field}.p99"),
                format!(
                    "only a log-normal has a p99 (dist = \"lognormal\"), not dist = \"{shape}\""
                ),
            );
        }
        let dist = match shape {
            "fixed" => Dist::Fixed(mean),
            "exp" => Dist::Exp { mean },
            "lognormal" => {
                let Some(p99) = &d.p99 else {
                    return self.err(
                        field,
                        "a log-normal needs its `p99` too, e.g. { mean = \"20us\", dist = \
                         \"lognormal\", p99 = \"100us\" }"
                            .into(),
                    );
                };
                let p99 = self.duration(&format!("{field}.p99"), p99, true)?;
                Dist::LogNormal { mean, p99 }
            }
            other => {
                return self.err(
                    &format!("{field}.dist"),
                    format!(
                        "`{other}` is not a distribution; use \"fixed\", \"exp\" or \"lognormal\""
                    ),
                )
            }
        };
        if mean.is_zero() && shape != "fixed" {
            return self.err(
                &format!("{field}.mean"),
                "a drawn duration needs a mean above zero".into(),
            );
        }
        if let Some(why) = dist.invalid() {
            return self.err(&format!("{field}.p99"), why);
        }
        Ok(dist)
    }

    /// What only the workloads and the load together can say: tasks and answer memory over
    /// every connection stay bounded.
    pub(super) fn workloads_fit(
        &self,
        specs: &[WorkloadSpec],
        listed: bool,
        load: &super::LoadSpec,
    ) -> Result<(), ScenarioError> {
        let peak_connections = (load.peak_connections() + load.idle_connections) as u64;
        // A server answers every request a read completed at once: one in the closed model
        // (one request in flight per connection), in the open model as many as fit its read
        // buffer.
        let smallest = load.payload_bytes.iter().copied().min().unwrap_or(1).max(1);
        let per_read = match load.model {
            super::Model::Closed => 1,
            super::Model::Open => {
                (runbench_plugin_abi::ECHO_BUFFER_BYTES as u64).div_ceil(smallest)
            }
        };
        for (i, s) in specs.iter().enumerate() {
            let at = |key: &str| match listed {
                true => format!("workload.{i}.{key}"),
                false => format!("workload.{key}"),
            };
            let w = &s.workload;
            let per_conn = u64::from(w.fanout().map_or(0, |f| f.tasks)) + u64::from(w.hops);
            if per_conn * peak_connections > MAX_TASKS_ALIVE {
                let field = if w.fanout().is_some() {
                    at("fanout.tasks")
                } else {
                    at("hops")
                };
                return self.err(
                    &field,
                    format!(
                        "{per_conn} tasks per connection (fan-out tasks and hop relays) over \
                         {peak_connections} connections is {} tasks alive at once; at most \
                         {MAX_TASKS_ALIVE}",
                        per_conn * peak_connections
                    ),
                );
            }
            if let Some(r) = w.response_bytes {
                let held = r * per_read * peak_connections;
                if held > MAX_ANSWER_MEMORY {
                    let reads = match per_read {
                        1 => String::new(),
                        n => format!(
                            " x {n} answers a read can complete (open model, {smallest} B \
                             requests)"
                        ),
                    };
                    return self.err(
                        &at("response_bytes"),
                        format!(
                            "{r} B answers{reads} over {peak_connections} connections is {} MiB \
                             of answers held at once; at most {} MiB",
                            held >> 20,
                            MAX_ANSWER_MEMORY >> 20
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

fn describe_dist(d: &Dist) -> String {
    describe(&Workload {
        cpu: *d,
        ..Workload::default()
    })
    .trim_start_matches("cpu ")
    .to_string()
}

fn show_list(v: &[u64]) -> String {
    match v {
        [one] => one.to_string(),
        _ => format!("{v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_workload_is_named_and_described_as_http_not_as_an_echo() {
        let http = Workload {
            protocol: Protocol::Http1,
            ..Workload::default()
        };
        assert_eq!(describe(&Workload::default()), "echo");
        assert_eq!(default_name(&Workload::default()), "echo");
        assert_eq!(describe(&http), "http1");
        assert_eq!(default_name(&http), "http1");
        let deep = Workload {
            pipeline: 16,
            cpu: Dist::Fixed(Duration::from_micros(20)),
            response_bytes: Some(1024),
            ..http
        };
        assert_eq!(
            describe(&deep),
            "http1 pipeline 16 · cpu 20us · 1024 B answers"
        );
        assert_eq!(default_name(&deep), "http1-cpu-sized");
    }
}
