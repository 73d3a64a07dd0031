//! `make bench`: libpeer's benchmarks. Every mode prints aligned tables; BENCHMARKS.md keeps
//! the figures with their commands. `peer-bench --help` lists the modes, `peer-bench MODE
//! --help` their options and defaults.
//!
//! ```text
//! peer-bench w1 --peers N [--seed S] [--value-size B] [--api rust|c] [--svg-dir DIR]
//! peer-bench multi [--peers 1000] [--procs 4] [--seed S] [--value-size B]
//! peer-bench concurrent [--peers 300] [--threads 8] [--seconds 10] [--seed S] [--value-size B]
//! peer-bench sim [--peers 10000] [--lookups 1000] [--seed S] [--tables buckets|fill|bootstrap] [--far F] [--near M]
//! peer-bench wan [--peers 10000 100000] [--dead 0.1] [--seed S] [--sets 200] [--refs 500] [--missing 200] [--no-cpu] [--warm] [--transport tcp quic]
//! peer-bench codec [--seconds 1]
//! peer-bench maint [--peers 1000] [--values 10000] [--publishers 100] [--warmup-hours 2] [--hours 3] [--seed S] [--value-size 100] [--republish-s 3600]
//! peer-bench maint-net [--peers 100] [--values 1000] [--publishers 20] [--interval 10] [--windows 3] [--seed S]
//! peer-bench attack KIND|all [--seconds 10] [--seed S] [--rate R] [--count N] [--layout spread|one]
//! peer-bench all [--seed S] [--value-size B] [--big-sim yes|no] [--svg-dir DIR]
//! ```
//!
//! Without a mode, `all`. `all` runs each mode in a child process of its own, so one mode's memory peak or threads
//! never show up in another's figures.

#[path = "peer-bench/attack.rs"]
mod attack;
#[path = "peer-bench/codec.rs"]
mod codec;
#[path = "peer-bench/concurrent.rs"]
mod concurrent;
#[path = "peer-bench/cpucost.rs"]
mod cpucost;
#[path = "peer-bench/drivers.rs"]
mod drivers;
#[path = "peer-bench/maint.rs"]
mod maint;
#[path = "peer-bench/maintnet.rs"]
mod maintnet;
#[path = "peer-bench/multi.rs"]
mod multi;
#[path = "peer-bench/simbench.rs"]
mod simbench;
#[path = "peer-bench/svg.rs"]
mod svg;
#[path = "peer-bench/w1.rs"]
mod w1;
#[path = "peer-bench/wan.rs"]
mod wan;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

/// libpeer's benchmarks: each mode prints aligned tables (BENCHMARKS.md keeps the figures).
#[derive(Parser)]
#[command(
    name = "peer-bench",
    version,
    // Options without a mode are `all`'s (`make bench` with BENCH_ARGS='--seed 2').
    args_conflicts_with_subcommands = true,
    after_help = "Without a mode, `all` with the options above. `peer-bench MODE --help` shows a mode's options."
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    all: AllOpts,
}

#[derive(Subcommand)]
enum Mode {
    /// W1 in one process (Rust API or C ABI); tables, and the latency CDF as SVG
    W1(w1::Opts),
    /// W1 over several processes and 127.0.0.x
    Multi(multi::Opts),
    /// Refs from many threads at once
    Concurrent(concurrent::Opts),
    /// The simulated network (real protocol core, virtual clock) at sizes no machine runs for real
    Sim(simbench::Opts),
    /// The simulated network on a WAN model: internet RTTs, TCP and Noise round trips, dead contacts, CPU
    Wan(wan::Opts),
    /// Maintenance messages and bytes per peer per hour, with and without the optimisation
    Maint(maint::Opts),
    /// Set message encode/decode MB/s
    Codec(codec::Opts),
    /// Maintenance cost on real sockets
    MaintNet(maintnet::Opts),
    /// The attacks of issue 13 against 24 honest peers: honest success, p99 and RSS before/during/after
    Attack(attack::Opts),
    /// Everything at the issue's sizes, each mode in a child process of its own
    All(AllOpts),
    /// One process of `multi`'s peers, driven over stdin/stdout (internal)
    #[command(hide = true)]
    Child(multi::ChildOpts),
}

#[derive(clap::Args)]
struct AllOpts {
    /// Seed of every random choice
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bytes per value (W1, multi, concurrent)
    #[arg(long, default_value_t = 1000, value_name = "B")]
    value_size: usize,
    /// Also simulate 100,000 peers (about 5 GiB of memory; 10.3 GiB on the WAN model with warm tables)
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    big_sim: String,
    /// Where the W1 runs write their latency CDFs (SVG); created if missing
    #[arg(long, default_value = "bench-out", value_name = "DIR")]
    svg_dir: PathBuf,
}

