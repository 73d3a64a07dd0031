//! Blocking TCP sockets bound to a chosen source address before they connect (std cannot
//! bind a socket it connects), so an attacker can sit alone in its own /24 of loopback and
//! honest peers on theirs, as per-address limits see the internet.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Linux: take the source port at connect, not at bind, so thousands of connections from one
/// address to different destinations may share ports (bind alone would reserve one each).
const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `addr` as the C socket address the kernel reads.
fn raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data, all zero is a valid value.
    let mut st: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any socket address.
            let sin = unsafe { &mut *(&mut st as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut st as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

/// A socket bound to `from` (any port) and connected to `to` within `timeout`.
pub(crate) fn connect_from(from: IpAddr, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let family = if from.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain system calls on a descriptor this function owns.
    let fd = unsafe { OwnedFd::from_raw_fd(check(libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))?) };
    let s = fd.as_raw_fd();
    let one: libc::c_int = 1;
    // Best effort: without it (an old kernel) binds still work, with fewer ports.
    let _ = unsafe {
        libc::setsockopt(
            s,
            libc::IPPROTO_IP,
            IP_BIND_ADDRESS_NO_PORT,
            &one as *const _ as *const _,
            size_of::<libc::c_int>() as _,
        )
    };
    let (a, len) = raw(SocketAddr::new(from, 0));
    check(unsafe { libc::bind(s, &a as *const _ as *const libc::sockaddr, len) })?;
    // Non-blocking connect then poll: a listener whose backlog is full would otherwise hold a
    // blocking connect for minutes of SYN retries.
    let flags = check(unsafe { libc::fcntl(s, libc::F_GETFL) })?;
    check(unsafe { libc::fcntl(s, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    let (a, len) = raw(to);
    if unsafe { libc::connect(s, &a as *const _ as *const libc::sockaddr, len) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let mut p = libc::pollfd { fd: s, events: libc::POLLOUT, revents: 0 };
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        if check(unsafe { libc::poll(&mut p, 1, ms) })? == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        let mut err: libc::c_int = 0;
        let mut n = size_of::<libc::c_int>() as libc::socklen_t;
        check(unsafe { libc::getsockopt(s, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut _ as *mut _, &mut n) })?;
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
    }
    check(unsafe { libc::fcntl(s, libc::F_SETFL, flags) })?;
    Ok(TcpStream::from(fd))
}

/// Close `stream` with a reset instead of a FIN (SO_LINGER 0): no TIME_WAIT left behind, so
/// a churn of thousands of connections a second does not run out of ports.
pub(crate) fn reset(stream: TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a plain setsockopt on a descriptor `stream` owns; it closes on drop.
    let _ = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const _,
            size_of::<libc::linger>() as _,
        )
    };
}
