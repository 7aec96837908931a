//! Help for people writing scenarios: a commented starting file and the JSON Schema that editors
//! use (via taplo's `#:schema` directive) to complete and check keys.

use crate::scenario::raw::RawScenario;
use std::path::{Path, PathBuf};

/// The schema of scenario files, generated from the same types the parser uses.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawScenario);
    serde_json::to_string_pretty(&schema).expect("schemas serialise")
}

const TEMPLATE: &str = r#"#:schema ./schema.json
# A runbench scenario. Every key is explained in scenarios/README.md.
name = "NAME"
description = "What this scenario asks, in one line"
# runtimes = ["tokio", "smol"]      # omitted = every built plugin

[server]
threads = 1                         # runtime worker threads (a list sweeps: [1, 2])
cpus = [0]                          # CPUs the server is pinned to
max_connections = 0                 # connections served at once; 0 = no limit
# work = "50us"                     # busy CPU work per request
# sleep = "1ms"                     # runtime timer await per request

[load]
model = "closed"                    # "closed": one request in flight per connection; "open": fixed rate
connections = 100                   # a list sweeps: [100, 1000]
payload_bytes = 64
# rate = 20000                      # open model: requests/s over all connections
warmup = "1s"                       # excluded from the measurement
duration = "5s"                     # the measured window
cpus = [1]                          # CPUs the load generator is pinned to
# requests_per_connection = 100     # reconnect after N requests (churn)

[shutdown]
grace = "2s"                        # drain deadline after the stop signal
# at = "4s"                         # send the stop signal during the load

[run]
repeat = 1                          # trials per runtime, order shuffled per trial
# seed = 42
"#;

/// Writes `<dir>/<name>.toml`; refuses to overwrite.
pub fn new_scenario(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "scenario names use letters, digits, `-`, `_`, `.`"
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.toml"));
    anyhow::ensure!(
        !path.exists(),
        "{} exists; choose another name",
        path.display()
    );
    std::fs::write(&path, TEMPLATE.replace("NAME", name))?;
    Ok(path)
}
