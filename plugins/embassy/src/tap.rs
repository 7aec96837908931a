//! The NIC: embassy-net-tuntap's TAP device, wrapped so that connection attempts the stack
//! refuses are counted rather than lost.
//!
//! smoltcp has no accept backlog: a SYN that finds no socket in the listening state is answered
//! with a reset and leaves no trace in any socket. The one place it can be seen is on the wire,
//! so the wrapper looks at every frame the stack sends for that reset. RFC 793 fixes its form:
//! the reply to a segment without ACK (a fresh SYN) is RST|ACK with sequence number zero; every
//! other reset the stack sends (an abort, a reply to a stray segment) carries a sequence number
//! from a live connection's space, zero only by a 2^-32 chance.

use embassy_net::driver::{Capabilities, Driver, HardwareAddress, LinkState};
use embassy_net_tuntap::TunTapDevice;
use runbench_plugin_abi::HostHandle;
use std::cell::Cell;
use std::task::Context;

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const IP_PROTO_TCP: u8 = 6;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// Connection attempts refused because no socket of the pool was listening. Each is also
/// reported to the host as an accept error (see the crate docs).
pub struct Refusals {
    count: Cell<u64>,
    host: HostHandle,
    pool_size: usize,
}

impl Refusals {
    pub fn new(host: HostHandle, pool_size: usize) -> Self {
        Refusals {
            count: Cell::new(0),
            host,
            pool_size,
        }
    }

    pub fn count(&self) -> u64 {
        self.count.get()
    }

    fn record(&self) {
        let n = self.count.get() + 1;
        self.count.set(n);
        self.host.stats().accept_error();
        if n == 1 {
            self.host.warn(&format!(
                "refused a connection: none of the {} sockets of the pool was listening \
                 (smoltcp has no accept backlog); refusals are counted as accept errors",
                self.pool_size
            ));
        }
    }
}

/// True when `frame` is the reset smoltcp sends to refuse a SYN for local port `port`.
pub fn is_refusal(frame: &[u8], port: u16) -> bool {
    let Some(ip) = frame.get(ETHERNET_HEADER..) else {
        return false;
    };
    if frame[12..14] != ETHERTYPE_IPV4 || ip.len() < 20 || ip[9] != IP_PROTO_TCP {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let Some(tcp) = ip.get(ihl..ihl + 20) else {
        return false;
    };
    let src_port = u16::from_be_bytes([tcp[0], tcp[1]]);
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let flags = tcp[13];
    src_port == port && seq == 0 && flags & TCP_RST != 0 && flags & TCP_ACK != 0
}

/// [`TunTapDevice`] plus the refusal count.
pub struct CountingTap {
    inner: TunTapDevice,
    port: u16,
    refusals: &'static Refusals,
}

impl CountingTap {
    pub fn new(inner: TunTapDevice, port: u16, refusals: &'static Refusals) -> Self {
        CountingTap {
            inner,
            port,
            refusals,
        }
    }
}

pub struct TxToken<T> {
    inner: T,
    port: u16,
    refusals: &'static Refusals,
}

impl<T: embassy_net::driver::TxToken> embassy_net::driver::TxToken for TxToken<T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let (port, refusals) = (self.port, self.refusals);
        self.inner.consume(len, |frame| {
            let r = f(frame);
            if is_refusal(frame, port) {
                refusals.record();
            }
            r
        })
    }
}

impl Driver for CountingTap {
    type RxToken<'a>
        = <TunTapDevice as Driver>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<<TunTapDevice as Driver>::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (port, refusals) = (self.port, self.refusals);
        self.inner.receive(cx).map(|(rx, tx)| {
            (
                rx,
                TxToken {
                    inner: tx,
                    port,
                    refusals,
                },
            )
        })
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        let (port, refusals) = (self.port, self.refusals);
        self.inner.transmit(cx).map(|tx| TxToken {
            inner: tx,
            port,
            refusals,
        })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.inner.link_state(cx)
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.inner.hardware_address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 (no options) + TCP frame from `port` with the given seq and flags.
    fn frame(port: u16, seq: u32, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; ETHERNET_HEADER + 20 + 20];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        let ip = &mut f[ETHERNET_HEADER..];
        ip[0] = 0x45;
        ip[9] = IP_PROTO_TCP;
        let tcp = &mut ip[20..];
        tcp[0..2].copy_from_slice(&port.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[13] = flags;
        f
    }

    #[test]
    fn reset_refusing_a_syn_is_recognised() {
        assert!(is_refusal(&frame(7000, 0, TCP_RST | TCP_ACK), 7000));
    }

    #[test]
    fn other_segments_are_not_refusals() {
        // An abort of a live connection: RST|ACK with the connection's sequence number.
        assert!(!is_refusal(&frame(7000, 91_357, TCP_RST | TCP_ACK), 7000));
        // A reply to a stray ACK: RST alone.
        assert!(!is_refusal(&frame(7000, 0, TCP_RST), 7000));
        // A SYN-ACK, and a refusal for some other port.
        assert!(!is_refusal(&frame(7000, 0, 0x12), 7000));
        assert!(!is_refusal(&frame(7001, 0, TCP_RST | TCP_ACK), 7000));
        // Not IPv4/TCP, and truncated frames.
        let mut arp = frame(7000, 0, TCP_RST | TCP_ACK);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!is_refusal(&arp, 7000));
        assert!(!is_refusal(&frame(7000, 0, TCP_RST | TCP_ACK)[..40], 7000));
        assert!(!is_refusal(&[0u8; 10], 7000));
    }
}
