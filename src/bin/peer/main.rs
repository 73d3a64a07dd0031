//! `peer`: run a libpeer node by hand, use the network from a shell, and look inside a
//! running node. Subcommands: `node` (a long-lived node), `set`, `ref`, `bag`, `ns` (one-shot
//! clients that join through `--bootstrap`), `testnet` (many nodes on loopback in one
//! process) and `stats` (a running node's figures, over its control socket).
//!
//! Exit status: 0 done (found), 1 not found, 2 error (one line on stderr).

mod args;
mod client;
mod control;
mod hex;
mod serve;

use clap::Parser;
use std::process::ExitCode;

/// What a subcommand ends with: found, not found, or an error message for stderr.
pub enum Outcome {
    Done,
    NotFound,
}

/// An error: one line for stderr, exit status 2.
pub type Fail = String;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // The node and testnet say what they do by default; one-shot clients only what fails.
    let default = if matches!(cli.command, args::Command::Node(_)) { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp_millis()
        .init();
    let r = match cli.command {
        args::Command::Node(a) => serve::node(a),
        args::Command::Testnet(a) => serve::testnet(a),
        args::Command::Stats(a) => control::stats(a),
        args::Command::Set(a) => client::set(a),
        args::Command::Ref(a) => client::get(a),
        args::Command::Bag(a) => client::bag(a),
        args::Command::Ns(a) => client::ns(a),
    };
    match r {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NotFound) => ExitCode::from(1),
        Err(e) => {
            eprintln!("peer: error: {e}");
            ExitCode::from(2)
        }
    }
}
