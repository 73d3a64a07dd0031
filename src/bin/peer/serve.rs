//! The long-running commands: `peer node` and `peer testnet`. Both run until SIGINT or
//! SIGTERM, then close their nodes cleanly (a node with `--data` flushes it).

use crate::args::{NodeArgs, TestnetArgs};
use crate::control::{self, Server};
use crate::hex;
use crate::{Fail, Outcome};
use peer::{Id, Node, Options};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst); // async-signal-safe: an atomic store
}

fn catch_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Sleep in short steps until a signal, calling `tick` about every `every`.
fn wait_for_signal(every: Option<Duration>, mut tick: impl FnMut()) {
    let mut next = every.map(|e| Instant::now() + e);
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if let (Some(n), Some(e)) = (next, every) {
            if Instant::now() >= n {
                tick();
                next = Some(n + e);
            }
        }
    }
}

/// Connect to each bootstrap address (logging those that fail) and bootstrap if one answered.
fn join(node: &Node, bootstrap: &[String]) -> usize {
    let mut reached = 0;
    for b in bootstrap {
        let r = b
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_start_matches('[').trim_end_matches(']'), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("not HOST:PORT: {b:?}"))
            .and_then(|(h, p)| node.connect_host(h, p).map_err(|e| e.to_string()));
        match r {
            Ok(()) => reached += 1,
            Err(e) => log::warn!("bootstrap {b}: {e}"),
        }
    }
    if reached > 0 {
        match node.bootstrap() {
            Ok(()) => log::info!("joined through {reached} of {} bootstrap nodes", bootstrap.len()),
            Err(e) => log::warn!("bootstrap: {e}"),
        }
    }
    reached
}

pub fn node(a: NodeArgs) -> Result<Outcome, Fail> {
    catch_signals();
    let control_dir = control::dir(&a.control)?;
    let opts = Options {
        replication: a.replication,
        data_dir: a.data.clone(),
        diversity: a.address_limits.diversity(),
        ..Options::default()
    };
    let node = Arc::new(Node::with_options(None, a.listen.ip(), a.listen.port(), &opts).map_err(|e| e.to_string())?);
    let server = Server::start(&control_dir, node.clone())?;
    println!("uid {}", node.uid());
    println!("address {}", node.addr());
    println!("control {}", server.path().display());
    let _ = std::io::stdout().flush();
    if !a.bootstrap.is_empty() && join(&node, &a.bootstrap) == 0 {
        log::warn!("no bootstrap node answered; waiting for others to join this one");
    }
    log::info!("node {} listening on {}", node.uid(), node.addr());
    wait_for_signal(a.stats_every.map(Duration::from_secs), || match control::stats_json(&node) {
        Ok(v) if a.json => println!("{v}"),
        Ok(v) => print!("{}", control::stats_text(&v)),
        Err(e) => log::warn!("stats: {e}"),
    });
    log::info!("stopping");
    drop(server);
    node.close();
    log::info!("stopped");
    Ok(Outcome::Done)
}

pub fn testnet(a: TestnetArgs) -> Result<Outcome, Fail> {
    if !(1..=1000).contains(&a.n) {
        return Err(format!("N must be in 1..1000, got {}", a.n));
    }
    catch_signals();
    let control_dir = control::dir(&a.control)?;
    let mut nodes = Vec::with_capacity(a.n);
    for i in 0..a.n {
        let port = if a.base_port == 0 { 0 } else { a.base_port.checked_add(i as u16).ok_or("ports past 65535")? };
        let n = Node::new(Id::random(&mut rand::rngs::OsRng), a.ip, port, 5)
            .map_err(|e| format!("node {i} on {}:{port}: {e}", a.ip))?;
        nodes.push(Arc::new(n));
    }
    let first = nodes[0].addr();
    let bar = std::io::stdout().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(a.n as u64);
        b.set_style(indicatif::ProgressStyle::with_template("bootstrapping {bar:40} {pos}/{len}").unwrap());
        b
    });
    for n in &nodes[1..] {
        n.connect(first.ip(), first.port()).map_err(|e| format!("connecting to {first}: {e}"))?;
    }
    for n in &nodes {
        if let Err(e) = n.bootstrap() {
            log::warn!("{}: bootstrap: {e}", n.addr());
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let servers: Vec<Server> =
        nodes.iter().map(|n| Server::start(&control_dir, n.clone())).collect::<Result<_, _>>()?;
    println!("bootstrap {first}");
    println!("nodes {} on {}", a.n, a.ip);
    println!("control {}", control_dir.display());
    for n in &nodes {
        println!("node {} {}", n.addr(), hex::encode(&n.uid().0));
    }
    let _ = std::io::stdout().flush();
    wait_for_signal(None, || {});
    log::info!("stopping {} nodes", a.n);
    drop(servers);
    for n in &nodes {
        n.close();
    }
    Ok(Outcome::Done)
}
