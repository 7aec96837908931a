//! The sweep point's columns in the result files: [`point_columns!`] appends a [`Point`]'s
//! fields to a row type, and reads them leniently from files of older versions. The point
//! itself is the plan's ([`crate::plan::point`]).

pub use crate::plan::point::{Param, Point};
use serde::Deserialize;

/// Declares a result-file row type with the point's columns appended (csv cannot serialise a
/// nested struct), and `point()`, `set_point()` and `param()` to use them as a [`Point`]. A new
/// parameter is one column here.
macro_rules! point_columns {
    ($(#[$attr:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            $($body)*
            /// The sweep point ([`crate::results::Point`]).
            pub connections: usize,
            pub payload_bytes: u64,
            /// Open model: requests/s asked for.
            #[serde(default, deserialize_with = "crate::results::point::lenient_rate")]
            pub target_rate: Option<u64>,
            pub server_threads: usize,
            /// 0 = no limit.
            #[serde(default, deserialize_with = "crate::results::point::lenient_count")]
            pub max_connections: usize,
            /// The workload's name in a `[[workload]]` sweep (empty: the scenario's only one).
            #[serde(default)]
            pub workload: String,
        }

        impl $name {
            /// The row's sweep point.
            pub fn point(&self) -> $crate::results::Point {
                $crate::results::Point {
                    connections: self.connections,
                    payload_bytes: self.payload_bytes,
                    rate: self.target_rate,
                    threads: self.server_threads,
                    max_connections: self.max_connections,
                    workload: self.workload.clone(),
                }
            }
            pub fn set_point(&mut self, p: &$crate::results::Point) {
                self.connections = p.connections;
                self.payload_bytes = p.payload_bytes;
                self.target_rate = p.rate;
                self.server_threads = p.threads;
                self.max_connections = p.max_connections;
                self.workload = p.workload.clone();
            }

            /// The value of one swept parameter.
            pub fn param(&self, p: $crate::results::Param) -> Option<f64> {
                self.point().get(p)
            }
        }
    };
}
pub(crate) use point_columns;

/// A rate column as files of every version hold it: empty, an integer, or (nightly histories
/// before the point had one type) a float such as `5000.0`.
pub fn lenient_rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v: Option<f64> = Option::deserialize(d)?;
    Ok(v.map(|r| r.round() as u64))
}

/// A count column that older files left empty: empty is 0.
pub fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v: Option<u64> = Option::deserialize(d)?;
    Ok(v.unwrap_or(0) as usize)
}
