//! Client sockets: bound to a chosen loopback source address before connecting, with
//! IP_BIND_ADDRESS_NO_PORT so the port is picked at connect time per destination (without it,
//! binding tens of thousands of sockets searches the port space for each and takes seconds).

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// A non-blocking socket connecting from `source` to `target` (the connect completes later).
pub fn start_connect(source: IpAddr, target: SocketAddr) -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    super::arrival::enable(&socket)?;
    if source.is_ipv4() && target.is_ipv4() {
        crate::os::sys::set_flag(&socket, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}
