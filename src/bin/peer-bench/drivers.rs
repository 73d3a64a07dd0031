//! The in-process drivers of W1: N peers in this process, reached through the Rust API
//! (`peer::Node`) or through the C ABI (the `extern "C"` functions of `peer::ffi`, called
//! from Rust, so the boundary's checks, copies and handle lookups are in the figures).

use crate::w1::{note, Driver, Mem, Timed};
use peer::consts::DEFAULT_REPLICATION;
use peer::ffi;
use peer::{Id, Node};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Random uids for n peers (seeded, so runs pick the same network layout).
fn uids(n: usize, rng: &mut StdRng) -> Vec<Id> {
    (0..n).map(|_| Id::random(rng)).collect()
}

fn churn_pick(rng: &mut StdRng, n: usize, share: f64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(rng);
    all.truncate((n as f64 * share).round() as usize);
    all
}

fn local_memory(baseline: u64, fds: &crate::FdMonitor) -> Mem {
    Mem {
        rss: crate::proc_status_bytes("VmRSS"),
        hwm: crate::proc_status_bytes("VmHWM"),
        baseline,
        fds: fds.peak(),
        conns: 0,
        requests: 0,
        handshakes: 0,
    }
}

// ---- the Rust API -------------------------------------------------------------------------

pub struct RustDriver {
    pub nodes: Vec<Node>,
    baseline: u64,
    fds: crate::FdMonitor,
}

