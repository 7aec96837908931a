//! The controller's side of one agent: its identity and clock, the children it runs for us,
//! and the thread that reads its frames. An agent silent past [`super::LOST_AFTER`], or whose
//! connection breaks or fails a tag, is lost: each of its children gets a `failed` line naming
//! the agent, when, and how many connections stopped, and then an exit, so the run loop ends
//! the step as for a dead local process and keeps what the others measured.

use super::clock::{Offset, Sample};
use super::msg::{ChildKind, Role, ToAgent, ToController};
use super::wire::{Deadline, FrameReader, FrameWriter, WireError};
use crate::os::procfs::ProcSample;
use crate::os::sys::Reaped;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A line a remote child wrote: a protocol event or a line of its stderr.
pub enum Line {
    Event(String),
    Log(String),
}

/// How a remote child ended, filled in when its exit arrives (or its agent is lost).
pub type ExitSlot = Arc<Mutex<Option<Reaped>>>;

struct Slot {
    lines: Sender<Line>,
    exit: ExitSlot,
    connections: usize,
}

pub struct AgentLink {
    pub name: String,
    pub role: Role,
    pub shard: Option<usize>,
    pub version: String,
    pub addr: SocketAddr,
    pub offset: Offset,
    writer: Mutex<FrameWriter<TcpStream>>,
    slots: Mutex<HashMap<u64, Slot>>,
    next_id: AtomicU64,
    lost: Mutex<Option<String>>,
    port_reply: Mutex<Option<Sender<Result<u16, String>>>>,
    sample_reply: Mutex<Option<Sender<(ProcSample, bool)>>>,
}

/// How long a /proc reading on an agent may take to come back (it is taken between the run
/// loop's other duties).
const SAMPLE_WAIT: Duration = Duration::from_millis(200);

/// Ping round trips per agent when it joins; the fastest sets its offset.
const CLOCK_SAMPLES: usize = 16;
/// The pings go out this far apart without waiting for their pongs, so the measurement takes
/// one round trip and a little more, whatever the round trip.
const PING_GAP: Duration = Duration::from_millis(2);

/// What the clock measurement found.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub offset: Offset,
    /// The slowest of the round trips (the fastest is `offset.rtt_ns`).
    pub slowest_rtt_ns: u64,
}

/// Measures an agent's clock on a fresh authenticated connection, by `d`: [`CLOCK_SAMPLES`]
/// pings sent [`PING_GAP`] apart, each answered with the agent's clock; the fastest round trip
/// sets the offset.
pub fn measure_clock(
    reader: &mut FrameReader<TcpStream>,
    writer: &mut FrameWriter<TcpStream>,
    d: Deadline,
) -> Result<Measured, String> {
    let (tx, sent) = mpsc::channel::<u64>();
    std::thread::scope(|scope| {
        let pinger = scope.spawn(move || -> Result<(), WireError> {
            for _ in 0..CLOCK_SAMPLES {
                let t0 = crate::os::sys::monotonic_ns();
                // Known before its pong can come back.
                let _ = tx.send(t0);
                writer.send(&ToAgent::Ping { t0 })?;
                std::thread::sleep(PING_GAP);
            }
            Ok(())
        });
        let mut samples = Vec::new();
        let mut t0s = Vec::new();
        while samples.len() < CLOCK_SAMPLES {
            match reader.recv_by::<ToController>(d) {
                Ok(ToController::Pong { t0, agent_ns }) => {
                    let t1 = crate::os::sys::monotonic_ns();
                    t0s.extend(sent.try_iter());
                    if t0s.contains(&t0) {
                        samples.push(Sample { t0, agent_ns, t1 });
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "measuring its clock ({} of {CLOCK_SAMPLES} pings answered): {e}",
                        samples.len()
                    ))
                }
            }
        }
        match pinger.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("measuring its clock: {e}")),
            Err(_) => return Err("measuring its clock: the pinging thread panicked".into()),
        }
        let offset = Offset::best(&samples).ok_or("measuring its clock: no sample")?;
        let slowest_rtt_ns = samples.iter().map(|s| s.t1.saturating_sub(s.t0)).max();
        Ok(Measured {
            offset,
            slowest_rtt_ns: slowest_rtt_ns.unwrap_or(offset.rtt_ns),
        })
    })
}

impl AgentLink {
    /// An admitted agent whose clock was measured: its frames are followed on a thread of
    /// its own from now on.
    pub fn start(
        hello: super::handshake::Hello,
        addr: SocketAddr,
        offset: Offset,
        reader: FrameReader<TcpStream>,
        writer: FrameWriter<TcpStream>,
    ) -> Arc<AgentLink> {
        // Reads poll for heartbeats; a write that cannot go out within the loss time fails.
        let s = writer.stream();
        let _ = s.set_read_timeout(Some(super::HEARTBEAT));
        let _ = s.set_write_timeout(Some(super::LOST_AFTER));
        let link = Arc::new(AgentLink {
            name: hello.name,
            role: hello.role,
            shard: hello.shard,
            version: hello.version,
            addr,
            offset,
            writer: Mutex::new(writer),
            slots: Default::default(),
            next_id: AtomicU64::new(1),
            lost: Mutex::new(None),
            port_reply: Mutex::new(None),
            sample_reply: Mutex::new(None),
        });
        let l = link.clone();
        std::thread::spawn(move || l.follow(reader));
        link
    }

