//! Dialing: the outgoing socket (the handshake starts once it connects, `Conn::hello`).
//! Outgoing sockets are bound to the listening address when that is a specific IP (issue
//! 13): a peer listening on 127.0.1.10 must dial from 127.0.1.10, or every peer it greets
//! records it at the wrong address (and per-address limits could not tell peers apart), as
//! BitTorrent clients bind to their chosen interface. An unspecified listen address (0.0.0.0,
//! ::) leaves the choice to the kernel, as does a destination the bound address could not
//! reach (another address family, or loopback on one side only).

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// The source address to bind for a connection from a listener on `local` to `to`, if any.
pub(super) fn source_for(local: IpAddr, to: SocketAddr) -> Option<IpAddr> {
    let same_family = local.is_ipv4() == to.is_ipv4();
    let reachable = local.is_loopback() == to.ip().is_loopback();
    (!local.is_unspecified() && same_family && reachable).then_some(local)
}

/// Start a connection to `to` (from `local` when `source_for` says so), registered with
/// `registry` under `token`. The handshake's first message is written only once the connect
/// completes (`Conn::hello`): a refused address costs no cryptography, and every request
/// queued meanwhile (the `iam` introduction and the request behind it) rides in IK message 1.
pub(super) fn open(registry: &Registry, token: Token, local: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let mut sock = connect(local, to)?;
    sock.set_nodelay(true)?;
    registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok(sock)
}

/// Start a non-blocking connect to `to`, from `local` when `source_for` says so.
fn connect(local: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let Some(from) = source_for(local, to) else {
        return TcpStream::connect(to);
    };
    // Created close-on-exec by socket2.
    let sock = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    no_port_at_bind(&sock);
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(SocketAddr::new(from, 0)))?;
    match sock.connect(&SockAddr::from(to)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

/// Let `connect`, not `bind`, choose the local port, so that ports are shared across
/// destinations as with an unbound socket: bound at `bind`, every connection of the address
/// would need its own port, and a process of hundreds of peers on one address would run out
/// of them. Best effort (Linux 4.2 on); without it, connecting still works.
#[cfg(target_os = "linux")]
fn no_port_at_bind(sock: &Socket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads an int of the given size from a live local.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn no_port_at_bind(_: &Socket) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_only_a_specific_address_that_can_reach() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source_for(ip("127.0.1.10"), to), Some(ip("127.0.1.10")));
        assert_eq!(source_for(ip("0.0.0.0"), to), None);
        assert_eq!(source_for(ip("::"), to), None);
        assert_eq!(source_for(ip("::1"), to), None, "another family");
        assert_eq!(source_for(ip("192.0.2.1"), to), None, "loopback on one side only");
        assert_eq!(source_for(ip("192.0.2.1"), "198.51.100.1:9".parse().unwrap()), Some(ip("192.0.2.1")));
    }

    /// The accepting side sees the connection come from the bound address.
    #[test]
    fn connection_comes_from_the_bound_address() {
        let l = std::net::TcpListener::bind("127.0.3.7:0").unwrap();
        let to = l.local_addr().unwrap();
        let _s = connect(ip4(127, 0, 1, 10), to).unwrap();
        let (_, from) = l.accept().unwrap();
        assert_eq!(from.ip(), ip4(127, 0, 1, 10));
        let _s = connect(ip4(0, 0, 0, 0), to).unwrap();
        let (_, from) = l.accept().unwrap();
        assert_eq!(from.ip(), ip4(127, 0, 0, 1), "unbound: the kernel's choice");
    }

    fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::from([a, b, c, d])
    }
}
