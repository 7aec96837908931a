//! Clocks across hosts. An agent's CLOCK_MONOTONIC differs from the controller's by an offset
//! (another boot, another time namespace); it is measured from ping round trips, keeping the
//! fastest: its answer was taken within half that round trip of the midpoint, so rtt/2 bounds
//! the error. Instants sent to an agent (the start, the window's edges) are translated into its
//! clock, so each agent starts on its own clock at the same real instant.

/// One round trip: sent at `t0`, answered at `agent_ns` (agent's clock), back at `t1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub t0: u64,
    pub agent_ns: u64,
    pub t1: u64,
}

/// An agent's clock against the controller's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Offset {
    /// agent clock - controller clock, ns.
    pub offset_ns: i64,
    /// The fastest round trip, ns; the offset is within rtt/2.
    pub rtt_ns: u64,
}

impl Offset {
    /// The sample with the shortest round trip.
    pub fn best(samples: &[Sample]) -> Option<Offset> {
        samples
            .iter()
            .filter(|s| s.t1 >= s.t0)
            .min_by_key(|s| s.t1 - s.t0)
            .map(|s| {
                let mid = s.t0 as i128 + (s.t1 - s.t0) as i128 / 2;
                Offset {
                    offset_ns: (s.agent_ns as i128 - mid) as i64,
                    rtt_ns: s.t1 - s.t0,
                }
            })
    }

    /// Controller instant -> the same instant on the agent's clock.
    pub fn to_agent(&self, controller_ns: u64) -> u64 {
        (controller_ns as i128 + self.offset_ns as i128).max(0) as u64
    }

    pub fn error_bound_ns(&self) -> u64 {
        self.rtt_ns.div_ceil(2)
    }
}

/// How far apart any two agents' starts can be, from the offsets' errors alone: the two
/// largest error bounds added.
pub fn skew_bound_ns(offsets: &[Offset]) -> u64 {
    let mut e: Vec<u64> = offsets.iter().map(Offset::error_bound_ns).collect();
    e.sort_unstable_by(|a, b| b.cmp(a));
    e.iter().take(2).sum()
}

/// Rewrites the instants in a command for a child (`start <ns>`, `window <ns> <ns>`, see
/// [`crate::protocol`]) into the agent's clock; other lines pass unchanged.
pub fn retime_command(line: &str, offset: &Offset) -> String {
    let mut words = line.split(' ');
    let cmd = words.next().unwrap_or("");
    if cmd != crate::protocol::START && cmd != crate::protocol::WINDOW {
        return line.to_string();
    }
    let mut out = vec![cmd.to_string()];
    for w in words {
        out.push(match w.parse::<u64>() {
            Ok(ns) => offset.to_agent(ns).to_string(),
            Err(_) => w.to_string(),
        });
    }
    out.join(" ")
}

/// The instant a `start <ns>` command names, if `line` is one.
pub fn start_instant(line: &str) -> Option<u64> {
    let rest = line
        .strip_prefix(crate::protocol::START)?
        .strip_prefix(' ')?;
    rest.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fastest_round_trip_sets_the_offset() {
        let hour = 3_600_000_000_000u64;
        let samples = [
            Sample {
                t0: 1_000,
                agent_ns: hour + 1_900,
                t1: 3_000,
            },
            Sample {
                t0: 10_000,
                agent_ns: hour + 10_050,
                t1: 10_100,
            },
        ];
        let o = Offset::best(&samples).unwrap();
        assert_eq!(o.rtt_ns, 100);
        assert_eq!(o.offset_ns, hour as i64);
        assert_eq!(o.to_agent(5), hour + 5);
        assert_eq!(
            skew_bound_ns(&[
                o,
                Offset {
                    offset_ns: 0,
                    rtt_ns: 300
                },
                o
            ]),
            200
        );
    }

    #[test]
    fn instants_in_commands_move_to_the_agents_clock() {
        let o = Offset {
            offset_ns: 1000,
            rtt_ns: 0,
        };
        assert_eq!(retime_command("start 5", &o), "start 1005");
        assert_eq!(retime_command("window 1 2", &o), "window 1001 1002");
        assert_eq!(retime_command("stop", &o), "stop");
        assert_eq!(retime_command("counts", &o), "counts");
        assert_eq!(start_instant("start 77"), Some(77));
        assert_eq!(start_instant("stop"), None);
    }
}
