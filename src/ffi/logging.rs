//! Logging for C programs: libpeer logs through the `log` facade and is silent until a
//! program asks; peer_log_level turns it on, peer_log_callback says where lines go.

use super::support::guard_or;
use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::RwLock;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io::Write;

/// Receives one log line: `level` 1 error .. 5 trace, `target` the libpeer module
/// ("peer::core::local", ...), `message` the line without a newline; both strings are valid
/// only during the call. `user` is what peer_log_callback was given. It runs on whichever
/// libpeer thread logs, possibly several at once, and must not call back into libpeer.
#[allow(non_camel_case_types)]
pub type peer_log_fn =
    Option<unsafe extern "C" fn(level: c_int, target: *const c_char, message: *const c_char, user: *mut c_void)>;

struct Sink {
    f: peer_log_fn,
    user: usize,
}

static SINK: RwLock<Sink> = RwLock::new(Sink { f: None, user: 0 });

struct CLogger;

static LOGGER: CLogger = CLogger;

impl Log for CLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let sink = SINK.read();
        match sink.f {
            Some(f) => {
                let target = CString::new(r.target().replace('\0', "")).unwrap_or_default();
                let message = CString::new(r.args().to_string().replace('\0', "\\0")).unwrap_or_default();
                // SAFETY: the program's callback, with the arguments its type promises.
                unsafe { f(level_number(r.level()), target.as_ptr(), message.as_ptr(), sink.user as *mut c_void) };
            }
            None => {
                let _ = writeln!(std::io::stderr(), "libpeer {} {}: {}", r.level(), r.target(), r.args());
            }
        }
    }

    fn flush(&self) {}
}

fn level_number(l: Level) -> c_int {
    match l {
        Level::Error => 1,
        Level::Warn => 2,
        Level::Info => 3,
        Level::Debug => 4,
        Level::Trace => 5,
    }
}

/// Install libpeer's logger (once); fails harmlessly when the process already has one (a
/// Rust program embedding libpeer), whose level then still follows peer_log_level.
fn install() {
    let _ = log::set_logger(&LOGGER);
}

/// Log up to `level`: 0 off (the default), 1 error, 2 warn, 3 info (peers joining and
/// leaving routing tables, maintenance), 4 debug (failed requests, closed connections),
/// 5 trace. Lines go to the callback of peer_log_callback, else to stderr. Process-wide.
/// Returns the level now in force (a number above 5 means 5; below 0, 0).
#[no_mangle]
pub extern "C" fn peer_log_level(level: c_int) -> c_int {
    guard_or("peer_log_level", 0, || {
        install();
        let filter = match level {
            i if i <= 0 => LevelFilter::Off,
            1 => LevelFilter::Error,
            2 => LevelFilter::Warn,
            3 => LevelFilter::Info,
            4 => LevelFilter::Debug,
            _ => LevelFilter::Trace,
        };
        log::set_max_level(filter);
        filter as c_int
    })
}

/// Send log lines to `f` (with `user`, which libpeer passes back and never touches) instead
/// of stderr; `f` NULL goes back to stderr. Process-wide; takes effect for the next line.
/// Lines flow only once peer_log_level has turned logging on.
#[no_mangle]
pub extern "C" fn peer_log_callback(f: peer_log_fn, user: *mut c_void) {
    guard_or("peer_log_callback", (), || {
        install();
        *SINK.write() = Sink { f, user: user as usize };
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::sync::Mutex;

    static LINES: Mutex<Vec<(c_int, String, String)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn collect(level: c_int, target: *const c_char, message: *const c_char, user: *mut c_void) {
        assert_eq!(user as usize, 42);
        let t = unsafe { CStr::from_ptr(target) }.to_string_lossy().into_owned();
        let m = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
        LINES.lock().unwrap().push((level, t, m));
    }

    /// One test holds the process-wide logger throughout: levels, the callback, stderr.
    #[test]
    fn levels_and_callback() {
        peer_log_callback(Some(collect), 42 as *mut c_void);
        assert_eq!(peer_log_level(0), 0);
        log::info!(target: "peer::test", "unseen");
        assert_eq!(peer_log_level(3), 3);
        log::info!(target: "peer::test", "seen {}", 1);
        log::debug!(target: "peer::test", "too detailed");
        assert_eq!(peer_log_level(99), 5);
        log::trace!(target: "peer::test", "now seen");
        peer_log_level(0);
        peer_log_callback(None, std::ptr::null_mut());
        let lines: Vec<_> = LINES.lock().unwrap().iter().filter(|l| l.1 == "peer::test").cloned().collect();
        assert_eq!(
            lines,
            vec![(3, "peer::test".to_string(), "seen 1".to_string()), (5, "peer::test".to_string(), "now seen".to_string())]
        );
    }
}
