//! HTTP/1.1 on a blocking thread: the ABI crate's hand-written responder over httparse
//! ([`Responder`]; hyper needs an async runtime, which this row has none of), read and written
//! with blocking calls as the echo is. Pipelined requests in one read are answered in one write;
//! a refused request is answered 400 and the connection closed.

use crate::kick;
use runbench_plugin_abi::responder::Responder;
use runbench_plugin_abi::{Config, HostHandle, Outcome, SyncHandler, ECHO_BUFFER_BYTES};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Release};
use std::time::Duration;

/// Serves `stream` as HTTP/1.1 until the peer closes it, an error, or the stop: between
/// requests `stopping` ends it cleanly, inside one only `forced` does (cutting it); data that is
/// ready wins either way. `turns` counts the loop's turns (the stop's witness).
pub fn serve(
    stream: &mut TcpStream,
    handler: &mut SyncHandler<crate::Std>,
    config: &Config,
    host: &HostHandle,
    (stopping, forced): (&AtomicBool, &AtomicBool),
    turns: &AtomicU64,
) -> Outcome {
    let fd = stream.as_raw_fd();
    let responder = Responder::new(&config.workload);
    let mut buf = vec![0u8; ECHO_BUFFER_BYTES];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::new();
    loop {
        turns.fetch_add(1, Release);
        let idle = start == end;
        let stop = if idle { stopping } else { forced };
        if stop.load(Acquire) && !kick::readable(fd, Duration::ZERO) {
            return if idle { Outcome::Clean } else { Outcome::Cut };
        }
        if start == end {
            (start, end) = (0, 0);
        } else if end == buf.len() {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let n = match stream.read(&mut buf[end..]) {
            Ok(0) => return Outcome::PeerClosed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Outcome::IoError,
        };
        end += n;
        out.clear();
        let done = responder.answer(&buf[start..end], buf.len(), &mut out);
        start += done.consumed;
        // Each request's work as the echo does it (the workload's parts, counted).
        if handler.has_work() {
            for _ in 0..done.requests {
                handler.request();
            }
        } else {
            handler.done(done.requests);
        }
        let mut data = &out[..];
        while !data.is_empty() {
            match stream.write(data) {
                Ok(0) => return Outcome::IoError,
                Ok(k) => data = &data[k..],
                // A client that does not read holds the write until the grace period is over.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if forced.load(Acquire) {
                        return Outcome::Cut;
                    }
                }
                Err(_) => return Outcome::IoError,
            }
        }
        host.stats().echoed(done.body_bytes as usize);
        if done.close {
            return Outcome::IoError;
        }
    }
}
