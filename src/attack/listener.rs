//! The hostile accepting side: a listener that completes the responder's handshake (XX, or
//! IK when an honest peer already knows its key) exactly as PROTOCOL.md §3 says, then answers
//! each request with whatever its behaviour decides, or not at all. Sybils are built on it.
//!
//! One thread accepts; each connection gets a thread of its own (a few dozen at most: one per
//! honest peer that dials). Every thread polls the stop flag between socket timeouts, and
//! `stop` joins them all.

use super::session::{self, noise, public_key, Records, Session, MAX_RECORD, TAG_IK, TAG_XX};
use crate::wire::{decode_request, encode_reply, Reply, Request};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a blocked thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// A handshake not finished within this long is dropped (the protocol's 5 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Stack of a connection thread: records and frames live on the heap.
const STACK: usize = 256 * 1024;

/// What a listener does with one request from `from`: a reply, or silence.
pub type Behaviour = Arc<dyn Fn(&Request, SocketAddr) -> Option<Reply> + Send + Sync>;

/// Counts of what a listener saw.
#[derive(Default, Debug)]
pub struct ListenerStats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub replies: AtomicU64,
}

/// A running hostile listener.
pub struct Listener {
    addr: SocketAddr,
    public: [u8; 32],
    stop: Arc<AtomicBool>,
    stats: Arc<ListenerStats>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Listener {
    /// Listen on `bind` with the Noise static key `secret`, answering with `behaviour`.
    pub fn spawn(bind: SocketAddr, secret: [u8; 32], behaviour: Behaviour) -> io::Result<Listener> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ListenerStats::default());
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (s, st, cs) = (stop.clone(), stats.clone(), conns.clone());
        let accept =
            std::thread::Builder::new().name(format!("hostile-{addr}")).stack_size(STACK).spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, from)) => {
                            st.connections.fetch_add(1, Ordering::Relaxed);
                            let (s, st, b) = (s.clone(), st.clone(), behaviour.clone());
                            let t = std::thread::Builder::new()
                                .stack_size(STACK)
                                .spawn(move || serve(stream, from, secret, &b, &s, &st));
                            // No thread left: the connection is dropped, as an overloaded peer would.
                            if let Ok(t) = t {
                                cs.lock().unwrap_or_else(|e| e.into_inner()).push(t);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(TICK / 5),
                        Err(_) => std::thread::sleep(TICK),
                    }
                }
            })?;
        Ok(Listener { addr, public: public_key(&secret), stop, stats, accept: Some(accept), conns })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its static public key (what honest peers record with its contact).
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    /// Close the listener and every connection; join their threads.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for t in conns {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One accepted connection: handshake, then requests answered in order until the stop flag,
/// an error or the peer's close. Errors only end the connection.
fn serve(stream: TcpStream, from: SocketAddr, secret: [u8; 32], b: &Behaviour, stop: &AtomicBool, st: &ListenerStats) {
    let _ = (|| -> io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let mut s = accept(Records::new(stream), &secret)?;
        s.set_timeouts(Some(TICK), Some(HANDSHAKE_TIMEOUT))?;
        while !stop.load(Ordering::Relaxed) {
            let body = match s.read_frame() {
                Ok(b) => b,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(e),
            };
            st.requests.fetch_add(1, Ordering::Relaxed);
            let req = decode_request(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if let Some(reply) = b(&req, from) {
                let mut text = Vec::new();
                encode_reply(&reply, &mut text);
                s.send_frames(&[text])?;
                st.replies.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    })();
}

/// The responder's handshake. XX: `<- e`, `-> e, ee, s, es`, `<- s, se` + payload; IK:
/// `<- e, es, s, ss` + payload, `-> e, ee, se`. The payload (the dialer's first requests)
/// starts the session's stream.
fn accept(mut records: Records, secret: &[u8; 32]) -> io::Result<Session> {
    let first = records.read()?;
    let (&tag, msg) = first.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty record"))?;
    if tag != TAG_XX && tag != TAG_IK {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "unknown handshake pattern"));
    }
    let mut hs = session::handshake(tag, secret, false)?;
    let mut payload = vec![0u8; MAX_RECORD];
    let mut n = hs.read_message(msg, &mut payload).map_err(noise)?;
    let mut buf = [0u8; MAX_RECORD];
    let m = hs.write_message(&[], &mut buf).map_err(noise)?;
    records.write(&buf[..m])?;
    if tag == TAG_XX {
        let third = records.read()?;
        n = hs.read_message(&third, &mut payload).map_err(noise)?;
    }
    Session::open(records, hs, &payload[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Hostile;
    use crate::id::Id;

    /// The hostile client and listener talk: XX both ways, a reply chosen by the behaviour,
    /// silence when it says so.
    #[test]
    fn client_and_listener_talk() {
        let b: Behaviour = Arc::new(|r, _| match r {
            Request::Peers { .. } => Some(Reply::Bool(true)),
            _ => None,
        });
        let l = Listener::spawn("127.0.9.200:0".parse().unwrap(), [5; 32], b).unwrap();
        let mut h = Hostile::connect_timeout(l.addr(), None, [6; 32], Duration::from_millis(500)).unwrap();
        assert_eq!(h.remote_static(), l.public());
        assert_eq!(h.request(&Request::Peers { key: Id([1; 32]) }).unwrap(), Reply::Bool(true));
        let e = h.request(&Request::Ref { key: Id([1; 32]) }).unwrap_err();
        assert!(matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{e}");
        assert_eq!(l.stats().requests.load(Ordering::Relaxed), 2);
        l.stop();
    }
}
