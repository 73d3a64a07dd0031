//! W1 over several processes: the parent spawns P children of this same program
//! (`peer-bench child`), each hosting its share of the peers on its own loopback address
//! 127.0.0.x (x = 1..=P), and drives them over stdin/stdout with one line per command and
//! one line per reply. Latencies are measured inside the child, around the API call, so the
//! pipe between parent and child costs nothing in the figures.
//!
//! Churn is abrupt here: one whole child is SIGKILLed (its sockets die with it), and a few
//! more peers are closed in the survivors, 30% in all.
//!
//! Protocol (parent -> child / child -> parent):
//! `boot <ip> <port> <skip-first 0|1>` -> `ok <failed>`;
//! `set <i> <hex value>` -> `ok <us> <hex key>`; `ref <i> <hex key>` -> `ok <us> <hex value>` | `none <us>`;
//! `nsset <i> <secret> <public> <key> <value>` -> `ok <us>`; `nsref <i> <public> <key>` -> `ok <us> <value>` | `none <us>`;
//! `close <i>` -> `ok`; `stats` -> `ok <rss> <hwm> <baseline> <peak fds> <connections> <requests sent>`; `quit`.
//! Failures answer `err <us> <message>`. A child exits when its stdin closes, and is killed
//! when the parent dies (PR_SET_PDEATHSIG), so it never outlives the parent.

use crate::w1::{Driver, Mem, Timed};
use crate::{hex, unhex, unhex32};
use peer::consts::DEFAULT_REPLICATION;
use peer::{Id, Node};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Opts {
    /// Peers, over all processes
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub peers: usize,
    /// Child processes, each on its own 127.0.0.x (2..=250)
    #[arg(long, default_value_t = 4, value_name = "P")]
    pub procs: usize,
    /// Seed of every random choice
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 1000, value_name = "B")]
    pub value_size: usize,
}

