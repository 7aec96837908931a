//! An external echo server as the measured subject: optionally started from the scenario's
//! `command` (and stopped afterwards), otherwise assumed to be running already.
//!
//! A command may fork (`sh -c "python3 srv.py"`): it leads a process group of its own (see
//! [`crate::os::sys::tie_to_runner`]), and that whole group is measured, signalled and waited for.
//! A process that leaves the group (a daemon calling setsid) escapes both.

use super::server::ServersExit;
use crate::os::procfs;
use crate::scenario::TargetSpec;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started command may take before its address accepts connections.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Beyond the grace period, how long the group may take to exit before it is killed (as for
/// plugin servers, `supervise::server::EXIT_MARGIN`).
const EXIT_MARGIN: Duration = Duration::from_secs(2);
/// After SIGKILL, how long before a group still there is reported as left behind.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct External {
    child: Option<Child>,
    /// The command's process group while it may have members (its pid: it leads the group).
    pgid: Option<u32>,
    signalled: Option<Instant>,
}

impl External {
    pub fn start(t: &TargetSpec) -> Result<External, String> {
        let child =
            match &t.command {
                None => None,
                Some(argv) => {
                    let mut cmd = Command::new(&argv[0]);
                    cmd.args(&argv[1..])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null());
                    crate::os::sys::tie_to_runner(&mut cmd);
                    Some(cmd.spawn().map_err(|e| {
                        format!("starting target command `{}`: {e}", argv.join(" "))
                    })?)
                }
            };
        let mut ext = External {
            pgid: child.as_ref().map(Child::id),
            child,
            signalled: None,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&t.address, Duration::from_millis(200)).is_ok() {
                return Ok(ext);
            }
            if let Some(e) = ext.crashed() {
                return Err(e);
            }
            if let Some(sig) = crate::os::interrupt::requested() {
                ext.stop(Duration::ZERO);
                return Err(format!(
                    "interrupted ({}) while waiting for the target",
                    crate::os::interrupt::name(sig)
                ));
            }
            if Instant::now() >= deadline {
                ext.stop(Duration::ZERO);
                return Err(format!(
                    "target {} did not accept connections within {}s",
                    t.address,
                    READY_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every live process of the command's group (sampled for the timeline).
    pub fn pids(&self) -> Vec<u32> {
        self.pgid.map(procfs::group_members).unwrap_or_default()
    }

    pub fn crashed(&mut self) -> Option<String> {
        let child = self.child.as_ref()?;
        crate::os::sys::try_reap(child.id())
            .ok()
            .flatten()
            .map(|r| {
                self.child = None;
                format!(
                    "target command ended during the run (exit {:?}, signal {:?})",
                    r.exit_code, r.signal
                )
            })
    }

    /// SIGTERM to the command's process group, then SIGKILL to it after `grace` +
    /// [`EXIT_MARGIN`] (an overrun, which fails the row), giving up [`KILL_WAIT`] later should
    /// a process be stuck in the kernel. Done when the command is reaped and its group empty.
    /// CPU and peak RSS are the group's, read from /proc just before the stop signal (the sum
    /// of each process's peak; the shutdown itself is not included).
    pub fn stop(mut self, grace: Duration) -> ServersExit {
        let mut exit = ServersExit::default();
        let Some(pgid) = self.pgid else {
            return exit;
        };
        let usage = procfs::group_usage(pgid);
        let signalled = *self.signalled.get_or_insert_with(Instant::now);
        crate::os::sys::kill_group(pgid, libc::SIGTERM);
        let deadline = signalled + grace + EXIT_MARGIN;
        let give_up = deadline + KILL_WAIT;
        let mut reaped = None;
        loop {
            if let Some(child) = &self.child {
                match crate::os::sys::try_reap(child.id()) {
                    Ok(Some(r)) => {
                        reaped = Some(r);
                        self.child = None;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        exit.failure = Some(format!("waiting for the target command: {e}"));
                        self.child = None;
                    }
                }
            }
            let members = procfs::group_members(pgid);
            if self.child.is_none() && members.is_empty() {
                // The group is gone, and its id may be reused: never signal it again.
                self.pgid = None;
                break;
            }
            let now = Instant::now();
            if now >= give_up {
                exit.failure = Some(format!(
                    "target command's process group {pgid} still has process(es) {members:?} \
                     {}s after SIGKILL; left behind",
                    KILL_WAIT.as_secs()
                ));
                break;
            }
            if now >= deadline && !exit.overran {
                crate::os::sys::kill_group(pgid, libc::SIGKILL);
                exit.overran = true;
                exit.failure = Some(format!(
                    "shutdown overrun: the target command's process group was still running \
                     {:.1}s after SIGTERM (grace {:.1}s); killed",
                    signalled.elapsed().as_secs_f64(),
                    grace.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        exit.shutdown = signalled.elapsed();
        match (usage, reaped) {
            (Some((user, sys, rss)), _) => {
                exit.resources = true;
                exit.cpu_user_s = user;
                exit.cpu_sys_s = sys;
                exit.rss_peak_bytes = rss;
            }
            (None, Some(r)) => {
                exit.resources = true;
                exit.cpu_user_s = r.user_s;
                exit.cpu_sys_s = r.sys_s;
                exit.rss_peak_bytes = r.max_rss_bytes;
            }
            (None, None) => {}
        }
        exit
    }
}

impl Drop for External {
    /// On any path that did not stop the group (a failed start, a panic), nothing of it stays.
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            crate::os::sys::kill_group(pgid, libc::SIGKILL);
            if let Some(child) = self.child.take() {
                let deadline = Instant::now() + KILL_WAIT;
                while !matches!(crate::os::sys::try_reap(child.id()), Ok(Some(_)) | Err(_))
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}
