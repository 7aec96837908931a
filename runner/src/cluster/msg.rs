//! What controller and agents say to each other, frame by frame (see [`super::wire`]).

use serde::{Deserialize, Serialize};

/// What an agent does for the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Hosts the plugin's `runbench serve` processes.
    Server,
    /// Runs `runbench loadgen` processes for its shards.
    Load,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Load => "load",
        })
    }
}

/// The handshake, before the keys exist (see [`super::handshake`]): frames of at most
/// [`super::handshake::MAX_HANDSHAKE_FRAME`] bytes, in the clear.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum Handshake {
    /// Agent -> controller, first. Its exact bytes are the Noise prologue: changed on the way,
    /// the handshake fails.
    Hello {
        version: String,
        role: Role,
        name: String,
        /// A load agent's place among the load agents (a Job's completion index, Slurm's
        /// SLURM_PROCID); agents without one take the places left, in the order they joined.
        #[serde(default)]
        shard: Option<usize>,
    },
    /// A Noise handshake message, hex.
    Noise { msg: String },
    /// Controller -> agent, unauthenticated, in place of its Noise message: why the handshake
    /// ends here, for the agent's log. `retry`: too many handshakes were under way; try again.
    Refused {
        reason: String,
        #[serde(default)]
        retry: bool,
    },
}

/// A child process an agent runs for the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    Serve,
    Loadgen,
}

impl ChildKind {
    pub fn subcommand(self) -> &'static str {
        match self {
            ChildKind::Serve => "serve",
            ChildKind::Loadgen => "loadgen",
        }
    }
}

/// Controller -> agent, authenticated.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum ToAgent {
    /// Joined, once its clock was measured; `index` is the agent's place among those of its
    /// role when it joined, `offset_ns` and `rtt_ns` what the controller measured.
    Welcome {
        index: usize,
        offset_ns: i64,
        rtt_ns: u64,
    },
    /// Not joined (version mismatch, the run is full): the agent exits with this reason.
    Refused {
        reason: String,
    },
    /// A clock sample: the controller's CLOCK_MONOTONIC (ns) when sent.
    Ping {
        t0: u64,
    },
    /// Start `runbench <kind> --spec <spec>`; a server's plugin must hash to `plugin_sha256`.
    Spawn {
        id: u64,
        kind: ChildKind,
        spec: String,
        plugin_sha256: Option<String>,
    },
    /// A command line for the child's stdin, its instants already in the agent's clock.
    Line {
        id: u64,
        line: String,
    },
    CloseStdin {
        id: u64,
    },
    Kill {
        id: u64,
    },
    /// Read /proc of these children now ([`ToController::Sampled`]).
    Sample {
        ids: Vec<u64>,
    },
    /// Reserve a free port on the agent's address for the next servers.
    ReservePort,
    Heartbeat,
    /// The run is over: stop everything and exit; `error`: why the run failed or was refused
    /// (the agent then exits non-zero).
    Bye {
        #[serde(default)]
        error: Option<String>,
    },
}

/// How a child ended (mirror of [`crate::os::sys::Reaped`]).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Exit {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_bytes: u64,
}

impl From<crate::os::sys::Reaped> for Exit {
    fn from(r: crate::os::sys::Reaped) -> Self {
        Exit {
            exit_code: r.exit_code,
            signal: r.signal,
            user_s: r.user_s,
            sys_s: r.sys_s,
            max_rss_bytes: r.max_rss_bytes,
        }
    }
}

impl From<Exit> for crate::os::sys::Reaped {
    fn from(r: Exit) -> Self {
        crate::os::sys::Reaped {
            exit_code: r.exit_code,
            signal: r.signal,
            user_s: r.user_s,
            sys_s: r.sys_s,
            max_rss_bytes: r.max_rss_bytes,
        }
    }
}

/// Agent -> controller, authenticated.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum ToController {
    /// Answer to a ping: the agent's CLOCK_MONOTONIC (ns) when it answered.
    Pong {
        t0: u64,
        agent_ns: u64,
    },
    /// A protocol line the child wrote (or one the agent wrote for it: a refusal).
    Event {
        id: u64,
        line: String,
    },
    /// A line of the child's stderr.
    Log {
        id: u64,
        line: String,
    },
    /// The child was reaped; no line of it follows.
    Exited {
        id: u64,
        exit: Exit,
    },
    Port {
        port: Result<u16, String>,
    },
    /// The children's /proc readings summed; `complete`: every one was still there.
    Sampled {
        sum: crate::os::procfs::ProcSample,
        complete: bool,
    },
    Heartbeat,
}
