//! Network namespaces for plugins that bring their own TCP/IP stack ([`NEEDS_TAP`]): one
//! namespace per run, holding a TAP device whose kernel side is the load generator's address and
//! whose other end the plugin's userspace stack drives. The namespace has no other interface, so
//! no packet of the run can leave it, and its addresses exist nowhere else.
//!
//! Set-up and removal go through iproute2's `ip` (the tool every reader can rerun by hand to see
//! what was done); the children enter the namespace with `setns(2)`.
//!
//! [`NEEDS_TAP`]: runbench_plugin_abi::NEEDS_TAP

use runbench_plugin_abi::{TAP_DEVICE, TAP_PREFIX_LEN};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The kernel's address on the TAP device: the load generator's source address.
pub const KERNEL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The plugin's stack address on the TAP subnet: the load generator's target.
pub const STACK_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The port the plugin listens on (any port works: nothing else lives in the namespace).
pub const STACK_PORT: u16 = 7000;
/// Every namespace this module creates is named `<PREFIX><pid>-<n>`.
const PREFIX: &str = "runbench-";
/// Where `ip netns add` puts the namespace's handle.
const NETNS_DIR: &str = "/run/netns";

static SEQ: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("/dev/net/tun is missing, so no TAP device can be made (load the `tun` kernel module, or in a container pass the device with --device /dev/net/tun)")]
    NoTun,
    #[error("the `ip` command (iproute2) was not found; install iproute2 (e.g. `apt-get install iproute2`)")]
    NoIp,
    #[error("`ip {args}` failed: {detail}{hint}")]
    Command {
        args: String,
        detail: String,
        hint: &'static str,
    },
}

/// A network namespace with a TAP device, deleted (with everything in it) when dropped, also
/// when the run that made it fails.
#[derive(Debug)]
pub struct TapNamespace {
    name: String,
}

impl TapNamespace {
    /// Creates `runbench-<pid>-<n>` holding [`TAP_DEVICE`] with [`KERNEL_ADDR`], link up.
    pub fn create() -> Result<TapNamespace, NetnsError> {
        if !Path::new("/dev/net/tun").exists() {
            return Err(NetnsError::NoTun);
        }
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        // From here on the guard owns the namespace: an error below deletes it.
        let ns = TapNamespace { name };
        let kernel = format!("{KERNEL_ADDR}/{TAP_PREFIX_LEN}");
        ns.ip_in(&["tuntap", "add", "dev", TAP_DEVICE, "mode", "tap"])?;
        ns.ip_in(&["addr", "add", &kernel, "dev", TAP_DEVICE])?;
        ns.ip_in(&["link", "set", TAP_DEVICE, "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the plugin's stack listens, and so where the load generator connects.
    pub fn server_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(STACK_ADDR, STACK_PORT))
    }

    fn ip_in(&self, args: &[&str]) -> Result<(), NetnsError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for TapNamespace {
    fn drop(&mut self) {
        // A persistent TAP device would survive in a namespace that processes still hold;
        // remove it first, then the namespace (which the kernel frees once its last process
        // has left).
        let _ = self.ip_in(&["link", "del", TAP_DEVICE]);
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            crate::console::log(&format!(
                "could not delete network namespace {}: {e}",
                self.name
            ));
        }
    }
}

/// Moves the calling thread into the named namespace. Threads it starts afterwards inherit it,
/// so a child process calls this first, before it starts any thread or opens any socket.
pub fn enter(name: &str) -> io::Result<()> {
    let path = Path::new(NETNS_DIR).join(name);
    let handle = std::fs::File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    // SAFETY: setns on a namespace descriptor we hold open for the call.
    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("entering network namespace {name}: {e}"),
        ));
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<(), NetnsError> {
    let output = Command::new("ip").args(args).output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            NetnsError::NoIp
        } else {
            NetnsError::Command {
                args: args.join(" "),
                detail: e.to_string(),
                hint: "",
            }
        }
    })?;
    if output.status.success() {
        return Ok(());
    }
    let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let lower = detail.to_lowercase();
    let hint = if lower.contains("permission") || lower.contains("not permitted") {
        " (creating network namespaces and TAP devices needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    } else {
        ""
    };
    Err(NetnsError::Command {
        args: args.join(" "),
        detail,
        hint,
    })
}

/// Deletes namespaces left by runbench processes that no longer exist (a runner killed with
/// SIGKILL cannot run its guards), saying so in the log; called at the start of every run.
/// Namespaces whose owner process still exists, and any not named by this module, are left
/// alone.
pub fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = owner(&name) else { continue };
        if owner_alive(pid) {
            continue;
        }
        let _ = ip(&["-n", &name, "link", "del", TAP_DEVICE]);
        match ip(&["netns", "del", &name]) {
            Ok(()) => {
                crate::console::log(&format!(
                    "removed network namespace {name}: left by runbench process {pid}, which is \
                     gone (killed before it could clean up)"
                ));
            }
            Err(e) => crate::console::log(&format!(
                "stale network namespace {name} (its runbench process {pid} is gone) could not \
                 be removed: {e}"
            )),
        }
    }
}

/// The runner pid in a `runbench-<pid>-<n>` name.
fn owner(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(PREFIX)?.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Whether process `pid` still exists. Any process counts, not only one called runbench: the
/// namespace may belong to a test binary or a program embedding the library, and a reused pid
/// only delays the clean-up to a later run.
fn owner_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_runbench_names_have_an_owner() {
        assert_eq!(super::owner("runbench-123-0"), Some(123));
        assert_eq!(super::owner("runbench-123"), None);
        assert_eq!(super::owner("other-123-0"), None);
        assert_eq!(super::owner("runbench-x-0"), None);
    }
}
