//! What one load-generator thread runs with, derived from the process's spec: the target, the
//! workload, the load model and its timing.

use crate::protocol::{LoadgenSpec, Ramp};
use crate::scenario::Model;
use runbench_plugin_abi::Workload;
use std::net::SocketAddr;
use std::time::Duration;

/// The worker's settings, derived from the process's spec.
pub struct Settings {
    pub target: SocketAddr,
    pub model: Model,
    pub workload: Workload,
    pub open_connections: Ramp,
    pub rate: Option<Ramp>,
    pub requests_per_connection: Option<u64>,
    pub skew: Option<crate::scenario::Skew>,
    pub send_window: Duration,
    pub connect_timeout: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub interval: Duration,
    pub signal_at: Option<Duration>,
}

impl Settings {
    pub fn from_spec(spec: &LoadgenSpec) -> Self {
        Settings {
            target: spec.target,
            model: spec.model,
            workload: spec.workload,
            open_connections: spec.open_connections.clone(),
            rate: spec.rate.clone(),
            requests_per_connection: spec.requests_per_connection,
            skew: spec.skew,
            send_window: Duration::from_nanos(spec.send_window_ns),
            connect_timeout: Duration::from_millis(spec.connect_timeout_ms),
            warmup: Duration::from_millis(spec.warmup_ms),
            duration: Duration::from_millis(spec.duration_ms),
            interval: Duration::from_millis(spec.interval_ms.max(1)),
            signal_at: spec.signal_at_ms.map(Duration::from_millis),
        }
    }
}
