//! An external echo server as the measured subject: optionally started from the scenario's
//! `command` (and stopped afterwards), otherwise assumed to be running already.

use super::server::ServersExit;
use crate::scenario::TargetSpec;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started command may take before its address accepts connections.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

pub struct External {
    child: Option<Child>,
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
                    crate::sys::tie_to_runner(&mut cmd);
                    Some(cmd.spawn().map_err(|e| {
                        format!("starting target command `{}`: {e}", argv.join(" "))
                    })?)
                }
            };
        let mut ext = External {
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
            if let Some(sig) = crate::interrupt::requested() {
                ext.stop(Duration::ZERO);
                return Err(format!(
                    "interrupted ({}) while waiting for the target",
                    crate::interrupt::name(sig)
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

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn crashed(&mut self) -> Option<String> {
        let child = self.child.as_ref()?;
        crate::sys::try_reap(child.id()).ok().flatten().map(|r| {
            self.child = None;
            format!(
                "target command ended during the run (exit {:?}, signal {:?})",
                r.exit_code, r.signal
            )
        })
    }

    /// SIGTERM, then SIGKILL after `grace` + 2s (giving up on it 5s later, should it be stuck
    /// in the kernel); the command's CPU and peak RSS when it was ours.
    pub fn stop(mut self, grace: Duration) -> ServersExit {
        let mut exit = ServersExit::default();
        let Some(child) = self.child.take() else {
            return exit;
        };
        let pid = child.id();
        let signalled = *self.signalled.get_or_insert_with(Instant::now);
        crate::sys::kill(pid, libc::SIGTERM);
        let deadline = signalled + grace + Duration::from_secs(2);
        let give_up = deadline + Duration::from_secs(5);
        loop {
            match crate::sys::try_reap(pid) {
                Ok(Some(r)) => {
                    exit.resources = true;
                    exit.cpu_user_s = r.user_s;
                    exit.cpu_sys_s = r.sys_s;
                    exit.rss_peak_bytes = r.max_rss_bytes;
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    exit.failure = Some(format!("waiting for the target command: {e}"));
                    break;
                }
            }
            let now = Instant::now();
            if now >= give_up {
                exit.failure = Some(format!(
                    "target command (pid {pid}) still exists 5s after SIGKILL; left behind"
                ));
                break;
            }
            if now >= deadline && !exit.overran {
                crate::sys::kill(pid, libc::SIGKILL);
                exit.overran = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        exit.shutdown = signalled.elapsed();
        exit
    }
}
