//! Launching a run across machines with an engine that already starts processes on machines:
//! `runbench k8s render` writes plain Kubernetes manifests, `runbench slurm render` a batch
//! script. Both are pure functions of the scenario and the options (tested against golden
//! files); nothing here talks to a cluster.

pub mod k8s;
pub mod slurm;

use crate::cluster::token::Token;
use std::path::Path;

/// Port the controller listens on in rendered deployments.
pub const PORT: u16 = 7070;

/// The token to deploy with: the given file's, or a fresh one.
pub fn token(file: Option<&Path>) -> anyhow::Result<Token> {
    match file {
        Some(f) => Token::read(f),
        None => Ok(Token::generate()?),
    }
}

/// A scenario checked as `run` would (the target cluster's machines, not this one, decide how
/// many CPUs there are, so CPU numbers are only checked for form here).
pub fn scenario(path: &Path) -> anyhow::Result<(crate::scenario::Scenario, String)> {
    let host = crate::scenario::Host::elsewhere();
    let s = crate::scenario::load(path, &host)?;
    let text = std::fs::read_to_string(path)?;
    Ok((s, text))
}

/// A YAML double-quoted string (JSON's quoting is valid YAML).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// `runbench k8s render`.
#[derive(Clone, Debug, clap::Args)]
pub struct K8sRender {
    /// The scenario file to run (checked as `run` checks it).
    pub scenario: std::path::PathBuf,
    /// The image built from this repository's Dockerfile (REGISTRY/runbench:TAG).
    #[arg(long)]
    pub image: String,
    /// The node the server agent runs on (its kubernetes.io/hostname).
    #[arg(long)]
    pub server_node: String,
    /// The load agents' nodes, one agent each: a,b,...
    #[arg(long, value_delimiter = ',', required = true)]
    pub load_nodes: Vec<String>,
    /// Where load may go: the nodes' network (the server agent uses its node's address).
    #[arg(long)]
    pub allow_target: crate::cluster::cidr::Cidr,
    /// Deploy this token (default: a fresh one).
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// The folder to write the manifests in.
    #[arg(short = 'o', long = "out")]
    pub out: std::path::PathBuf,
}

/// `runbench slurm render`.
#[derive(Clone, Debug, clap::Args)]
pub struct SlurmRender {
    /// The scenario file to run (checked as `run` checks it).
    pub scenario: std::path::PathBuf,
    /// How many nodes run load agents (one each).
    #[arg(long, default_value_t = 2)]
    pub load_nodes: usize,
    /// The Slurm partition to submit to (`#SBATCH --partition`); the cluster's default if left out.
    #[arg(long)]
    pub partition: Option<String>,
    /// runbench's path on every node (a shared file system).
    #[arg(long, default_value = "runbench")]
    pub runbench: String,
    /// The batch script to write.
    #[arg(short = 'o', long = "out")]
    pub out: std::path::PathBuf,
}

use crate::error::{Error, Exit, WriteError};

fn cpus(list: &[usize]) -> usize {
    list.len().max(1)
}

/// A load agent's CPUs: its pinned ones, or one per load thread when unpinned.
fn load_cpus(s: &crate::scenario::Scenario) -> usize {
    match s.load.cpus.len() {
        0 => s.load.threads.max(1),
        n => n,
    }
}

pub fn k8s_render(a: &K8sRender) -> Result<Exit, Error> {
    let (s, text) = scenario(&a.scenario).map_err(Error::input)?;
    let tok = token(a.token_file.as_deref()).map_err(Error::input)?;
    let files = k8s::render(&k8s::K8s {
        scenario_name: &s.name,
        scenario_text: &text,
        image: &a.image,
        server_node: &a.server_node,
        load_nodes: &a.load_nodes,
        allow_target: a.allow_target,
        token_hex: &tok.to_hex(),
        server_cpus: cpus(&s.server.cpus),
        load_cpus: load_cpus(&s),
    });
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write(WriteError::new(&a.out, e)))?;
    for (name, body) in &files {
        let path = a.out.join(name);
        crate::results::write_atomic(&path, body.as_bytes())?;
    }
    println!(
        "wrote {} to {} (`kubectl apply -f {}`; the Secret holds the token: keep the folder private)",
        files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", "),
        a.out.display(),
        a.out.display()
    );
    Ok(Exit::Ok)
}

pub fn slurm_render(a: &SlurmRender) -> Result<Exit, Error> {
    let (s, text) = scenario(&a.scenario).map_err(Error::input)?;
    if text.lines().any(|l| l.trim() == "RUNBENCH_SCENARIO") {
        return Err(Error::input(anyhow::anyhow!(
            "{}: a line `RUNBENCH_SCENARIO` would end the script's here-document",
            a.scenario.display()
        )));
    }
    if a.load_nodes == 0 {
        return Err(Error::input(anyhow::anyhow!(
            "--load-nodes must be at least 1"
        )));
    }
    let script = slurm::render(&slurm::Slurm {
        scenario_name: &s.name,
        scenario_text: &text,
        load_nodes: a.load_nodes,
        server_cpus: cpus(&s.server.cpus),
        load_cpus: load_cpus(&s),
        partition: a.partition.as_deref(),
        runbench: &a.runbench,
    });
    crate::results::write_atomic(&a.out, script.as_bytes())?;
    println!("wrote {} (`sbatch {}`)", a.out.display(), a.out.display());
    Ok(Exit::Ok)
}
