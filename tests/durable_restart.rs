//! Real sockets, child processes: a peer with a data directory is killed with SIGKILL while
//! it is storing, and restarted from its directory with no bootstrap address. It must rejoin
//! from its saved contacts, still hold what it held, keep its republish list, and republish
//! it: values it published that expired everywhere while it was down come back.
//!
//! The child is this test binary run again (`child_peer`, ignored unless PEER_CHILD_DIR is
//! set); it reports on stdout in lines starting with `CHILD `.

use peer::{Id, Node, Options};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The child's values live this long after its last store (seconds), and it republishes
/// every REPUBLISH_S: short, so the test sees expiry and republish happen.
const CHILD_EXPIRE_S: u32 = 4;
/// Values the child stores at most (it is killed long before).
const CHILD_SETS: usize = 1000;
const REPUBLISH_S: u32 = 1;

fn child_value(i: usize) -> Vec<u8> {
    format!("value {i} published by the child").into_bytes()
}

/// The child: open the directory, report, optionally connect and publish, report each set.
#[test]
#[ignore = "run by durable_restart as a child process"]
fn child_peer() {
    let Ok(dir) = std::env::var("PEER_CHILD_DIR") else { return };
    let boot: Option<u16> = std::env::var("PEER_CHILD_BOOT").ok().and_then(|p| p.parse().ok());
    let sets: usize = std::env::var("PEER_CHILD_SETS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    let opts = Options {
        data_dir: Some(dir.into()),
        expire_s: CHILD_EXPIRE_S,
        republish_s: REPUBLISH_S,
        ..Options::default()
    };
    let node = Node::with_options(None, LOOPBACK, 0, &opts).expect("child opens its directory");
    let s = node.stats().unwrap();
    println!("CHILD ready {} {} {} {}", node.uid(), s.contacts, s.values, s.published);
    if let Some(port) = boot {
        node.connect(LOOPBACK, port).expect("child connects");
        node.bootstrap().expect("child bootstraps");
    }
    // Paced, so the parent can kill it mid-stream with a republish list of a known size.
    for i in 0..sets {
        node.set(&child_value(i)).expect("child set");
        let s = node.stats().unwrap();
        println!("CHILD set {i} {} {}", s.values, s.published);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Idle, serving, until killed; bounded so a lost parent cannot leave it running.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        let s = node.stats().unwrap();
        println!("CHILD stats {} {} {} {}", s.contacts, s.values, s.published, s.republished);
    }
}

struct Kid {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Kid {
    fn spawn(dir: &str, boot: Option<u16>, sets: usize) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "child_peer", "--ignored", "--nocapture", "--test-threads", "1"])
            .env("PEER_CHILD_DIR", dir)
            .env("PEER_CHILD_SETS", sets.to_string())
            .stdout(Stdio::piped());
        if let Some(p) = boot {
            cmd.env("PEER_CHILD_BOOT", p.to_string());
        }
        let mut child = cmd.spawn().expect("spawn the child");
        let out = BufReader::new(child.stdout.take().unwrap());
        Kid { child, out }
    }

    /// The next `CHILD ` line's words, skipping the test harness's own output.
    fn line(&mut self) -> Vec<String> {
        let mut buf = String::new();
        for _ in 0..10_000 {
            buf.clear();
            if self.out.read_line(&mut buf).expect("child stdout") == 0 {
                panic!("the child exited early");
            }
            // libtest prints `test child_peer ... ` ahead of the test's first line.
            if let Some(at) = buf.find("CHILD ") {
                return buf[at + 6..].split_whitespace().map(str::to_string).collect();
            }
        }
        panic!("no CHILD line");
    }

    /// SIGKILL, then the `set` acknowledgements it wrote that were not read yet: the last
    /// is the last set that returned ok before the kill.
    fn kill(mut self) -> Option<usize> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        let mut last = None;
        let mut buf = String::new();
        while self.out.read_line(&mut buf).unwrap_or(0) > 0 {
            if let Some(at) = buf.find("CHILD set ") {
                last = buf[at + 10..].split_whitespace().next().map(num);
            }
            buf.clear();
        }
        last
    }
}

