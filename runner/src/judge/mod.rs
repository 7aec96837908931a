//! Every pass or fail said of a row, in one place: what fails a measured row ([`problems`]), a
//! server's RSS that keeps growing ([`with_rss_trend`]), the `[slo]` thresholds
//! ([`objectives`]) and a capacity search's probe ([`probe`]). The measurements and the audit
//! (`crate::measure`) say what happened; this module says whether the row passes.

pub mod objectives;
pub mod probe;

use crate::measure::rss_trend::RssTrend;
use crate::protocol::LoadCounters;
use crate::results::{RowStatus, SummaryRow};

/// Adds the RSS trend's columns; a growing RSS fails a row that was otherwise fine.
pub fn with_rss_trend(mut row: SummaryRow, trend: Option<RssTrend>) -> SummaryRow {
    let Some(t) = trend else { return row };
    row.server_rss_growth_mib_per_min = Some(t.mib_per_min);
    row.server_rss_growing = t.growing;
    if t.growing == Some(true) && row.status != RowStatus::Interrupted {
        row.status = RowStatus::Failed;
        row.error = match row.error.is_empty() {
            true => t.describe(),
            false => format!("{}; {}", row.error, t.describe()),
        };
    }
    row
}

/// What fails the row: the server's failure, wrong bytes, missing connections, no answers.
/// `partial`: the load processes that failed across machines (the others' measurements are
/// kept); `server_failure`: how the servers failed, if they did.
pub fn problems(
    base: &SummaryRow,
    c: &LoadCounters,
    partial: Option<&str>,
    server_failure: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(p) = partial {
        problems.push(p.to_string());
    }
    if let Some(f) = server_failure {
        problems.push(f.to_string());
    }
    if c.mismatched_bytes > 0 {
        problems.push(format!(
            "{} echoed bytes differed from what was sent",
            c.mismatched_bytes
        ));
    }
    let non_2xx = c.non_2xx_kinds();
    if !non_2xx.is_empty() {
        problems.push(format!("HTTP answers that were not 2xx: {non_2xx}"));
    }
    if c.errors.malformed > 0 {
        problems.push(format!(
            "{} HTTP answers were malformed (the load generator's log names the first)",
            c.errors.malformed
        ));
    }
    // With a lost agent its connections are missing from the count, and already said so.
    if c.connections_ok < base.connections as u64 && partial.is_none() {
        problems.push(format!(
            "only {} of {} connections were established",
            c.connections_ok, base.connections
        ));
    }
    if c.requests == 0 && base.shutdown_at_s.is_none() {
        problems.push("no request completed in the measured window".into());
    }
    problems
}
