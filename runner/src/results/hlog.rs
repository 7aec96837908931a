//! `latency.hlog`: every interval's histogram in the standard HdrHistogram interval-log format,
//! so other HdrHistogram tools can read it and runs on several machines can be merged.

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::time::{Duration, SystemTime};

pub struct HlogEntry {
    /// `runtime/trial/point` without spaces or commas (the format forbids them in tags).
    pub tag: String,
    /// Since the run started.
    pub start: Duration,
    pub duration: Duration,
    /// The interval's histogram, HdrHistogram V2 (deflate) bytes: a run keeps thousands of
    /// these, so they stay compressed until written.
    pub encoded: Vec<u8>,
}

pub fn hlog(base: SystemTime, entries: &[HlogEntry]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment("runbench latency log: values in nanoseconds, max column in milliseconds")
            .with_base_time(base)
            .with_start_time(base)
            .with_max_value_divisor(1e6)
            .begin_log_with(&mut out, &mut serializer)?;
        for e in entries {
            let tag = Tag::new(&e.tag);
            // One decoded histogram at a time.
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut e.encoded.as_slice())
                .map_err(|err| anyhow::anyhow!("an interval histogram: {err:?}"))?;
            w.write_histogram(&h, e.start, e.duration, tag)
                .map_err(|err| anyhow::anyhow!("writing the interval log: {err:?}"))?;
        }
    }
    Ok(out)
}

/// A tag the interval-log format accepts.
pub fn tag(parts: &[&str]) -> String {
    parts
        .join("/")
        .chars()
        .map(|c| {
            if matches!(c, ',' | ' ' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}
