//! The `peer` command end to end on loopback: a testnet and a node as child processes, the
//! one-shot clients against them (values, bags, namespaces, exit statuses, `--json`), stats
//! over the control socket, a clean stop on SIGTERM that keeps the data directory, and the
//! one-line errors.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// A fresh directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("peer-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A long-running `peer` child whose stdout lines arrive on a channel; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child =
            Command::new(PEER).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start peer");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, reader: Some(reader) }
    }

    /// The value after `word ` on the first line starting with it (bounded wait: 60 s).
    fn field(&self, word: &str) -> String {
        let prefix = format!("{word} ");
        loop {
            let l = self.lines.recv_timeout(Duration::from_secs(60)).expect("a line from peer");
            if let Some(rest) = l.strip_prefix(&prefix) {
                return rest.to_string();
            }
        }
    }

    /// SIGTERM, then the exit status (bounded: 20 s, then SIGKILL and a failure).
    fn terminate(mut self) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..200 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("peer did not stop within 20 s of SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(PEER).args(args).output().expect("run peer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit status 2 and exactly one line on stderr, which says `what`.
fn assert_error(o: &Output, what: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("peer: error: ") && err.contains(what), "{err}");
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)))
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn clients_against_a_testnet() {
    let tmp = TempDir::new("testnet");
    let ctl = tmp.0.join("ctl");
    let ctl = ctl.to_str().unwrap();
    let net = Running::start(&["testnet", "8", "--control-dir", ctl]);
    let b = net.field("bootstrap");
    let b = b.as_str();

    // Values: set prints the key; ref finds it (0), a missing key is 1, JSON parses.
    let file = write(&tmp.0, "hello.txt", b"hello from the shell\n");
    let o = run(&["set", "-b", b, &file]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let key = text(&o.stdout).trim().to_string();
    assert_eq!(key.len(), 64);
    let o = run(&["ref", "-b", b, &key]);
    assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b"hello from the shell\n"[..]));
    let copy = tmp.0.join("copy.txt");
    let o = run(&["ref", "-b", b, &key, "-o", copy.to_str().unwrap(), "--json"]);
    let v = json(&o);
    assert_eq!((v["found"].as_bool(), v["size"].as_u64()), (Some(true), Some(21)));
    assert_eq!(std::fs::read(&copy).unwrap(), b"hello from the shell\n");
    let o = run(&["set", "-b", b, &file, "--json"]);
    assert_eq!(json(&o)["key"].as_str(), Some(key.as_str()));
    let missing = "0".repeat(64);
    let o = run(&["ref", "-b", b, &missing]);
    assert_eq!((o.status.code(), o.stdout.len()), (Some(1), 0));
    assert_eq!(json(&run(&["ref", "-b", b, &missing, "--json"]))["found"].as_bool(), Some(false));

    // Bags.
    let bag = "ab".repeat(32);
    let item = "cd".repeat(32);
    assert_eq!(run(&["bag", "publish", "-b", b, &bag, &item]).status.code(), Some(0));
    let o = run(&["bag", "popular", "-b", b, &bag, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json(&o)["values"][0].as_str(), Some(item.as_str()));
    assert_eq!(run(&["bag", "recent", "-b", b, &missing]).status.code(), Some(1));

    // Namespaces: keygen's output is the secret file.
    let o = run(&["ns", "keygen"]);
    let keys = write(&tmp.0, "keys.txt", &o.stdout);
    let public = text(&o.stdout).lines().find_map(|l| l.strip_prefix("public ").map(str::to_string)).unwrap();
    let name = "12".repeat(32);
    let value = "34".repeat(32);
    let o = run(&["ns", "set", "-b", b, "--secret-file", &keys, &name, &value, "--json"]);
    let sig = json(&o)["signature"].as_str().unwrap().to_string();
    assert_eq!(sig.len(), 128);
    let o = run(&["ns", "ref", "-b", b, &public, &name]);
    assert_eq!((o.status.code(), text(&o.stdout).trim()), (Some(0), value.as_str()));
    let o = run(&["ns", "ref", "-b", b, &public, &name, "--signature", &sig, "--json"]);
    assert_eq!(json(&o)["value"].as_str(), Some(value.as_str()));
    assert_eq!(run(&["ns", "ref", "-b", b, &public, &missing]).status.code(), Some(1));

    // Stats of the first node, over its control socket.
    let o = run(&["stats", "--node", b, "--control-dir", ctl, "--json"]);
    let v = json(&o);
    assert_eq!(v["address"].as_str(), Some(b));
    // The other 7 nodes at most: the dozen one-shot clients so far introduced themselves as
    // clients, so none of them stayed in the routing table.
    let contacts = v["stats"]["contacts"].as_u64().unwrap();
    assert!((4..=7).contains(&contacts), "{v}");
    assert!(v["stats"]["received-iam"].as_u64().unwrap() > 0, "{v}");
    let o = run(&["stats", "--node", b, "--control-dir", ctl]);
    assert!(text(&o.stdout).contains("requests-received"), "{}", text(&o.stdout));

    // Errors: one line each, status 2.
    assert_error(&run(&["set", "-b", b, tmp.0.join("nope").to_str().unwrap()]), "No such file");
    assert_error(&run(&["ref", "-b", b, "xyz"]), "KEY must be 64 hexadecimal digits");
    assert_error(&run(&["set", "-b", "127.0.0.1:1", &file]), "no bootstrap node answered");
    let big = write(&tmp.0, "big", &vec![7u8; peer::MAX_VALUE_SIZE + 1]);
    assert_error(&run(&["set", "-b", b, &big]), "larger than the maximum value size");
    assert_error(&run(&["stats", "--node", "127.0.0.1:1", "--control-dir", ctl]), "no node at 127.0.0.1:1");
    assert_eq!(net.terminate(), 0);
}