pub fn main(o: &Opts) -> Result<(), String> {
    let (n, procs, seed, vsize) = (o.peers, o.procs, o.seed, o.value_size);
    if !(2..=250).contains(&procs) || n < 4 * procs {
        return Err("need 2..=250 processes and at least 4 peers per process".into());
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let t = Instant::now();
    let mut d = MultiDriver::spawn(n, procs, seed)?;
    let started = t.elapsed();
    println!("W1, {n} peers in {procs} processes, seed {seed}, values of {vsize} bytes; {}", crate::machine());
    crate::w1::run(&mut d, &mut rng, vsize, started).map(drop)
}

struct Kid {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    ip: Ipv4Addr,
    first_port: u16,
    alive: bool,
}

/// The children; dropping it kills and reaps every one still running (also on panic).
struct Kids(Vec<Kid>);

impl Drop for Kids {
    fn drop(&mut self) {
        for k in &mut self.0 {
            let _ = k.child.kill();
            let _ = k.child.wait();
        }
    }
}

impl Kid {
    fn send(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.stdin, "{line}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("child {}: cannot write: {e}", self.ip))
    }

    fn recv(&mut self) -> Result<String, String> {
        let mut s = String::new();
        match self.out.read_line(&mut s) {
            Ok(0) => Err(format!("child {} exited", self.ip)),
            Ok(_) => Ok(s.trim_end().to_string()),
            Err(e) => Err(format!("child {}: cannot read: {e}", self.ip)),
        }
    }

    fn ask(&mut self, line: &str) -> Result<String, String> {
        self.send(line)?;
        self.recv()
    }
}

pub struct MultiDriver {
    kids: Kids,
    /// Global peer index -> (child, local index).
    map: Vec<(usize, usize)>,
}

impl MultiDriver {
    fn spawn(n: usize, procs: usize, seed: u64) -> Result<MultiDriver, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut kids = Kids(Vec::new());
        let mut map = Vec::with_capacity(n);
        for k in 0..procs {
            let count = n / procs + usize::from(k < n % procs);
            let ip = Ipv4Addr::new(127, 0, 0, k as u8 + 1);
            let mut child = Command::new(&exe)
                .args([
                    "child",
                    "--ip",
                    &ip.to_string(),
                    "--count",
                    &count.to_string(),
                    "--seed",
                    &(seed ^ (k as u64 + 1) << 32).to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot start child {k}: {e}"))?;
            let stdin = child.stdin.take().expect("piped");
            let out = BufReader::new(child.stdout.take().expect("piped"));
            kids.0.push(Kid { child, stdin, out, ip, first_port: 0, alive: true });
            map.extend((0..count).map(|i| (k, i)));
        }
        for kid in &mut kids.0 {
            let line = kid.recv()?;
            let mut w = line.split(' ');
            match (w.next(), w.next().and_then(|p| p.parse().ok()), w.next().and_then(|p| p.parse::<u64>().ok())) {
                (Some("ready"), Some(port), Some(lim)) => {
                    kid.first_port = port;
                    if lim < 20_000 {
                        eprintln!("  ! child {}: open files limited to {lim}", kid.ip);
                    }
                }
                _ => return Err(format!("child {} did not start: {line}", kid.ip)),
            }
        }
        Ok(MultiDriver { kids, map })
    }

    fn kid(&mut self, i: usize) -> (&mut Kid, usize) {
        let (k, l) = self.map[i];
        (&mut self.kids.0[k], l)
    }
}

/// Split `ok <us> rest...` / `none <us>` / `err <us> msg` into (latency, status, rest).
fn reply(line: &str) -> Result<(Duration, &str, &str), String> {
    let mut w = line.splitn(3, ' ');
    let status = w.next().unwrap_or("");
    let us: u64 = w.next().and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad reply `{line}`"))?;
    Ok((Duration::from_micros(us), status, w.next().unwrap_or("")))
}

fn timed<T>(line: Result<String, String>, f: impl FnOnce(&str, &str) -> Result<T, String>) -> Timed<T> {
    match line.and_then(|l| reply(&l).map(|(d, s, r)| (d, s.to_string(), r.to_string()))) {
        Ok((d, s, rest)) if s == "err" => (d, Err(rest)),
        Ok((d, s, rest)) => (d, f(&s, &rest)),
        Err(e) => (Duration::ZERO, Err(e)),
    }
}

impl Driver for MultiDriver {
    fn len(&self) -> usize {
        self.map.len()
    }

    fn describe(&self) -> String {
        let k = &self.kids.0;
        format!(
            "{} processes on 127.0.0.1..={}, SIGKILL of one process + close for churn",
            k.len(),
            k.last().map_or(Ipv4Addr::LOCALHOST, |k| k.ip)
        )
    }

    fn bootstrap(&mut self) -> Result<usize, String> {
        let (ip, port) = (self.kids.0[0].ip, self.kids.0[0].first_port);
        // The first child joins its peers to its peer 0, then the others join theirs at once.
        let mut failed = 0;
        let parse = |l: String| {
            l.strip_prefix("ok ").and_then(|f| f.parse::<usize>().ok()).ok_or(format!("bad boot reply `{l}`"))
        };
        failed += parse(self.kids.0[0].ask(&format!("boot {ip} {port} 1"))?)?;
        for k in &mut self.kids.0[1..] {
            k.send(&format!("boot {ip} {port} 0"))?;
        }
        for k in &mut self.kids.0[1..] {
            failed += parse(k.recv()?)?;
        }
        Ok(failed)
    }

    fn set(&mut self, i: usize, value: &[u8]) -> Timed<Id> {
        let (k, l) = self.kid(i);
        timed(k.ask(&format!("set {l} {}", hex(value))), |_, rest| Ok(Id(unhex32(rest)?)))
    }

    fn get(&mut self, i: usize, key: &Id) -> Timed<Option<Vec<u8>>> {
        let (k, l) = self.kid(i);
        timed(
            k.ask(&format!("ref {l} {}", hex(&key.0))),
            |s, rest| {
                if s == "none" {
                    Ok(None)
                } else {
                    unhex(rest).map(Some)
                }
            },
        )
    }

    fn ns_set(
        &mut self,
        i: usize,
        secret: &[u8; 32],
        public: &[u8; 32],
        key: &[u8; 32],
        value: &[u8; 32],
    ) -> Timed<()> {
        let (k, l) = self.kid(i);
        timed(k.ask(&format!("nsset {l} {} {} {} {}", hex(secret), hex(public), hex(key), hex(value))), |_, _| Ok(()))
    }

    fn ns_ref(&mut self, i: usize, public: &[u8; 32], key: &[u8; 32]) -> Timed<Option<[u8; 32]>> {
        let (k, l) = self.kid(i);
        timed(k.ask(&format!("nsref {l} {} {}", hex(public), hex(key))), |s, rest| {
            if s == "none" {
                Ok(None)
            } else {
                unhex32(rest).map(Some)
            }
        })
    }

    fn stop(&mut self, rng: &mut StdRng, share: f64) -> Result<Vec<usize>, String> {
        let want = (self.map.len() as f64 * share).round() as usize;
        let victim = rng.gen_range(0..self.kids.0.len());
        let k = &mut self.kids.0[victim];
        k.child.kill().map_err(|e| format!("cannot kill child {}: {e}", k.ip))?;
        let _ = k.child.wait();
        k.alive = false;
        let mut stopped: Vec<usize> = (0..self.map.len()).filter(|&i| self.map[i].0 == victim).collect();
        let mut rest: Vec<usize> = (0..self.map.len()).filter(|&i| self.map[i].0 != victim).collect();
        rest.shuffle(rng);
        for &i in rest.iter().take(want.saturating_sub(stopped.len())) {
            let (k, l) = self.kid(i);
            k.ask(&format!("close {l}"))?;
            stopped.push(i);
        }
        Ok(stopped)
    }

    fn memory(&mut self) -> Result<Mem, String> {
        let mut m = Mem::default();
        for k in self.kids.0.iter_mut().filter(|k| k.alive) {
            let line = k.ask("stats")?;
            let v: Vec<u64> = line.split(' ').skip(1).filter_map(|x| x.parse().ok()).collect();
            let [rss, hwm, base, fds, conns, reqs, hands] = v[..] else {
                return Err(format!("bad stats reply `{line}`"));
            };
            m.rss += rss;
            m.hwm += hwm;
            m.baseline += base;
            m.fds = m.fds.max(fds as usize);
            m.conns += conns as usize;
            m.requests += reqs;
            m.handshakes += hands;
        }
        Ok(m)
    }

    fn finish(&mut self) -> Result<Duration, String> {
        for k in self.kids.0.iter_mut().filter(|k| k.alive) {
            let _ = k.send("quit");
            let _ = k.child.wait();
            k.alive = false;
        }
        Ok(crate::cpu_time(libc::RUSAGE_CHILDREN) + crate::cpu_time(libc::RUSAGE_SELF))
    }
}

// ---- the child ----------------------------------------------------------------------------

/// Set by the parent (`MultiDriver::spawn`), not by hand.
#[derive(clap::Args)]
pub struct ChildOpts {
    /// The loopback address this child's peers listen on
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    pub ip: Ipv4Addr,
    /// Peers in this child
    #[arg(long, default_value_t = 250)]
    pub count: usize,
    /// Seed of the peers' uids
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn child_main(o: &ChildOpts) -> Result<(), String> {
    let (ip, count, seed) = (o.ip, o.count, o.seed);
    // Die with the parent even when it is SIGKILLed mid-command (stdin EOF is only seen
    // between commands).
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let nofile = crate::raise_nofile();
    let fds = crate::FdMonitor::start();
    let baseline = crate::proc_status_bytes("VmRSS");
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes = (0..count)
        .map(|_| {
            Node::new(Id::random(&mut rng), IpAddr::V4(ip), 0, DEFAULT_REPLICATION)
                .map_err(|e| format!("{ip}: cannot start a peer: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    println!("ready {} {nofile}", nodes[0].port());
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() == Some(&"quit") {
            break;
        }
        let answer = command(&nodes, &w, baseline, &fds).unwrap_or_else(|e| format!("err 0 {e}"));
        println!("{}", answer.replace('\n', " "));
    }
    for n in &nodes {
        n.close();
    }
    Ok(())
}

fn command(nodes: &[Node], w: &[&str], baseline: u64, fds: &crate::FdMonitor) -> Result<String, String> {
    let node = |s: &str| s.parse::<usize>().ok().and_then(|i| nodes.get(i)).ok_or(format!("no peer `{s}`"));
    let arg = |i: usize| w.get(i).copied().ok_or(format!("`{}` needs more arguments", w[0]));
    let t = Instant::now();
    let us = |t: Instant| t.elapsed().as_micros();
    match w.first().copied().unwrap_or("") {
        "boot" => {
            let ip: IpAddr = arg(1)?.parse().map_err(|_| "bad ip")?;
            let port: u16 = arg(2)?.parse().map_err(|_| "bad port")?;
            let skip = usize::from(arg(3)? == "1");
            let failed =
                nodes[skip..].iter().filter(|n| n.connect(ip, port).and_then(|_| n.bootstrap()).is_err()).count();
            Ok(format!("ok {failed}"))
        }
        "set" => {
            let (n, v) = (node(arg(1)?)?, unhex(arg(2)?)?);
            let t = Instant::now();
            Ok(match n.set(&v) {
                Ok(k) => format!("ok {} {}", us(t), hex(&k.0)),
                Err(e) => format!("err {} {e}", us(t)),
            })
        }
        "ref" => {
            let (n, k) = (node(arg(1)?)?, Id(unhex32(arg(2)?)?));
            let t = Instant::now();
            Ok(match n.get(&k) {
                Ok(Some(v)) => format!("ok {} {}", us(t), hex(&v)),
                Ok(None) => format!("none {}", us(t)),
                Err(e) => format!("err {} {e}", us(t)),
            })
        }
        "nsset" => {
            let n = node(arg(1)?)?;
            let (s, p, k, v) = (unhex32(arg(2)?)?, unhex32(arg(3)?)?, unhex32(arg(4)?)?, unhex32(arg(5)?)?);
            let t = Instant::now();
            Ok(match n.namespace_set(&s, &p, &k, &v) {
                Ok(_) => format!("ok {}", us(t)),
                Err(e) => format!("err {} {e}", us(t)),
            })
        }
        "nsref" => {
            let (n, p, k) = (node(arg(1)?)?, unhex32(arg(2)?)?, unhex32(arg(3)?)?);
            let t = Instant::now();
            Ok(match n.namespace_ref(&p, &k, None) {
                Ok(Some((v, _))) => format!("ok {} {}", us(t), hex(&v)),
                Ok(None) => format!("none {}", us(t)),
                Err(e) => format!("err {} {e}", us(t)),
            })
        }
        "close" => {
            node(arg(1)?)?.close();
            Ok("ok".into())
        }
        "stats" => {
            let (mut conns, mut reqs, mut hands) = (0, 0, 0);
            for s in nodes.iter().filter_map(|n| n.stats().ok()) {
                conns += s.open_connections;
                reqs += s.requests_sent;
                hands += s.handshakes_dialed;
            }
            Ok(format!(
                "ok {} {} {baseline} {} {conns} {reqs} {hands}",
                crate::proc_status_bytes("VmRSS"),
                crate::proc_status_bytes("VmHWM"),
                fds.peak()
            ))
        }
        other => Err(format!("unknown command `{other}` ({} µs)", us(t))),
    }
}
