//! A capacity search's probe judged: pass, fail, or inconclusive when the load generator, not
//! the server, could have been the limit (see `crate::run::search`).

use super::objectives::Broken;
use crate::results::{RowStatus, SummaryRow};
use crate::scenario::Slo;

/// What one probe at a rate showed.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    Pass,
    /// The limits it broke (or why it failed).
    Fail(String),
    /// The load generator, not the server, was the limit.
    Inconclusive(String),
    /// The run was interrupted (Ctrl-C): the search ends with what it has.
    Interrupted,
}

/// A probe's row as the search sees it. The load generator measures latency from the intended
/// send time, so its own lateness can only make a server look worse: a pass stands whenever the
/// generator sent everything it scheduled and the answers kept pace with the offered rate
/// ([`SUSTAINED`] of it in the window; a short probe under a loose latency limit would otherwise
/// pass with a backlog growing, the client's or the server's). A fail is inconclusive when the
/// generator could explain every limit it broke: a latency within its p99 send lag of the
/// limit, errors while it left requests unsent, an achieved rate it did not offer (saturated,
/// or unsent requests).
pub fn verdict(row: &SummaryRow, slo: Option<&Slo>) -> Probe {
    match row.status {
        RowStatus::Interrupted => return Probe::Interrupted,
        RowStatus::Skipped => return Probe::Fail(row.error.clone()),
        _ => {}
    }
    let not_sent = row.not_sent.unwrap_or(0);
    let lag_us = row.send_lag_p99_us.unwrap_or(0.0);
    let saturated = row.lower_bound();
    let client = || {
        format!(
            "load generator busy {:.2}, CPU {:.2}, send lag p99 {lag_us:.0} µs, {not_sent} \
             scheduled requests not sent",
            row.loadgen_busy.unwrap_or(0.0),
            row.loadgen_cpu_busy.unwrap_or(0.0),
        )
    };
    if row.status == RowStatus::Failed {
        return Probe::Fail(row.error.clone());
    }
    let Some(j) = slo.and_then(|s| super::objectives::judge(s, row)) else {
        return Probe::Fail("not judged".into());
    };
    if j.pass {
        if let Some(Behind { kept_pace, short }) = fell_behind(row) {
            let behind = format!(
                "answers came at {:.1}% of the offered rate: the backlog grew",
                kept_pace * 100.0
            );
            // A generator late by its send lag leaves the answers to that much of the schedule
            // out of the window.
            let lagged = short <= row.target_rate.unwrap_or(0) as f64 * lag_us / 1e6;
            return if saturated || not_sent > 0 || lagged {
                Probe::Inconclusive(format!(
                    "{behind}, which could be the client's: {}",
                    client()
                ))
            } else {
                Probe::Fail(behind)
            };
        }
        return if not_sent == 0 {
            Probe::Pass
        } else {
            Probe::Inconclusive(client())
        };
    }
    let explained = j.limits.iter().all(|b| match *b {
        Broken::Latency {
            measured_us,
            limit_us,
        } => measured_us - lag_us <= limit_us,
        Broken::Missing => false,
        Broken::Errors => not_sent > 0,
        Broken::Achieved => saturated || not_sent > 0,
    });
    if explained {
        Probe::Inconclusive(format!(
            "{} could be the client's: {}",
            j.broken.join("; "),
            client()
        ))
    } else {
        Probe::Fail(j.broken.join("; "))
    }
}

/// How far the answers in the window fell behind the offered rate, where by more than
/// [`SUSTAINED`] allows: a rate is a capacity only if it is sustained. When a server
/// keeps up, the answers in a window match the sends (those in flight at its start stand in for
/// those in flight at its end), so the allowance is small: with 95%, a server doing 100 µs a
/// request passed at 10,000/s while it answered 9,815/s, its backlog growing but p99 still under
/// 50 ms at the end of a short probe (the capacity integration test, once in CI).
fn fell_behind(row: &SummaryRow) -> Option<Behind> {
    let kept_pace = row.achieved_fraction()?;
    let offered = row.target_rate? as f64 * row.duration_s;
    let short = (1.0 - kept_pace) * offered;
    (short > (1.0 - SUSTAINED) * offered && short > EDGE_SLACK)
        .then_some(Behind { kept_pace, short })
}

/// How far a probe's answers fell behind: the share of the offered rate answered, and the
/// answers short of it in the window.
struct Behind {
    kept_pace: f64,
    short: f64,
}

/// The share of the offered rate a probe's answers must reach in the window.
const SUSTAINED: f64 = 0.99;

/// Answers a window may lack whatever its rate: one in flight at each of its edges.
const EDGE_SLACK: f64 = 2.0;
