//! When an answer arrived: the kernel's receive timestamp of the bytes read (SO_TIMESTAMPNS,
//! taken as the packet reached the socket), moved onto this process's monotonic clock. Latency
//! then ends when the answer was there, not when the generator got round to reading it, so the
//! generator may sleep through arrivals until its next send (one wake-up per request instead of
//! two) without charging that sleep, or its own scheduling delays, to the server.
//!
//! The stamp is CLOCK_REALTIME. It is moved onto the monotonic clock by the two clocks' offset
//! ([`Clocks`]), measured by the reading thread from tight pairs of reads (monotonic, realtime,
//! monotonic: the pair with the shortest gap, so an interrupt between two reads cannot skew it)
//! and measured again every [`REMEASURE`]. Reading both clocks after each `recvmsg` instead would
//! put any preemption between the two reads into the answer's age: the arrival would come out
//! early by it, and a latency shorter than the round trip, down to zero (issue: a p0 of 1 ns).
//!
//! The offset only moves when the realtime clock is stepped (settimeofday, a time agent: NTP's
//! slewing moves both clocks alike). Each measurement compares itself with the last, so a step
//! is found within [`REMEASURE`] and counted ([`Got::stepped`]); a stamp that lands after its
//! read is what a step forward since the last measurement looks like, so the offset is measured
//! again at once and the stamp placed by the new one; so is one that lands no later than the
//! request it answers was due (a step back). A stamp that still lands after the read, or more
//! than [`MAX_AGE`] before it, cannot be placed ([`Timed::StampRejected`]): it was taken before
//! a step back, or the clock of the CPU that stamped it (the one that sent the answer) is ahead
//! of this one's, and the read instant is used instead.
//!
//! Measured with `benchmarks/clock-step/run.sh` (the open model at 100,000/s on 100 connections
//! while a program steps the realtime clock 300 µs back and forth every 50 ms): every step in
//! the window counted (20), and in a debug build the answers timed at or before their request
//! went out fell from 1,046 to 33 once a misplaced stamp made the offset be measured again
//! (those left came in reads of several answers, checked against the oldest's request); the
//! release build left 1.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

/// Older stamps are taken as a clock step, not a wait.
const MAX_AGE: Duration = Duration::from_secs(10);
/// How often the clocks' offset is measured again (about a microsecond each time): how long a
/// step of the realtime clock can misplace stamps before it is found.
pub const REMEASURE: Duration = Duration::from_millis(10);
/// Pairs of reads per measurement; the tightest is kept.
const PAIRS: usize = 5;
/// How far two measurements of the offset may differ, beyond their pairs' half gaps, before the
/// difference counts as a step (both clocks come from one timekeeper: nothing else moves it).
const STEP: Duration = Duration::from_micros(1);

/// One instant on both clocks: the realtime clock read between two monotonic reads, placed at
/// their midpoint (so within half their gap of the truth).
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    mono: Instant,
    real: SystemTime,
    /// The gap of the pair kept: how far off the offset can be.
    pub gap: Duration,
}

impl Clocks {
    /// Measures the offset now, from the tightest of a few pairs of reads.
    pub fn measure() -> Clocks {
        let mut best: Option<Clocks> = None;
        for _ in 0..PAIRS {
            let a = Instant::now();
            let real = SystemTime::now();
            let b = Instant::now();
            let gap = b - a;
            if best.is_none_or(|c| gap < c.gap) {
                best = Some(Clocks {
                    mono: a + gap / 2,
                    real,
                    gap,
                });
            }
        }
        best.expect("at least one pair")
    }

    /// Measures again when the last measurement is older than [`REMEASURE`] at `now`; true when
    /// the offset had moved (a step of the realtime clock since the last measurement).
    pub fn refresh(&mut self, now: Instant) -> bool {
        now.saturating_duration_since(self.mono) >= REMEASURE && self.remeasure()
    }

    /// Measures again now; true when the offset had moved since the last measurement.
    fn remeasure(&mut self) -> bool {
        let fresh = Clocks::measure();
        let stepped = self.moved(&fresh);
        *self = fresh;
        stepped
    }

    /// `later`'s offset differs from this one's by more than the two measurements' uncertainty.
    fn moved(&self, later: &Clocks) -> bool {
        let nanos = |d: Duration| d.as_nanos() as i128;
        let real = match later.real.duration_since(self.real) {
            Ok(d) => nanos(d),
            Err(e) => -nanos(e.duration()),
        };
        let mono = nanos(later.mono.saturating_duration_since(self.mono));
        let allowed = nanos((self.gap + later.gap) / 2 + STEP);
        (real - mono).abs() > allowed
    }