fn main() -> ExitCode {
    // Bad options: clap's message and status 2.
    let cli = Cli::parse();
    let (name, r) = match &cli.mode {
        None => ("all", all(&cli.all)),
        Some(Mode::W1(o)) => ("w1", w1::main(o)),
        Some(Mode::Multi(o)) => ("multi", multi::main(o)),
        Some(Mode::Child(o)) => ("child", multi::child_main(o)),
        Some(Mode::Concurrent(o)) => ("concurrent", concurrent::main(o)),
        Some(Mode::Sim(o)) => ("sim", simbench::main(o)),
        Some(Mode::Wan(o)) => ("wan", wan::main(o)),
        Some(Mode::Maint(o)) => ("maint", maint::main(o)),
        Some(Mode::Codec(o)) => ("codec", codec::main(o)),
        Some(Mode::MaintNet(o)) => ("maint-net", maintnet::main(o)),
        Some(Mode::Attack(o)) => ("attack", attack::main(o)),
        Some(Mode::All(o)) => ("all", all(o)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-bench {name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every mode at the issue's sizes, each in a process of its own.
fn all(o: &AllOpts) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut failed = Vec::new();
    for r in &all_runs(o) {
        let line = r.join(" ");
        println!("\n==== peer-bench {line} ====");
        let status = Command::new(&exe).args(r).status().map_err(|e| format!("cannot run `{line}`: {e}"))?;
        if !status.success() {
            failed.push(format!("`{line}` ({status})"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("these runs failed: {}", failed.join(", ")))
    }
}

/// The argument vectors of `all`'s runs, one per child process.
fn all_runs(o: &AllOpts) -> Vec<Vec<String>> {
    let (seed, vsize) = (o.seed.to_string(), o.value_size.to_string());
    let svg_dir = o.svg_dir.to_string_lossy().into_owned();
    // A run: the mode and its own options, the seed (and value size where the mode has one), `tail`.
    // Argument vectors rather than command lines, so a directory name may hold spaces.
    let run = |head: &[&str], common: bool, tail: &[&str]| {
        let common: &[&str] = if common { &["--seed", &seed, "--value-size", &vsize] } else { &["--seed", &seed] };
        [head, common, tail].concat().into_iter().map(String::from).collect::<Vec<String>>()
    };
    let mut runs = Vec::new();
    for n in ["100", "300"] {
        for api in ["rust", "c"] {
            runs.push(run(&["w1", "--peers", n], true, &["--api", api, "--svg-dir", &svg_dir]));
        }
    }
    runs.push(run(&["multi", "--peers", "1000", "--procs", "4"], true, &[]));
    runs.push(run(&["concurrent", "--peers", "300", "--threads", "8", "--seconds", "10"], true, &[]));
    runs.push(run(&["sim", "--peers", "10000", "--lookups", "1000"], false, &[]));
    // The same network joined for real, message by message (~90 s).
    runs.push(run(&["sim", "--peers", "10000", "--lookups", "1000"], false, &["--tables", "bootstrap"]));
    if o.big_sim == "yes" {
        runs.push(run(&["sim", "--peers", "100000", "--lookups", "1000"], false, &[]));
    }
    // The WAN model (issue 12), as a real network runs: routing contacts connected (a peer's
    // bootstrap proves each over its own connection, kept while it is a contact), and the cold
    // tables beside it; the built-in transport and the QUIC what-if. ~2 minutes at 10,000 peers,
    // ~17 minutes and 10.3 GiB at 100,000.
    let wan = ["--transport", "tcp", "quic"];
    runs.push(run(&["wan", "--peers", "10000", "--warm"], false, &wan));
    runs.push(run(&["wan", "--peers", "10000"], false, &wan));
    if o.big_sim == "yes" {
        runs.push(run(&["wan", "--peers", "100000", "--warm"], false, &wan));
        runs.push(run(&["wan", "--peers", "100000"], false, &wan));
    }
    runs.push(vec!["codec".to_string()]);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("peer-bench").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_run_of_all_parses_and_w1_gets_the_svg_dir() {
        let cli = parse(&["--seed", "7", "--big-sim", "no", "--svg-dir", "some dir"]).unwrap();
        assert!(cli.mode.is_none());
        let runs = all_runs(&cli.all);
        assert_eq!(runs.len(), 4 + 7, "four W1 runs, multi, concurrent, two sims, two WAN runs, codec");
        for r in &runs {
            let args: Vec<&str> = r.iter().map(String::as_str).collect();
            let mode = parse(&args).unwrap_or_else(|e| panic!("{args:?}: {e}")).mode;
            if let Some(Mode::W1(o)) = mode {
                assert_eq!((o.seed, o.svg_dir.to_str()), (7, Some("some dir")));
            }
        }
        assert_eq!(all_runs(&parse(&["all"]).unwrap().all).len(), 4 + 10, "with the big sims by default");
    }

    #[test]
    fn no_mode_is_all_with_its_defaults() {
        let cli = parse(&[]).unwrap();
        assert!(cli.mode.is_none());
        assert_eq!((cli.all.seed, cli.all.value_size, cli.all.big_sim.as_str()), (1, 1000, "yes"));
        assert!(parse(&["--seed", "2", "w1"]).is_err(), "options before a mode are `all`'s only");
    }
}

// ---- figures ------------------------------------------------------------------------------

/// Latency samples of one phase, and how many of its operations succeeded.
#[derive(Default)]
pub struct Phase {
    pub name: String,
    pub ops: usize,
    pub ok: usize,
    pub lat: Vec<Duration>,
    /// Requests sent by all peers together while the phase ran (each peer's counter).
    pub requests: Option<u64>,
    /// Connections dialed (handshakes begun) by all peers together while the phase ran.
    pub handshakes: Option<u64>,
}

impl Phase {
    pub fn new(name: &str) -> Phase {
        Phase { name: name.to_string(), ..Phase::default() }
    }

    pub fn add(&mut self, d: Duration, ok: bool) {
        self.ops += 1;
        self.ok += ok as usize;
        self.lat.push(d);
    }

    /// Nearest-rank percentile (p in 0..=1) of every sample, failed operations included.
    pub fn pct(&self, p: f64) -> Duration {
        percentile(&self.lat, p)
    }

    pub fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.ops.to_string(),
            self.ok.to_string(),
            format!("{:.1}%", 100.0 * self.ok as f64 / self.ops.max(1) as f64),
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
            self.requests.map_or("-".into(), |r| format!("{:.1}", r as f64 / self.ops.max(1) as f64)),
            self.handshakes.map_or("-".into(), |r| format!("{:.2}", r as f64 / self.ops.max(1) as f64)),
        ]
    }
}

pub const PHASE_HEADER: [&str; 10] =
    ["phase", "ops", "ok", "ok %", "p50 ms", "p90 ms", "p99 ms", "max ms", "requests/op", "handshakes/op"];

pub fn percentile(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

pub fn pct_u64(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

pub fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

/// Print rows under a header, columns aligned (first column left, the rest right).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                s += &format!("{c:<width$}", width = w[0]);
            } else {
                s += &format!("  {c:>width$}", width = w[i]);
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    println!("{}", "-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1)));
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
}

/// Two-column "what: figure" table.
pub fn facts(rows: &[(&str, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
}

// ---- the process --------------------------------------------------------------------------

/// A field of /proc/self/status in bytes (VmRSS, VmHWM: current and peak resident memory).
/// The file stays open from the first call on, so the figure is still readable when the
/// peers have used up every file descriptor (which is itself worth measuring).
pub fn proc_status_bytes(field: &str) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    use std::sync::{Mutex, OnceLock};
    static STATUS: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let Some(f) = STATUS.get_or_init(|| std::fs::File::open("/proc/self/status").ok().map(Mutex::new)) else {
        return 0;
    };
    let mut s = String::new();
    {
        let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
        if f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut s)).is_err() {
            return 0;
        }
    }
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            return kb * 1024;
        }
    }
    0
}

/// Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs), so a peak measured
/// later belongs to what ran since.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// User + system CPU time of `who` (RUSAGE_SELF or RUSAGE_CHILDREN).
pub fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage writes one struct rusage into the zeroed value we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Open file descriptors of this process: probed one by one up to the limit, since listing
/// /proc/self/fd needs a descriptor of its own, and none may be left.
pub fn open_fds() -> usize {
    // SAFETY: getrlimit writes one struct we own; F_GETFD only asks whether fd is open.
    let limit = unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        r.rlim_cur.min(1 << 20) as i32
    };
    (0..limit).filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1).count()
}

/// Samples `open_fds` every 250 ms on a thread of its own and keeps the peak (descriptors
/// come and go between the moments a run looks). Stopped and joined on drop.
pub struct FdMonitor {
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FdMonitor {
    pub fn start() -> FdMonitor {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let peak = Arc::new(AtomicUsize::new(open_fds()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("fd-monitor".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    p.fetch_max(open_fds(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
            .ok();
        FdMonitor { peak, stop, thread }
    }

    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FdMonitor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Raise the soft open-files limit to the hard one (peers hold one fd per connection).
pub fn raise_nofile() -> u64 {
    // SAFETY: get/setrlimit read and write one struct rlimit we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur as u64
    }
}

pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s += &format!("{x:02x}");
    }
    s
}

pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd-length hex ({} chars)", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex at {i}")))
        .collect()
}

pub fn unhex32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?.try_into().map_err(|_| "expected 32 bytes of hex".to_string())
}

/// The machine, for the record: cores, CPU model, memory.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!("{cores} cores, {model}, {:.1} GiB RAM", mem_kb as f64 / (1024.0 * 1024.0))
}
