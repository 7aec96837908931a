//! What a person sees of a run: the live bars and log lines ([`progress`]), the overall line and
//! the final table ([`terminal`]).

pub mod progress;
pub mod terminal;