    /// `stamp` (realtime) on the monotonic clock, if it is an instant before `read_at` and not
    /// more than [`MAX_AGE`] before it (else a clock step).
    fn on_monotonic(&self, stamp: SystemTime, read_at: Instant) -> Option<Instant> {
        let at = match stamp.duration_since(self.real) {
            Ok(after) => self.mono.checked_add(after)?,
            Err(e) => self.mono.checked_sub(e.duration())?,
        };
        // The offset is known within half a gap; a stamp just after the read is that.
        let at = match at.checked_duration_since(read_at) {
            Some(ahead) if ahead <= self.gap.max(Duration::from_micros(1)) => read_at,
            Some(_) => return None,
            None => at,
        };
        (read_at - at <= MAX_AGE).then_some(at)
    }

    /// Places `stamp`, read at `read_at`, on the monotonic clock: by this offset, or, where that
    /// cannot place it or places it no later than `not_before` (the answer's request was not
    /// out yet), by one measured again now: the realtime clock may have been stepped since. The
    /// instant, and whether the second measurement found a step.
    fn place(
        &mut self,
        stamp: SystemTime,
        read_at: Instant,
        not_before: Option<Instant>,
    ) -> (Option<Instant>, bool) {
        let at = self.on_monotonic(stamp, read_at);
        if at.is_some_and(|at| not_before.is_none_or(|first| at > first)) {
            return (at, false);
        }
        let stepped = self.remeasure();
        (self.on_monotonic(stamp, read_at), stepped)
    }
}

/// Asks the kernel to stamp what `stream` receives.
pub fn enable(stream: &impl AsRawFd) -> io::Result<()> {
    crate::os::sys::set_flag(stream, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// How a read's answers were timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timed {
    /// By the kernel's receive stamp.
    Stamped,
    /// When read: the kernel attached no stamp (stamping off).
    Unstamped,
    /// When read: the stamp could not be placed on this thread's clock, even by an offset
    /// measured again (it lands after the read, or over [`MAX_AGE`] before it).
    StampRejected,
}

/// What one read got: how many bytes, when the last of them arrived, and when they were read.
pub struct Got {
    pub n: usize,
    pub arrived: Instant,
    pub read_at: Instant,
    /// Whether `arrived` is the kernel's stamp; if not it is `read_at`, which may be late by
    /// the generator's sleep.
    pub timed: Timed,
    /// A measurement of the clocks' offset during this read found the realtime clock stepped.
    pub stepped: bool,
}

/// Reads into `buf` like `read(2)`; says when the last byte read arrived, on the monotonic clock
/// by `clocks` (measured again here when it is due, or when the stamp lands where it cannot be:
/// after the read, or not after `not_before`, the instant the oldest request the bytes can
/// answer was due to go out).
pub fn read(
    stream: &TcpStream,
    buf: &mut [u8],
    clocks: &mut Clocks,
    not_before: Option<Instant>,
) -> io::Result<Got> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS message (16 + 16 bytes), 8-byte aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is its empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all live for the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    let now = Instant::now();
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stepped = clocks.refresh(now);
    let (arrived, timed) = match stamp(&msg) {
        None => (now, Timed::Unstamped),
        Some(s) => {
            let (at, found) = clocks.place(s, now, not_before);
            stepped |= found;
            at.map_or((now, Timed::StampRejected), |at| (at, Timed::Stamped))
        }
    };
    Ok(Got {
        n: n as usize,
        arrived,
        read_at: now,
        timed,
        stepped,
    })
}

/// Round trips measured for [`loopback_floor`], and the longest it may take to find them (the
/// kernel turns receive stamping on a moment after the first socket asks). A hundred left the
/// minimum up to 2 µs above the machine's (8.7-8.9 µs against 6.8-6.9 µs in the same run);
/// a thousand take about 10 ms.
const FLOOR_ROUNDS: usize = 1000;
const FLOOR_WITHIN: Duration = Duration::from_millis(200);

