//! The server side of a step: plugin processes (in a network namespace when the plugin drives
//! a TAP device) or an external target, behind one interface.

use crate::plan::{Plan, Point, Subject};
use crate::protocol::ServeSpec;
use crate::supervise::external::External;
use crate::supervise::server::{Servers, ServersExit};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

/// A port nobody listens on yet. The probe socket has SO_REUSEPORT and stays bound (not
/// listening) until the servers are up, so no other program takes the port meanwhile.
fn reserve_port() -> std::io::Result<(TcpListener, u16)> {
    let probe =
        runbench_plugin_abi::os::reuseport_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    let port = probe.local_addr()?.port();
    // A listening probe would take a share of the connections; re-bind without listen.
    drop(probe);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    Ok((socket.into(), port))
}

/// The server side of a step: plugin processes or an external target.
pub(super) enum Server {
    Plugins(Servers),
    External(External),
}

impl Server {
    /// Where the servers' /proc is read (here, or on the server agent's host).
    pub(super) fn sampler(&self) -> crate::supervise::server::ProcSampler {
        match self {
            Server::Plugins(s) => s.sampler(),
            Server::External(e) => crate::supervise::server::ProcSampler::Local(e.pids()),
        }
    }
    pub(super) fn crashed(&mut self) -> Option<String> {
        match self {
            Server::Plugins(s) => s.crashed(),
            Server::External(e) => e.crashed(),
        }
    }
    /// Connections accepted so far, when the server can say (plugins with live counters).
    pub(super) fn accepted_now(&mut self) -> Option<u64> {
        match self {
            Server::Plugins(s) => s.accepted_now(Duration::from_secs(1)),
            Server::External(_) => None,
        }
    }
    pub(super) fn watch_window(&mut self, start_ns: u64, end_ns: u64) {
        if let Server::Plugins(s) = self {
            s.watch_window(start_ns, end_ns);
        }
    }
    pub(super) fn signal_stop(&mut self) {
        if let Server::Plugins(s) = self {
            s.signal_stop();
        }
    }
    pub(super) fn stop(self, grace: Duration) -> ServersExit {
        match self {
            Server::Plugins(s) => s.stop(grace),
            Server::External(e) => e.stop(grace),
        }
    }
}

pub(super) fn start_server(
    plan: &Plan,
    exe: &Path,
    subject: &Subject,
    point: &Point,
    netns: Option<&crate::os::netns::TapNamespace>,
    ready_timeout: Duration,
) -> Result<(Server, SocketAddr, String), String> {
    let s = &plan.scenario;
    match subject {
        Subject::External(t) => {
            let ext = External::start(t)?;
            Ok((Server::External(ext), t.address, String::new()))
        }
        Subject::Plugin(plugin) => {
            let (reservation, addr) = match (netns, plan.placement.server()) {
                (Some(ns), _) => (None, ns.server_addr()),
                // Across machines: a port the server agent reserved on its own address.
                (None, Some(agent)) => (
                    None,
                    SocketAddr::new(agent.addr.ip(), agent.reserve_port()?),
                ),
                (None, None) => {
                    let (r, port) =
                        reserve_port().map_err(|e| format!("finding a free port: {e}"))?;
                    (Some(r), SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                }
            };
            let serve = ServeSpec {
                plugin: plugin.path.clone(),
                addr,
                threads: point.threads,
                cpus: s.server.cpus.clone(),
                max_connections: point.max_connections,
                grace_ms: s.shutdown.grace.as_millis() as u64,
                workload: plan.workload(point),
                netns: netns.map(|ns| ns.name().to_string()),
            };
            let servers = Servers::start(
                exe,
                &serve,
                plan.server_processes,
                &plan.placement,
                &plugin.name,
                ready_timeout,
            )?;
            drop(reservation);
            let version = servers.runtime_version.clone();
            Ok((Server::Plugins(servers), addr, version))
        }
    }
}
/// For a plugin with its own TCP/IP stack ([`runbench_plugin_abi::NEEDS_TAP`]): a network
/// namespace with a TAP device for this run alone. `None` for kernel-socket plugins.
pub(super) fn tap_namespace(
    plan: &Plan,
    runtime: &str,
    plugin: &Path,
) -> Result<Option<crate::os::netns::TapNamespace>, String> {
    // RTLD_LOCAL, like the serve child's load (see plugin::load), so its symbols stay private.
    let loaded = crate::plugin::load(plugin).map_err(|e| e.to_string())?;
    if !loaded.needs_tap() {
        return Ok(None);
    }
    if !plan.placement.is_local() {
        return Err(format!(
            "{runtime} drives a TAP device in a namespace runbench makes on its own host; it \
             cannot run across machines"
        ));
    }
    if plan.server_processes != 1 {
        return Err(format!(
            "{runtime} drives one TAP device, which one server process holds; \
             run it with --server-processes 1 (this run asked for {})",
            plan.server_processes
        ));
    }
    let ns = crate::os::netns::TapNamespace::create().map_err(|e| {
        format!("{runtime} needs a TAP device in a network namespace of its own: {e}")
    })?;
    crate::console::log(&format!(
        "[{runtime}] network namespace {}: {} on {}, load from {}",
        ns.name(),
        ns.server_addr(),
        runbench_plugin_abi::TAP_DEVICE,
        crate::os::netns::KERNEL_ADDR
    ));
    Ok(Some(ns))
}
