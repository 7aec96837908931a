//! A child `runbench` process speaking the line protocol: events in on its stdout, commands out
//! on its stdin, stderr forwarded to the log with a label. Killed when dropped unreaped, so no
//! child outlives a failed run; in its own process group and killed with the runner (see
//! [`crate::os::sys::tie_to_runner`]), so no child outlives an interrupted or killed runner either.

use crate::cluster::link::{AgentLink, ExitSlot, Line};
use crate::cluster::msg::ToAgent;
pub use crate::os::sys::Reaped;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long a child may take to disappear after SIGKILL. SIGKILL cannot be caught, so only a
/// process stuck in the kernel (uninterruptible I/O) takes longer; the runner then moves on
/// rather than hang with it.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct ChildProc<E> {
    pub label: String,
    /// 0 for a child on an agent (its pid means nothing here).
    pub pid: u32,
    stdin: Option<ChildStdin>,
    /// Set for a child an agent runs for us (see [`crate::cluster`]).
    remote: Option<Remote>,
    events: Receiver<E>,
    /// Events taken out of order and put back (see [`ChildProc::keep`]); they come first.
    kept: std::collections::VecDeque<E>,
    reaped: Option<Reaped>,
    /// When the exit was first seen (polling is frequent while a run is going on).
    pub exited_at: Option<Instant>,
    _child: Option<std::process::Child>,
}

/// A child on an agent: its commands go over the agent's connection, its exit comes back.
struct Remote {
    link: std::sync::Arc<AgentLink>,
    id: u64,
    exit: ExitSlot,
}