#[test]
fn a_node_stops_on_sigterm_and_resumes_from_its_data() {
    let tmp = TempDir::new("node");
    let ctl = tmp.0.join("ctl");
    let ctl = ctl.to_str().unwrap();
    let data = tmp.0.join("data");
    let data = data.to_str().unwrap();
    let net = Running::start(&["testnet", "5", "--control-dir", ctl]);
    let b = net.field("bootstrap");
    let node = Running::start(&[
        "node",
        "--listen",
        "127.0.0.1:0",
        "-b",
        &b,
        "--data",
        data,
        "--control-dir",
        ctl,
        "--stats-every",
        "1",
        "--json",
    ]);
    let uid = node.field("uid");
    let addr = node.field("address");
    let control = node.field("control");
    // --stats-every: a JSON line of statistics each second.
    let line = node.lines.recv_timeout(Duration::from_secs(30)).expect("a stats line");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["uid"].as_str(), Some(uid.as_str()));
    assert!(v["stats"]["contacts"].as_u64().unwrap() > 0, "{v}");
    assert!(Path::new(&control).exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&control).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the control socket is the user's alone");
    let o = run(&["stats", "--node", &addr, "--control-dir", ctl, "--json"]);
    assert_eq!(json(&o)["uid"].as_str(), Some(uid.as_str()));
    assert_eq!(node.terminate(), 0);
    assert!(!Path::new(&control).exists(), "the control socket is removed at exit");

    // Restarted on its data directory: the same uid, its saved contacts, no bootstrap given.
    let again = Running::start(&["node", "--listen", "127.0.0.1:0", "--data", data, "--control-dir", ctl]);
    assert_eq!(again.field("uid"), uid);
    let addr = again.field("address");
    let mut contacts = 0;
    for _ in 0..50 {
        let o = run(&["stats", "--node", &addr, "--control-dir", ctl, "--json"]);
        contacts = json(&o)["stats"]["contacts"].as_u64().unwrap_or(0);
        if contacts > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(contacts > 0, "the restarted node knows its saved contacts");
    assert_eq!(again.terminate(), 0);
    assert_eq!(net.terminate(), 0);
}

#[test]
fn help_and_version() {
    for args in [&["--help"][..], &["node", "--help"], &["bag", "publish", "--help"], &["ns", "set", "--help"]] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(text(&o.stdout).contains("Usage: peer"), "{args:?}");
    }
    let o = run(&["--version"]);
    assert_eq!(text(&o.stdout).trim(), format!("peer {}", env!("CARGO_PKG_VERSION")));
    let o = run(&["node", "--listen", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
}
