//! `runbench slurm render`: one heterogeneous batch job. Component 0 is the server's node,
//! exclusive; component 1 holds one load agent per node. The controller runs in the batch step
//! (on the server's node, where it only relays frames), the agents through `srun` pinned with
//! `--cpu-bind`, and each load agent's shard is its `SLURM_PROCID` in its step.

use std::fmt::Write;

pub struct Slurm<'a> {
    pub scenario_name: &'a str,
    pub scenario_text: &'a str,
    pub load_nodes: usize,
    /// CPUs per task: the server agent's and each load agent's.
    pub server_cpus: usize,
    pub load_cpus: usize,
    pub partition: Option<&'a str>,
    /// runbench on every node (a shared path).
    pub runbench: &'a str,
}

/// Escapes `s` for a single-quoted shell word.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn render(s: &Slurm) -> String {
    let mut out = String::new();
    let part = s
        .partition
        .map(|p| format!("#SBATCH --partition={p}\n"))
        .unwrap_or_default();
    let _ = write!(
        out,
        "#!/bin/bash
# runbench across machines for scenario {name}: `sbatch {{this file}}`.
# Component 0: the server agent on a node of its own (and the controller, in this batch step).
#SBATCH --job-name=runbench-{name}
#SBATCH --output=runbench-{name}-%j.out
{part}#SBATCH --nodes=1 --ntasks=1 --exclusive --cpus-per-task={sc}
#SBATCH hetjob
# Component 1: one load agent per node.
{part}#SBATCH --nodes={n} --ntasks={n} --ntasks-per-node=1 --cpus-per-task={lc}
set -euo pipefail
RUNBENCH={rb}
PORT={port}
# The token lives in the submit folder (shared by the nodes), readable by this user only.
TOKEN=\"$SLURM_SUBMIT_DIR/.runbench-token-$SLURM_JOB_ID\"
\"$RUNBENCH\" token \"$TOKEN\"
trap 'rm -f \"$TOKEN\"' EXIT
SCENARIO=\"$(mktemp --suffix=.toml)\"
cat > \"$SCENARIO\" <<'RUNBENCH_SCENARIO'
{text}RUNBENCH_SCENARIO
# The controller binds this node's address (agents on the other nodes reach it there; load
# agents aim only at this address's /24 by default).
ADDR=\"$(getent ahostsv4 \"$(hostname)\" | awk '{{print $1; exit}}')\"
\"$RUNBENCH\" run \"$SCENARIO\" --agents {agents} --listen \"$ADDR:$PORT\" --token-file \"$TOKEN\" \\
    --out \"$SLURM_SUBMIT_DIR/output\" &
CONTROLLER=$!
srun --het-group=0 --cpu-bind=cores \"$RUNBENCH\" agent --role server --name server \\
    --controller \"$ADDR:$PORT\" --token-file \"$TOKEN\" &
srun --het-group=1 --cpu-bind=cores bash -c 'exec \"$0\" agent --role load \\
    --shard \"$SLURM_PROCID\" --name \"load-$SLURM_PROCID\" --controller \"$1\" --token-file \"$2\"' \\
    \"$RUNBENCH\" \"$ADDR:$PORT\" \"$TOKEN\" &
# The controller's exit code is the job's; agents end when it does.
set +e
wait \"$CONTROLLER\"
code=$?
wait
exit $code
",
        name = s.scenario_name,
        sc = s.server_cpus,
        lc = s.load_cpus,
        n = s.load_nodes,
        rb = sq(s.runbench),
        port = super::PORT,
        agents = s.load_nodes + 1,
        text = ensure_newline(s.scenario_text),
    );
    out
}

fn ensure_newline(t: &str) -> String {
    match t.ends_with('\n') {
        true => t.to_string(),
        false => format!("{t}\n"),
    }
}