/// The least time any server needs to answer on this machine's loopback once a request is in:
/// one read of it and one write of the answer back, to the kernel's receive stamp. One thread
/// plays both ends of a loopback TCP connection (write, then read and write back at once, no
/// wake-up in between) and times from the instant its write returned (the request is in the
/// other end's socket by then: loopback delivers inside the write) to the stamp of the answer.
/// A request's latency also holds the write that sends it, and a server's read and write take
/// at least these, so every latency is longer. (Timed from before the write, as a request is, a
/// round trip through one thread is not a floor: a server spinning on another CPU answered in
/// 6.68-6.80 µs where one thread took 6.88-6.91 µs, since its work overlaps the client's return
/// from the write.) The minimum of [`FLOOR_ROUNDS`] stamped round trips; `None` where loopback
/// or stamping is unavailable (a namespace whose `lo` is down): then nothing is compared with a
/// floor.
pub fn loopback_floor(clocks: &mut Clocks) -> Option<Duration> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let mut near = TcpStream::connect(listener.local_addr().ok()?).ok()?;
    let (mut far, _) = listener.accept().ok()?;
    drop(listener);
    for s in [&near, &far] {
        s.set_nodelay(true).ok()?;
        s.set_read_timeout(Some(FLOOR_WITHIN)).ok()?;
    }
    enable(&near).ok()?;
    let deadline = Instant::now() + FLOOR_WITHIN;
    let (mut floor, mut stamped) = (None::<Duration>, 0);
    let mut byte = [0u8; 1];
    while stamped < FLOOR_ROUNDS && Instant::now() < deadline {
        near.write_all(b"p").ok()?;
        let delivered = Instant::now();
        far.read_exact(&mut byte).ok()?;
        far.write_all(&byte).ok()?;
        let got = read(&near, &mut byte, clocks, Some(delivered)).ok()?;
        if got.n != 1 {
            return None;
        }
        if got.timed == Timed::Stamped {
            stamped += 1;
            let rtt = got.arrived.saturating_duration_since(delivered);
            floor = Some(floor.map_or(rtt, |f| f.min(rtt)));
        } else {
            // Stamping is not on yet: give the kernel's work queue a moment.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    floor
}

/// The SCM_TIMESTAMPNS message of a received `msg`, if the kernel attached one.
fn stamp(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: the CMSG_* walk stays within `msg_control`/`msg_controllen` as recvmsg set them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                let since_epoch = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                return SystemTime::UNIX_EPOCH.checked_add(since_epoch);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_answer_read_late_is_stamped_when_it_arrived() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        enable(&client).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        // The kernel turns receive stamping on (a static key) a moment after the first socket
        // asks, from a work queue; the load generator's sockets ask long before the load.
        std::thread::sleep(Duration::from_millis(100));
        let before = Instant::now();
        // Loopback delivers inside the write: the bytes arrive before it returns.
        server.write_all(b"answer").unwrap();
        let after = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        let Got {
            n, arrived, timed, ..
        } = read(&client, &mut buf, &mut Clocks::measure(), None).unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf[..n], b"answer");
        assert_eq!(timed, Timed::Stamped);
        // Arrived during the write, not 50 ms later when it was read (1 ms for the clocks).
        let slack = Duration::from_millis(1);
        assert!(
            arrived + slack >= before && arrived <= after + slack,
            "arrived {:?} after the write began, which took {:?}",
            arrived.saturating_duration_since(before),
            after - before
        );
        assert!(read_at - arrived >= Duration::from_millis(45));
    }

    #[test]
    fn a_stamp_from_the_future_or_far_past_is_taken_as_a_clock_step() {
        let clocks = Clocks::measure();
        let (now, real) = (clocks.mono, clocks.real);
        assert_eq!(
            clocks.on_monotonic(real + Duration::from_secs(1), now),
            None
        );
        assert_eq!(
            clocks.on_monotonic(real - Duration::from_secs(3600), now),
            None
        );
        let recent = real - Duration::from_millis(3);
        assert_eq!(
            now - clocks.on_monotonic(recent, now).unwrap(),
            Duration::from_millis(3)
        );
        // Read later: the stamp keeps its instant, whatever the delay before the read.
        let later = now + Duration::from_millis(40);
        assert_eq!(
            clocks.on_monotonic(recent, later),
            clocks.on_monotonic(recent, now)
        );
    }

    /// The fixture that misbehaves: an offset measured before the realtime clock was stepped
    /// (here, one whose realtime reading is moved by the step). The next measurement finds the
    /// step, a step back as well as forward, and none where the clock was not stepped.
    #[test]
    fn a_measurement_finds_a_step_of_the_realtime_clock_since_the_last() {
        let step = Duration::from_micros(50);
        let now = Clocks::measure();
        let before = |real: SystemTime| Clocks {
            mono: now.mono - REMEASURE,
            real,
            gap: now.gap,
        };
        let forward = before(now.real - REMEASURE - step);
        let back = before(now.real - REMEASURE + step);
        let unstepped = before(now.real - REMEASURE);
        for (mut clocks, stepped) in [(forward, true), (back, true), (unstepped, false)] {
            assert_eq!(clocks.refresh(Instant::now()), stepped, "{clocks:?}");
        }
        // Not yet due: nothing measured, nothing found.
        let mut fresh = Clocks::measure();
        assert!(!fresh.refresh(fresh.mono));
    }

    /// After a step that the last measurement predates, a fresh stamp is misplaced by the step:
    /// forward, after its read; back, before its request went out. Either way the offset is
    /// measured again at once, the step counted, and the stamp placed by the new offset. A
    /// stamp no offset can place (from the future: another CPU's clock ahead) is rejected, and
    /// no step is counted for it. Each step is the time from `sent` to the read plus a margin,
    /// so a preemption between them cannot leave the stale placement inside that span.
    #[test]
    fn a_stamp_where_it_cannot_be_is_placed_by_an_offset_measured_again() {
        for margin in [Duration::from_millis(5), Duration::from_micros(300)] {
            for forward in [true, false] {
                let sent = Instant::now();
                let stamp = SystemTime::now();
                let read_at = Instant::now();
                let truth = Clocks::measure();
                let step = read_at - sent + margin;
                let mut stale = Clocks {
                    real: if forward {
                        truth.real - step
                    } else {
                        truth.real + step
                    },
                    ..truth
                };
                let (at, stepped) = stale.place(stamp, read_at, Some(sent));
                let at = at.expect("placed by the offset measured again");
                assert!(stepped, "forward {forward}, step {step:?}");
                let slack = stale.gap + Duration::from_micros(1);
                assert!(
                    at + slack >= sent && at <= read_at,
                    "placed {:?} from the pair around the stamp, which took {:?}",
                    at.checked_duration_since(sent),
                    read_at - sent
                );
            }
        }
        let mut clocks = Clocks::measure();
        let future = SystemTime::now() + Duration::from_secs(1);
        assert_eq!(clocks.place(future, Instant::now(), None), (None, false));
    }

    /// The offset comes from the tightest pair of reads, so it is within a few microseconds of
    /// the truth however the thread is interrupted (one pair in five would have to be clean):
    /// a realtime read taken now lands within that of a monotonic read taken beside it. The
    /// old way, both clocks read once after each `recvmsg`, put any interruption between the
    /// two reads into the answer's age.
    #[test]
    fn the_offset_from_the_tightest_pair_places_a_fresh_realtime_read_next_to_now() {
        for _ in 0..1000 {
            let clocks = Clocks::measure();
            let before = Instant::now();
            let real = SystemTime::now();
            let after = Instant::now();
            let at = clocks.on_monotonic(real, after).expect("a fresh stamp");
            let slack = clocks.gap + Duration::from_micros(1);
            assert!(
                at + slack >= before && at <= after,
                "placed {:?} from the read pair (gap {:?})",
                at.checked_duration_since(before),
                clocks.gap
            );
        }
    }

    /// The floor is a floor: more than nothing, and no more than a stamped round trip through
    /// the least a server can do, a thread on another CPU spinning on its reads (no wake-up),
    /// takes. The one-thread round trip timed from before the write, the first floor, failed
    /// this (6.88-6.91 µs against 6.68-6.80 µs on this machine).
    #[test]
    fn the_loopback_floor_is_below_a_round_trip_through_a_spinning_responder() {
        let floor = loopback_floor(&mut Clocks::measure()).expect("loopback and stamping");
        assert!(floor > Duration::ZERO);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nodelay(true).unwrap();
        enable(&client).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nodelay(true).unwrap();
        server.set_nonblocking(true).unwrap();
        let echo = std::thread::spawn(move || {
            let mut server = server;
            let mut b = [0u8; 1];
            // Bounded: the client's shutdown ends it, and so does this deadline.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match std::io::Read::read(&mut server, &mut b) {
                    Ok(0) => break,
                    Ok(_) => {
                        if server.write_all(&b).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                    Err(_) => break,
                }
            }
        });
        let (mut clocks, mut shortest) = (Clocks::measure(), Duration::MAX);
        for _ in 0..1000 {
            let before = Instant::now();
            (&client).write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            let got = read(&client, &mut b, &mut clocks, Some(before)).unwrap();
            if got.timed == Timed::Stamped {
                shortest = shortest.min(got.arrived.saturating_duration_since(before));
            }
        }
        client.shutdown(std::net::Shutdown::Both).unwrap();
        echo.join().unwrap();
        assert!(shortest < Duration::MAX, "no stamped round trip");
        assert!(
            floor <= shortest,
            "floor {floor:?}, a round trip through a spinning responder {shortest:?}"
        );
    }

    /// The fixture that misbehaves: a socket the kernel does not stamp. Its answer is timed
    /// when read, and the read says so, so the run can count it instead of charging the
    /// generator's sleep to the server unseen.
    #[test]
    fn a_read_without_a_kernel_stamp_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"answer").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut buf = [0u8; 16];
        let got = read(&client, &mut buf, &mut Clocks::measure(), None).unwrap();
        assert_eq!(&buf[..got.n], b"answer");
        assert_eq!(got.timed, Timed::Unstamped);
        assert_eq!(got.arrived, got.read_at);
    }
}