fn num(w: &str) -> usize {
    w.parse().expect("a number")
}

#[test]
fn killed_peer_restarts_from_its_directory() {
    let dir = std::env::temp_dir().join(format!("peer-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().unwrap().to_string();
    // Eight in-process peers (values they hold live an hour: only the child's expire).
    let opts = Options { republish_s: REPUBLISH_S, ..Options::default() };
    let mut rng = rand::thread_rng();
    let nodes: Vec<Node> =
        (0..8).map(|_| Node::with_options(Some(Id::random(&mut rng)), LOOPBACK, 0, &opts).unwrap()).collect();
    for n in &nodes[1..] {
        n.connect(LOOPBACK, nodes[0].port()).unwrap();
        n.bootstrap().unwrap();
    }

    // Run 1: join, then publish; SIGKILL while it is still storing.
    let mut kid = Kid::spawn(&dir_s, Some(nodes[0].port()), CHILD_SETS);
    let ready = kid.line();
    assert_eq!(ready[0], "ready");
    let uid = ready[1].clone();
    assert_eq!(num(&ready[4]), 0, "a fresh directory republishes nothing");
    // The in-process peers store values too, some of which the child holds.
    for i in 0..40 {
        nodes[i % 8].set(format!("value {i} of the network").as_bytes()).unwrap();
    }
    let mut acked = 0;
    while acked < 30 {
        let l = kid.line();
        if l[0] == "set" {
            acked = num(&l[1]) + 1;
        }
    }
    // What it holds at least 1.2 s before the kill is on disk (the flush window is 1 s).
    let held_before = num(&kid.line()[2]);
    std::thread::sleep(Duration::from_millis(1200));
    // Mid-stream: it was storing every 20 ms.
    acked = kid.kill().map_or(acked, |last| last + 1);
    println!("run 1: {acked} sets acknowledged, {held_before} values held, then SIGKILL");

    // Run 2: no bootstrap address. Same uid; what it held and its republish list are back.
    let mut kid = Kid::spawn(&dir_s, None, 0);
    let ready = kid.line();
    assert_eq!(ready[1], uid, "the uid comes from the directory");
    let (contacts, held, published) = (num(&ready[2]), num(&ready[3]), num(&ready[4]));
    println!("run 2 at start: {contacts} contacts, {held} values held, {published} published");
    assert!(contacts >= 7, "rejoins from its saved contacts ({contacts})");
    // Everything it held 1.2 s before the kill was on disk; a few of those copies (they live
    // 4 s, refreshed every second) may have expired by the restart.
    assert!(held_before > 0 && held * 10 >= held_before * 9, "still holds what it held ({held} of {held_before})");
    assert!(published >= acked, "every acknowledged set is republished ({published} < {acked})");
    // It serves from its saved contacts: the network reaches what it republishes.
    let first = Id::hash(&child_value(0));
    assert_eq!(nodes[3].get(&first).unwrap(), Some(child_value(0)));
    kid.kill();

    // Down for longer than its values live: they expire at every holder...
    std::thread::sleep(Duration::from_secs(CHILD_EXPIRE_S as u64 + 2));
    let gone = (0..acked).filter(|&i| nodes[5].get(&Id::hash(&child_value(i))).unwrap().is_none()).count();
    assert_eq!(gone, acked, "values of a dead publisher expire");
    // ... and come back when it restarts and republishes (spread over one interval).
    let mut kid = Kid::spawn(&dir_s, None, 0);
    kid.line();
    let t = Instant::now();
    let mut back = 0;
    while t.elapsed() < Duration::from_secs(10) {
        back = (0..acked).filter(|&i| nodes[6].get(&Id::hash(&child_value(i))).unwrap().is_some()).count();
        if back == acked {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("run 3: {back}/{acked} values republished after {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(back, acked, "republishes what it published after a restart");
    kid.kill();
    drop(nodes);
    std::fs::remove_dir_all(&dir).unwrap();
}
