//! Help for people writing scenarios: a commented starting file and the JSON Schema that editors
//! use (via taplo's `#:schema` directive) to complete and check keys.

use crate::error::{Error, WriteError};
use crate::scenario::raw::RawScenario;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The schema of scenario files, generated from the same types the parser uses.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawScenario);
    serde_json::to_string_pretty(&schema).expect("schemas serialise")
}

const TEMPLATE: &str = r#"#:schema ./schema.json
# A runbench scenario. Every key is explained in runbench's scenarios/README.md; schema.json beside
# this file (written by `runbench new`, or `runbench schema > schema.json`) lets an editor check it.
name = "NAME"
description = "What this scenario asks, in one line"
# runtimes = ["tokio", "smol"]      # omitted = every built plugin

[server]
threads = 1                         # runtime worker threads (a list sweeps: [1, 2])
cpus = [0]                          # CPUs the server is pinned to
max_connections = 0                 # connections served at once; 0 = no limit

[load]
model = "closed"                    # "closed": one request in flight per connection; "open": fixed rate
connections = 100                   # a list sweeps: [100, 1000]
payload_bytes = 64
# rate = 20000                      # open model: requests/s over all connections
# send_window = "250us"             # open model: sleep at most once per window (sends late by up to it)
warmup = "1s"                       # excluded from the measurement
duration = "5s"                     # the measured window
cpus = [1]                          # CPUs the load generator is pinned to
# requests_per_connection = 100     # reconnect after N requests (churn)

# [workload]                       # what each request asks of the server (scenarios/README.md)
# response_bytes = 1024             # answer size; default: an echo of the request
# cpu = "20us"                      # busy CPU per request, or { mean = "20us", dist = "exp" }
# sleep = "1ms"                     # awaited on the runtime's timer per request
# fanout = { tasks = 8, cpu = "5us", sleep = "200us" }   # tasks spawned and joined per request
# blocking = "100us"                # work on the runtime's blocking pool per request
# hops = 2                          # relay tasks the request crosses through channels

[shutdown]
grace = "2s"                        # drain deadline after the stop signal
# at = "4s"                         # send the stop signal during the load

[run]
repeat = 1                          # trials per runtime, order shuffled per trial
# seed = 42
"#;

/// Writes `<dir>/<name>.toml`; refuses a name `run` would refuse, and to overwrite.
pub fn new_scenario(name: &str, dir: &Path) -> Result<PathBuf, Error> {
    crate::scenario::check_name(name)
        .map_err(|e| Error::input(anyhow::anyhow!("scenario name `{name}`: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| WriteError::new(dir, e))?;
    let path = dir.join(format!("{name}.toml"));
    // create_new: refuses an existing file without a window between the check and the write.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::input(anyhow::anyhow!(
                "{} exists; choose another name",
                path.display()
            )))
        }
        Err(e) => return Err(WriteError::new(&path, e).into()),
    };
    if let Err(e) = file.write_all(TEMPLATE.replace("NAME", name).as_bytes()) {
        let _ = std::fs::remove_file(&path);
        return Err(WriteError::new(&path, e).into());
    }
    // The template's `#:schema ./schema.json` must point at something wherever it was written.
    let schema = dir.join("schema.json");
    if !schema.exists() {
        std::fs::write(&schema, schema_json() + "\n").map_err(|e| WriteError::new(&schema, e))?;
    }
    Ok(path)
}