/// Turns a child's protocol lines into events (or log lines, by `on_log`) for its supervisor.
fn relay<E: DeserializeOwned>(
    lines: impl Iterator<Item = String>,
    tx: mpsc::Sender<E>,
    label: &str,
    on_log: fn(&E) -> Option<String>,
) {
    for line in lines {
        match serde_json::from_str::<E>(&line) {
            Ok(ev) => match on_log(&ev) {
                Some(text) => crate::console::log(&format!("[{label}] {text}")),
                None => {
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            },
            Err(_) => crate::console::log(&format!("[{label}] {line}")),
        }
    }
}

impl<E: DeserializeOwned + Send + 'static> ChildProc<E> {
    /// Spawns `exe subcommand --spec <json>`. `on_log` turns an event into a log line instead of
    /// queueing it (so plugin logs show up as they happen).
    pub fn spawn(
        exe: &Path,
        subcommand: &str,
        spec_json: &str,
        label: &str,
        on_log: fn(&E) -> Option<String>,
    ) -> std::io::Result<Self> {
        Self::spawn_at(None, exe, subcommand, spec_json, label, on_log, 0)
    }

    /// As [`ChildProc::spawn`], on `agent` when given (`connections`: what the child holds,
    /// for the message if the agent is lost).
    pub fn spawn_at(
        agent: Option<std::sync::Arc<AgentLink>>,
        exe: &Path,
        subcommand: &str,
        spec_json: &str,
        label: &str,
        on_log: fn(&E) -> Option<String>,
        connections: usize,
    ) -> std::io::Result<Self> {
        if let Some(link) = agent {
            return Self::spawn_remote(link, subcommand, spec_json, label, on_log, connections);
        }
        let mut cmd = Command::new(exe);
        cmd.arg(subcommand)
            .arg("--spec")
            .arg(spec_json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::os::sys::tie_to_runner(&mut cmd);
        let mut child = cmd.spawn()?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let l = label.to_string();
        std::thread::spawn(move || {
            background_priority();
            relay(
                BufReader::new(stdout).lines().map_while(Result::ok),
                tx,
                &l,
                on_log,
            );
        });
        let l = label.to_string();
        std::thread::spawn(move || {
            background_priority();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                crate::console::log(&format!("[{l}] {line}"));
            }
        });
        Ok(ChildProc {
            label: label.to_string(),
            pid: child.id(),
            stdin: child.stdin.take(),
            remote: None,
            events: rx,
            kept: Default::default(),
            reaped: None,
            exited_at: None,
            _child: Some(child),
        })
    }

    fn spawn_remote(
        link: std::sync::Arc<AgentLink>,
        subcommand: &str,
        spec_json: &str,
        label: &str,
        on_log: fn(&E) -> Option<String>,
        connections: usize,
    ) -> std::io::Result<Self> {
        use crate::cluster::msg::ChildKind;
        let kind = match subcommand {
            "serve" => ChildKind::Serve,
            _ => ChildKind::Loadgen,
        };
        // The agent runs a server only if its plugin is the very file loaded here.
        let sha = match kind {
            ChildKind::Serve => serde_json::from_str::<crate::protocol::ServeSpec>(spec_json)
                .ok()
                .map(|s| crate::plugin::sha256_file(&s.plugin)),
            ChildKind::Loadgen => None,
        };
        let (id, lines, exit) = link
            .spawn(kind, spec_json.to_string(), sha, connections)
            .map_err(std::io::Error::other)?;
        let label = format!("{label} @{}", link.name);
        let (tx, rx) = mpsc::channel();
        let l = label.clone();
        std::thread::spawn(move || {
            background_priority();
            let events = lines.into_iter().filter_map(|line| match line {
                Line::Event(e) => Some(e),
                Line::Log(text) => {
                    crate::console::log(&format!("[{l}] {text}"));
                    None
                }
            });
            relay(events, tx, &l, on_log);
        });
        Ok(ChildProc {
            label,
            pid: 0,
            stdin: None,
            remote: Some(Remote { link, id, exit }),
            events: rx,
            kept: Default::default(),
            reaped: None,
            exited_at: None,
            _child: None,
        })
    }

    /// The agent and the id there, for a child on an agent.
    pub fn on_agent(&self) -> Option<(std::sync::Arc<AgentLink>, u64)> {
        self.remote.as_ref().map(|r| (r.link.clone(), r.id))
    }

    pub fn send_line(&mut self, line: &str) {
        if let Some(r) = &self.remote {
            let line = crate::cluster::clock::retime_command(line, &r.link.offset);
            r.link.send(&ToAgent::Line { id: r.id, line });
            return;
        }
        if let Some(stdin) = self.stdin.as_mut() {
            // A child that already died shows up when it is reaped.
            let _ = writeln!(stdin, "{line}").and_then(|_| stdin.flush());
        }
    }

    pub fn close_stdin(&mut self) {
        if let Some(r) = &self.remote {
            r.link.send(&ToAgent::CloseStdin { id: r.id });
        }
        self.stdin = None;
    }

    /// Next event, waiting at most until `deadline`. `None`: timed out or the child is gone.
    pub fn next_event(&mut self, deadline: Instant) -> Option<E> {
        self.kept.pop_front().or_else(|| {
            self.events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
    }

    pub fn try_event(&mut self) -> Option<E> {
        self.kept
            .pop_front()
            .or_else(|| self.events.try_recv().ok())
    }

    /// Puts back an event taken while looking for another one, for whoever reads next.
    pub fn keep(&mut self, e: E) {
        self.kept.push_back(e);
    }

    /// Reaps the child if it has exited.
    pub fn poll_exit(&mut self) -> Option<Reaped> {
        if self.reaped.is_none() {
            self.reaped = match &self.remote {
                Some(r) => *r.exit.lock().unwrap_or_else(|e| e.into_inner()),
                None => crate::os::sys::try_reap(self.pid).ok().flatten(),
            };
            if self.reaped.is_some() {
                self.exited_at = Some(Instant::now());
            }
        }
        self.reaped
    }

    /// Waits for exit until `deadline`; then kills it. Returns (how it ended, whether killed).
    pub fn wait_exit(&mut self, deadline: Instant) -> (Reaped, bool) {
        loop {
            if let Some(r) = self.poll_exit() {
                return (r, false);
            }
            if Instant::now() >= deadline {
                return (self.kill(), true);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL and reap (waiting at most [`KILL_WAIT`]; a child still there after that is
    /// reported as killed and reaped later, when dropped, if it ever exits).
    pub fn kill(&mut self) -> Reaped {
        if let Some(r) = self.reaped {
            return r;
        }
        match &self.remote {
            Some(r) => r.link.send(&ToAgent::Kill { id: r.id }),
            None => crate::os::sys::kill(self.pid, libc::SIGKILL),
        }
        let deadline = Instant::now() + KILL_WAIT;
        while Instant::now() < deadline {
            if let Some(r) = self.poll_exit() {
                return r;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        crate::console::log(&format!(
            "[{}] process {} still exists {}s after SIGKILL; continuing without it",
            self.label,
            self.pid,
            KILL_WAIT.as_secs()
        ));
        Reaped {
            signal: Some(libc::SIGKILL),
            ..Reaped::default()
        }
    }

    /// After exit: every event left, until the child's stdout closes (or `timeout`), so a
    /// report written just before exiting is not missed.
    pub fn remaining_events(&mut self, timeout: Duration) -> Vec<E> {
        let deadline = Instant::now() + timeout;
        let mut out: Vec<E> = self.kept.drain(..).collect();
        while let Ok(e) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(e);
        }
        out
    }
}

/// The readers of a child's output parse every line it writes (interval histograms among them);
/// on a machine whose cores the server and the load generator own, they must not delay either.
fn background_priority() {
    // SAFETY: setpriority on the calling thread's own id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
}

impl<E> Drop for ChildProc<E> {
    fn drop(&mut self) {
        if let Some(r) = &self.remote {
            if self.reaped.is_none() && r.exit.lock().is_ok_and(|e| e.is_none()) {
                r.link.send(&ToAgent::Kill { id: r.id });
            }
            return;
        }
        if self.reaped.is_none() {
            crate::os::sys::kill(self.pid, libc::SIGKILL);
            // SIGKILL cannot be ignored, so this returns promptly (bounded all the same).
            let deadline = Instant::now() + KILL_WAIT;
            while !matches!(crate::os::sys::try_reap(self.pid), Ok(Some(_)) | Err(_))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
