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
/// The parts every plugin built before [`crate::PluginHeader::workloads`] existed serves (they
/// read `work_ns` and `sleep_ns` from the first version of the ABI on).
pub const WORKLOAD_V1: u32 = WORKLOAD_CPU | WORKLOAD_SLEEP;

/// One request shape. Today's shape is the echo: the client sends `request_bytes`, the server
/// does `cpu` and `sleep` for it and answers with the same bytes, which the client checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Workload {
    /// Bytes the client sends per request (`None`: unknown, as for an external target's own
    /// protocol; every read then counts as one request).
    pub request_bytes: Option<u64>,
    /// Busy CPU time per request, spent on the thread that serves the connection.
    pub cpu: Duration,
    /// Awaited per request on the runtime's own timer (a downstream call).
    pub sleep: Duration,
}

impl Workload {
    /// The plain echo of `request_bytes`, with no work per request.
    pub const fn echo(request_bytes: u64) -> Self {
        Workload {
            request_bytes: Some(request_bytes),
            cpu: Duration::ZERO,
            sleep: Duration::ZERO,
        }
    }

    /// Bytes of a correct answer to one request: the request's own bytes (an echo).
    pub fn response_bytes(&self) -> Option<u64> {
        self.request_bytes
    }

    /// Writes the workload into the host's [`ServeConfig`] (the host's side of the ABI).
    pub fn write_into(&self, config: &mut ServeConfig) {
        config.message_bytes = self.request_bytes.unwrap_or(0);
        config.work_ns = self.cpu.as_nanos() as u64;
        config.sleep_ns = self.sleep.as_nanos() as u64;
    }

    /// The workload a host wrote into `config` (the plugin's side of the ABI). Fields appended
    /// to [`ServeConfig`] later are read only where `config.size` covers them.
    pub fn read_from(config: &ServeConfig) -> Workload {
        Workload {
            request_bytes: (config.message_bytes > 0).then_some(config.message_bytes),
            cpu: Duration::from_nanos(config.work_ns),
            sleep: Duration::from_nanos(config.sleep_ns),
        }
    }

    /// The [`crate::PluginHeader::workloads`] bits a plugin must have to serve this workload.
    pub fn needs(&self) -> u32 {
        let mut bits = 0;
        if !self.cpu.is_zero() {
            bits |= WORKLOAD_CPU;
        }
        if !self.sleep.is_zero() {
            bits |= WORKLOAD_SLEEP;
        }
        bits
    }

    /// Why a plugin whose header declares `has` cannot serve this workload, if it cannot: the
    /// parts it lacks, named as a scenario names them.
    pub fn unsupported(&self, has: u32) -> Option<String> {
        let missing = self.needs() & !has;
        if missing == 0 {
            return None;
        }
        let names: Vec<&str> = [(WORKLOAD_CPU, "cpu"), (WORKLOAD_SLEEP, "sleep")]
            .into_iter()
            .filter(|(bit, _)| missing & bit != 0)
            .map(|(_, name)| name)
            .collect();
        Some(format!(
            "the plugin does not serve the workload's {} per request",
            names.join(" and ")
        ))
    }
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
            cpu: Duration::from_micros(20),
            sleep: Duration::from_millis(1),
            ..Workload::echo(64)
        };
        assert_eq!(w.needs(), WORKLOAD_V1);
        assert_eq!(w.unsupported(WORKLOAD_V1), None);
        assert_eq!(
            w.unsupported(WORKLOAD_CPU).as_deref(),
            Some("the plugin does not serve the workload's sleep per request")
        );
        assert_eq!(
            w.unsupported(0).as_deref(),
            Some("the plugin does not serve the workload's cpu and sleep per request")
        );
    }
}
