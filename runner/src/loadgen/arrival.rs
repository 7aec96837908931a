//! When an answer arrived: the kernel's receive timestamp of the bytes read (SO_TIMESTAMPNS,
//! taken as the packet reached the socket), moved onto this process's monotonic clock. Latency
//! then ends when the answer was there, not when the generator got round to reading it, so the
//! generator may sleep through arrivals until its next send (one wake-up per request instead of
//! two) without charging that sleep, or its own scheduling delays, to the server.
//!
//! The stamp is CLOCK_REALTIME; its age (realtime now minus stamp) is taken from a monotonic
//! instant read at the same moment. A realtime clock stepped backwards (or by more than
//! [`MAX_AGE`] forwards) gives an age that cannot be true: the read instant is used instead.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

/// Older stamps are taken as a clock step, not a wait.
const MAX_AGE: Duration = Duration::from_secs(10);

/// Asks the kernel to stamp what `stream` receives.
pub fn enable(stream: &impl AsRawFd) -> io::Result<()> {
    crate::os::sys::set_flag(stream, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// What one read got: how many bytes, when the last of them arrived, and when they were read.
pub struct Got {
    pub n: usize,
    pub arrived: Instant,
    pub read_at: Instant,
    /// Whether `arrived` is the kernel's stamp; without one (stamping off, or a clock step) it
    /// is `read_at`, which may be late by the generator's sleep.
    pub stamped: bool,
}

/// Reads into `buf` like `read(2)`; says when the last byte read arrived.
pub fn read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<Got> {
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
    let (now, real_now) = (Instant::now(), SystemTime::now());
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let arrived = stamp(&msg).and_then(|s| on_monotonic(s, now, real_now));
    Ok(Got {
        n: n as usize,
        arrived: arrived.unwrap_or(now),
        read_at: now,
        stamped: arrived.is_some(),
    })
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

/// `stamp` (realtime) as an instant, given the same moment `now` on both clocks; `None` for an
/// age that cannot be true (a clock step).
fn on_monotonic(stamp: SystemTime, now: Instant, real_now: SystemTime) -> Option<Instant> {
    match real_now.duration_since(stamp) {
        Ok(age) if age <= MAX_AGE => now.checked_sub(age),
        _ => None,
    }
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
            n,
            arrived,
            stamped,
            ..
        } = read(&client, &mut buf).unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf[..n], b"answer");
        assert!(stamped);
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
        let (now, real) = (Instant::now(), SystemTime::now());
        let future = real + Duration::from_secs(1);
        assert_eq!(on_monotonic(future, now, real), None);
        let ancient = real - Duration::from_secs(3600);
        assert_eq!(on_monotonic(ancient, now, real), None);
        let recent = real - Duration::from_millis(3);
        assert_eq!(
            now - on_monotonic(recent, now, real).unwrap(),
            Duration::from_millis(3)
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
        let got = read(&client, &mut buf).unwrap();
        assert_eq!(&buf[..got.n], b"answer");
        assert!(!got.stamped);
        assert_eq!(got.arrived, got.read_at);
    }
}
