//! The runner's side of its child processes: spawning, event streams, deadlines, reaping.

mod child;
pub mod external;
pub mod loadgen;
pub mod server;

pub use child::{ChildProc, Reaped};