impl RustDriver {
    pub fn new(n: usize, rng: &mut StdRng, baseline: u64) -> Result<RustDriver, String> {
        let nodes = uids(n, rng)
            .into_iter()
            .map(|uid| {
                Node::new(uid, LOCALHOST, 0, DEFAULT_REPLICATION).map_err(|e| format!("cannot start a peer: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RustDriver { nodes, baseline, fds: crate::FdMonitor::start() })
    }
}

fn timed<T>(f: impl FnOnce() -> peer::Result<T>) -> Timed<T> {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r.map_err(|e| e.to_string()))
}

impl Driver for RustDriver {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn describe(&self) -> String {
        "one process, Rust API, 127.0.0.1".into()
    }

    fn bootstrap(&mut self) -> Result<usize, String> {
        let port = self.nodes[0].port();
        let mut failed = 0;
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            if let Err(e) = n.connect(LOCALHOST, port).and_then(|_| n.bootstrap()) {
                note(&format!("bootstrap of peer {i}: {e}"));
                failed += 1;
            }
        }
        Ok(failed)
    }

    fn set(&mut self, i: usize, value: &[u8]) -> Timed<Id> {
        timed(|| self.nodes[i].set(value))
    }

    fn get(&mut self, i: usize, key: &Id) -> Timed<Option<Vec<u8>>> {
        timed(|| self.nodes[i].get(key))
    }

    fn ns_set(
        &mut self,
        i: usize,
        secret: &[u8; 32],
        public: &[u8; 32],
        key: &[u8; 32],
        value: &[u8; 32],
    ) -> Timed<()> {
        timed(|| self.nodes[i].namespace_set(secret, public, key, value).map(|_| ()))
    }

    fn ns_ref(&mut self, i: usize, public: &[u8; 32], key: &[u8; 32]) -> Timed<Option<[u8; 32]>> {
        timed(|| self.nodes[i].namespace_ref(public, key, None).map(|r| r.map(|(v, _)| v)))
    }

    fn stop(&mut self, rng: &mut StdRng, share: f64) -> Result<Vec<usize>, String> {
        let pick = churn_pick(rng, self.nodes.len(), share);
        for &i in &pick {
            self.nodes[i].close();
        }
        Ok(pick)
    }

    fn memory(&mut self) -> Result<Mem, String> {
        let mut m = local_memory(self.baseline, &self.fds);
        for s in self.nodes.iter().filter_map(|n| n.stats().ok()) {
            m.conns += s.open_connections;
            m.requests += s.requests_sent;
            m.handshakes += s.handshakes_dialed;
        }
        Ok(m)
    }

    fn finish(&mut self) -> Result<Duration, String> {
        for n in &self.nodes {
            n.close();
        }
        Ok(crate::cpu_time(libc::RUSAGE_SELF))
    }
}

// ---- the C ABI, called from Rust (so the boundary's checks and copies are counted) ----------

pub struct CDriver {
    peers: Vec<*mut ffi::peer>,
    baseline: u64,
    fds: crate::FdMonitor,
}

fn c_err(status: i32) -> String {
    // SAFETY: both return pointers to NUL-terminated strings that stay valid until this
    // thread's next libpeer call; they are copied at once.
    let (s, last) = unsafe { (CStr::from_ptr(ffi::peer_strerror(status)), CStr::from_ptr(ffi::peer_last_error())) };
    format!("status {status} ({}): {}", s.to_string_lossy(), last.to_string_lossy())
}

impl CDriver {
    pub fn new(n: usize, rng: &mut StdRng, baseline: u64) -> Result<CDriver, String> {
        let ip = CString::new("127.0.0.1").expect("no NUL");
        let mut d = CDriver { peers: Vec::with_capacity(n), baseline, fds: crate::FdMonitor::start() };
        for uid in uids(n, rng) {
            let mut p: *mut ffi::peer = std::ptr::null_mut();
            // SAFETY: uid is 32 readable bytes, ip a C string, out a writable slot.
            let st = unsafe { ffi::peer_new(uid.0.as_ptr(), ip.as_ptr(), 0, DEFAULT_REPLICATION, &mut p) };
            if st != 0 {
                return Err(format!("peer_new: {}", c_err(st)));
            }
            d.peers.push(p);
        }
        Ok(d)
    }
}

impl Drop for CDriver {
    fn drop(&mut self) {
        for p in self.peers.drain(..) {
            ffi::peer_free(p);
        }
    }
}

/// One figure of peer_stats_list by name (0 if absent).
fn c_stat(p: *mut ffi::peer, name: &CStr) -> u64 {
    let mut list = vec![ffi::peer_stat { name: std::ptr::null(), value: 0 }; 1024];
    let mut n = 0usize;
    // SAFETY: p is a live handle, list has room for `len` entries, n is ours.
    if unsafe { ffi::peer_stats_list(p, list.as_mut_ptr(), list.len(), &mut n) } != 0 {
        return 0;
    }
    // SAFETY: the names written are static NUL-terminated strings.
    list[..n.min(list.len())].iter().find(|s| unsafe { CStr::from_ptr(s.name) } == name).map_or(0, |s| s.value)
}

impl Driver for CDriver {
    fn len(&self) -> usize {
        self.peers.len()
    }

    fn describe(&self) -> String {
        "one process, C ABI, 127.0.0.1".into()
    }

    fn bootstrap(&mut self) -> Result<usize, String> {
        let ip = CString::new("127.0.0.1").expect("no NUL");
        let port = ffi::peer_port(self.peers[0]);
        let mut failed = 0;
        for &p in &self.peers[1..] {
            // SAFETY: p is a live handle, ip a C string.
            let mut st = unsafe { ffi::peer_connect(p, ip.as_ptr(), port) };
            if st == 0 {
                st = ffi::peer_bootstrap(p);
            }
            if st != 0 {
                note(&format!("bootstrap: {}", c_err(st)));
                failed += 1;
            }
        }
        Ok(failed)
    }

    fn set(&mut self, i: usize, value: &[u8]) -> Timed<Id> {
        let mut key = [0u8; 32];
        let t = Instant::now();
        // SAFETY: value is len readable bytes, key 32 writable bytes.
        let st = unsafe { ffi::peer_set(self.peers[i], value.as_ptr(), value.len(), key.as_mut_ptr()) };
        let dt = t.elapsed();
        (dt, if st == 0 { Ok(Id(key)) } else { Err(c_err(st)) })
    }

    fn get(&mut self, i: usize, key: &Id) -> Timed<Option<Vec<u8>>> {
        let (mut ptr, mut len): (*mut u8, usize) = (std::ptr::null_mut(), 0);
        let t = Instant::now();
        // SAFETY: key is 32 readable bytes; the out slots are ours.
        let st = unsafe { ffi::peer_ref(self.peers[i], key.0.as_ptr(), &mut ptr, &mut len) };
        let r = match st {
            // SAFETY: on 0, (ptr, len) is a buffer libpeer allocated for us; copied, then freed once.
            0 => unsafe {
                let v = std::slice::from_raw_parts(ptr, len).to_vec();
                ffi::peer_bytes_free(ptr, len);
                Ok(Some(v))
            },
            1 => Ok(None),
            st => Err(c_err(st)),
        };
        (t.elapsed(), r)
    }

    fn ns_set(
        &mut self,
        i: usize,
        secret: &[u8; 32],
        public: &[u8; 32],
        key: &[u8; 32],
        value: &[u8; 32],
    ) -> Timed<()> {
        let mut sig = [0u8; 64];
        let t = Instant::now();
        // SAFETY: four 32-byte inputs, a 64-byte output.
        let st = unsafe {
            ffi::peer_namespace_set(
                self.peers[i],
                secret.as_ptr(),
                public.as_ptr(),
                key.as_ptr(),
                value.as_ptr(),
                sig.as_mut_ptr(),
            )
        };
        (t.elapsed(), if st == 0 { Ok(()) } else { Err(c_err(st)) })
    }

    fn ns_ref(&mut self, i: usize, public: &[u8; 32], key: &[u8; 32]) -> Timed<Option<[u8; 32]>> {
        let mut value = [0u8; 32];
        let t = Instant::now();
        // SAFETY: two 32-byte inputs, a 32-byte output; the signature is not wanted (NULL).
        let st = unsafe {
            ffi::peer_namespace_ref(
                self.peers[i],
                public.as_ptr(),
                key.as_ptr(),
                value.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        let r = match st {
            0 => Ok(Some(value)),
            1 => Ok(None),
            st => Err(c_err(st)),
        };
        (t.elapsed(), r)
    }

    fn stop(&mut self, rng: &mut StdRng, share: f64) -> Result<Vec<usize>, String> {
        let pick = churn_pick(rng, self.peers.len(), share);
        for &i in &pick {
            ffi::peer_free(self.peers[i]);
        }
        Ok(pick)
    }

    fn memory(&mut self) -> Result<Mem, String> {
        let mut m = local_memory(self.baseline, &self.fds);
        for &p in &self.peers {
            let mut s = ffi::peer_stats::default();
            unsafe { ffi::peer_stats_init_sized(&mut s, std::mem::size_of::<ffi::peer_stats>()) };
            // SAFETY: p is a handle (a freed one gives -4), s is ours.
            if unsafe { ffi::peer_stats(p, &mut s) } == 0 {
                m.conns += s.open_connections as usize;
                m.requests += s.requests_sent;
                m.handshakes += c_stat(p, c"handshakes-dialed");
            }
        }
        Ok(m)
    }

    fn finish(&mut self) -> Result<Duration, String> {
        for p in self.peers.drain(..) {
            ffi::peer_free(p);
        }
        Ok(crate::cpu_time(libc::RUSAGE_SELF))
    }
}