    pub fn label(&self) -> String {
        format!("{} agent {} ({})", self.role, self.name, self.addr.ip())
    }

    /// Why the agent was lost, once it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn send(&self, m: &ToAgent) {
        let r = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(m);
        if let Err(e) = r {
            self.lose(&format!("writing to it failed: {e}"));
        }
    }

    /// Starts a child on the agent; its lines arrive on the receiver.
    pub fn spawn(
        &self,
        kind: ChildKind,
        spec: String,
        plugin_sha256: Option<String>,
        connections: usize,
    ) -> Result<(u64, Receiver<Line>, ExitSlot), String> {
        if let Some(why) = self.lost() {
            return Err(format!("{} is lost: {why}", self.label()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let exit = ExitSlot::default();
        self.slots.lock().unwrap().insert(
            id,
            Slot {
                lines: tx,
                exit: exit.clone(),
                connections,
            },
        );
        self.send(&ToAgent::Spawn {
            id,
            kind,
            spec,
            plugin_sha256,
        });
        Ok((id, rx, exit))
    }

    /// A free port on the agent's address, held there until the next reservation.
    pub fn reserve_port(&self) -> Result<u16, String> {
        let (tx, rx) = mpsc::channel();
        *self.port_reply.lock().unwrap() = Some(tx);
        self.send(&ToAgent::ReservePort);
        match rx.recv_timeout(super::LOST_AFTER) {
            Ok(r) => r.map_err(|e| format!("{}: reserving a port: {e}", self.label())),
            Err(_) => Err(format!(
                "{} did not answer a port reservation{}",
                self.label(),
                self.lost().map(|w| format!(": {w}")).unwrap_or_default()
            )),
        }
    }

    /// /proc of children `ids` on the agent, read there now: (their sum, whether every one was
    /// still there); `None` when the agent does not answer within [`SAMPLE_WAIT`].
    pub fn sample(&self, ids: &[u64]) -> Option<(ProcSample, bool)> {
        let (tx, rx) = mpsc::channel();
        *self.sample_reply.lock().unwrap() = Some(tx);
        self.send(&ToAgent::Sample { ids: ids.to_vec() });
        rx.recv_timeout(SAMPLE_WAIT).ok()
    }

    fn follow(self: Arc<Self>, mut reader: FrameReader<TcpStream>) {
        let mut heard = Instant::now();
        loop {
            match reader.recv::<ToController>() {
                Ok(m) => {
                    heard = Instant::now();
                    self.take(m);
                }
                Err(e) if e.is_timeout() => {
                    if heard.elapsed() > super::LOST_AFTER {
                        self.lose(&format!(
                            "no frame for {:.1}s (heartbeats every {}ms)",
                            heard.elapsed().as_secs_f64(),
                            super::HEARTBEAT.as_millis()
                        ));
                        return;
                    }
                }
                Err(WireError::Closed) => {
                    self.lose("its connection closed");
                    return;
                }
                Err(e) => {
                    self.lose(&format!("its connection failed: {e}"));
                    return;
                }
            }
            if self.lost().is_some() {
                return;
            }
        }
    }

    fn take(&self, m: ToController) {
        match m {
            ToController::Heartbeat | ToController::Pong { .. } => {}
            ToController::Event { id, line } => self.to_slot(id, Line::Event(line)),
            ToController::Log { id, line } => self.to_slot(id, Line::Log(line)),
            ToController::Exited { id, exit } => {
                // Dropping the slot closes its line channel after the last line.
                if let Some(s) = self.slots.lock().unwrap().remove(&id) {
                    *s.exit.lock().unwrap() = Some(exit.into());
                }
            }
            ToController::Sampled { sum, complete } => {
                if let Some(tx) = self.sample_reply.lock().unwrap().take() {
                    let _ = tx.send((sum, complete));
                }
            }
            ToController::Port { port } => {
                if let Some(tx) = self.port_reply.lock().unwrap().take() {
                    let _ = tx.send(port);
                }
            }
        }
    }

    fn to_slot(&self, id: u64, line: Line) {
        if let Some(s) = self.slots.lock().unwrap().get(&id) {
            let _ = s.lines.send(line);
        }
    }

    /// The agent is gone: every child of it fails with the reason, and nothing is restarted.
    pub fn lose(&self, reason: &str) {
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if lost.is_some() {
            return;
        }
        let when = chrono::Utc::now().format("%H:%M:%S%.3fZ");
        let slots: Vec<Slot> = self.slots.lock().unwrap().drain().map(|(_, s)| s).collect();
        let connections: usize = slots.iter().map(|s| s.connections).sum();
        let what = format!(
            "{} lost at {when}: {reason}; {connections} connection(s) it held stopped",
            self.label()
        );
        crate::console::log(&what);
        for s in slots {
            let _ = s.lines.send(Line::Event(super::agent::failed_line(&what)));
            *s.exit.lock().unwrap() = Some(Reaped::default());
        }
        *lost = Some(what);
    }

    /// Sends heartbeats until the agent is lost.
    pub fn beat(self: &Arc<Self>) {
        let l = self.clone();
        std::thread::spawn(move || {
            while l.lost().is_none() {
                l.send(&ToAgent::Heartbeat);
                std::thread::sleep(super::HEARTBEAT);
            }
        });
    }

    /// Waits until the exit slot is filled, at most `within`.
    pub fn wait_exit(slot: &ExitSlot, within: Duration) -> Option<Reaped> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = *slot.lock().unwrap() {
                return Some(r);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
