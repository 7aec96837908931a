//! The scenario file exactly as written: serde structs that reject unknown keys. Numbers are
//! read as signed and durations as strings so `check` can say what is wrong in our own words.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub runtimes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub server: RawServer,
    pub load: RawLoad,
    #[serde(default)]
    pub shutdown: RawShutdown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub threads: Option<Spanned<i64>>,
    pub cpus: Option<Spanned<Vec<i64>>>,
    pub max_connections: Option<Spanned<i64>>,
    pub processes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub connections: Spanned<i64>,
    pub payload_bytes: Spanned<i64>,
    pub warmup: Option<Spanned<String>>,
    pub duration: Spanned<String>,
    pub cpus: Option<Spanned<Vec<i64>>>,
    pub threads: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    pub grace: Option<Spanned<String>>,
}
