//! runbench across machines: a controller (`runbench run --agents N`) and agents
//! (`runbench agent`) that run today's `serve` and `loadgen` children on their hosts.
//!
//! The run loop does not change: a child placed on an agent ([`Placement::server`],
//! [`Placement::loadgen`]) is a [`crate::supervise::ChildProc`] whose lines travel over the agent's
//! authenticated connection ([`wire`], [`handshake`]) instead of a pipe, and whose commands
//! carrying instants are translated into the agent's clock ([`clock`]). Results merge exactly
//! as local processes' do. An agent that goes silent is lost ([`link`]); its children fail with
//! why, and the survivors' measurements are kept.

pub mod agent;
pub mod cidr;
pub mod clock;
pub mod controller;
pub mod handshake;
pub mod link;
pub mod msg;
pub mod token;
pub mod wire;

use link::AgentLink;
use std::sync::Arc;
use std::time::Duration;

/// Each side sends a heartbeat this often...
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// ...and declares the other lost after this long without a frame.
pub const LOST_AFTER: Duration = Duration::from_secs(2);

/// Where each process of a run runs: on this host, or on the agents of a run across machines.
/// Made once per `run` command (after the agents joined), carried by the plan and handed down
/// to whatever starts a process.
#[derive(Clone, Default)]
pub struct Placement(Option<Arc<controller::Cluster>>);

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Placement::Local"),
            Some(c) => write!(f, "Placement::Agents({})", c.loads.len() + 1),
        }
    }
}

impl Placement {
    /// Every process on this host.
    pub fn local() -> Self {
        Placement(None)
    }

    /// The servers on the server agent, the load processes over the load agents.
    pub fn agents(cluster: controller::Cluster) -> Self {
        Placement(Some(Arc::new(cluster)))
    }

    /// The agents, in a run across machines.
    pub fn cluster(&self) -> Option<&controller::Cluster> {
        self.0.as_deref()
    }

    pub fn is_local(&self) -> bool {
        self.0.is_none()
    }

    /// Where the servers run: the server agent, in a run across machines.
    pub fn server(&self) -> Option<Arc<AgentLink>> {
        self.cluster().map(|c| c.server.clone())
    }

    /// Where load process `i` runs: load agent `i mod agents`, in a run across machines.
    pub fn loadgen(&self, i: usize) -> Option<Arc<AgentLink>> {
        self.cluster().map(|c| c.loads[i % c.loads.len()].clone())
    }

    /// How far ahead of now a start instant must lie so that every process receives it in
    /// time: `local` on one host; across machines a few times the slowest round trip measured
    /// and a margin for the scheduler, at least `local`; `--start-lead` when given.
    pub fn start_lead(&self, local: Duration) -> Duration {
        let Some(c) = self.cluster() else {
            return local;
        };
        if let Some(lead) = c.start_lead {
            return lead;
        }
        match c.all().map(|a| a.offset.rtt_ns).max() {
            Some(slowest) => {
                (Duration::from_nanos(slowest * 4) + Duration::from_millis(10)).max(local)
            }
            None => local,
        }
    }

    /// How many load agents share the load (0: a local run).
    pub fn load_agents(&self) -> usize {
        self.cluster().map_or(0, |c| c.loads.len())
    }

    /// Across machines, each load process's result as it arrived, so the merge can be checked
    /// against its parts (`merged:` follows in the log).
    pub fn log_shares(&self, results: &[Option<Result<crate::protocol::LoadResult, String>>]) {
        if self.is_local() {
            return;
        }
        for (i, r) in results.iter().enumerate() {
            let Some(Ok(r)) = r else { continue };
            let agent = self.loadgen(i).map(|a| a.name.clone()).unwrap_or_default();
            let count = r.histograms.decode().map(|h| h.latency.len()).unwrap_or(0);
            crate::console::log(&format!(
                "load process {i} on agent {agent}: requests={} histogram_count={count}",
                r.counters.requests
            ));
        }
    }

    /// Across machines, the agent of each of `shards` load processes (by index).
    pub fn shard_agents(&self, shards: usize) -> Option<Vec<String>> {
        let c = self.cluster()?;
        Some(
            (0..shards)
                .map(|i| c.loads[i % c.loads.len()].name.clone())
                .collect(),
        )
    }

    /// The agents for meta.json and the bound on how far apart their starts can be (ns).
    pub fn meta_agents(&self) -> Option<(Vec<AgentInfo>, u64)> {
        let c = self.cluster()?;
        let infos = c
            .all()
            .map(|a| AgentInfo {
                name: a.name.clone(),
                role: a.role.to_string(),
                version: a.version.clone(),
                address: a.addr.ip().to_string(),
                offset_ns: a.offset.offset_ns,
                rtt_ns: a.offset.rtt_ns,
                offset_error_ns: a.offset.error_bound_ns(),
            })
            .collect();
        let offsets: Vec<clock::Offset> = c.all().map(|a| a.offset).collect();
        Some((infos, clock::skew_bound_ns(&offsets)))
    }
}

/// meta.json's `agents`: who took part, with their clocks.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AgentInfo {
    pub name: String,
    pub role: String,
    pub version: String,
    pub address: String,
    /// Agent CLOCK_MONOTONIC - controller CLOCK_MONOTONIC, ns (from the fastest round trip).
    pub offset_ns: i64,
    pub rtt_ns: u64,
    /// The offset is within this of the truth (rtt/2).
    pub offset_error_ns: u64,
}
