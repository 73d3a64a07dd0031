//! The command line: every subcommand, option and its help (which is the manual: `peer help`,
//! `peer <command> --help`).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "peer",
    version,
    about = "Run and use a libpeer node: a Kademlia-style encrypted peer-to-peer network",
    long_about = "Run and use a libpeer node: a Kademlia-style peer-to-peer network over encrypted TCP \
(Noise), storing content-addressed values, bags of 32-byte values, and Ed25519-signed namespace records.\n\n\
Keys, uids, bag values, public and secret keys are 64 hexadecimal digits (32 bytes); signatures 128.\n\n\
Exit status: 0 done (or found), 1 not found, 2 error (with one line on stderr).\n\
Logging: RUST_LOG (error, warn, info, debug, trace; e.g. RUST_LOG=debug or RUST_LOG=peer=debug); \
`node` and `testnet` log at info by default, the one-shot commands at warn.",
    after_help = "Example, in three shells:\n  peer testnet 20 --base-port 4000\n  \
peer set --bootstrap 127.0.0.1:4000 README.md\n  peer ref --bootstrap 127.0.0.1:4000 <key> -o copy.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a long-lived node until SIGINT or SIGTERM
    Node(NodeArgs),
    /// Run N nodes on loopback in this process, for local development
    Testnet(TestnetArgs),
    /// Show a running node's statistics (through its control socket)
    Stats(StatsArgs),
    /// Store a file (or standard input, `-`) and print its key
    Set(SetArgs),
    /// Fetch the value stored under KEY
    Ref(RefArgs),
    /// Publish to, or read, a bag of 32-byte values
    Bag(BagArgs),
    /// Ed25519-signed namespace records: keygen, set, ref
    Ns(NsArgs),
}

/// Where a one-shot client joins, and how it prints.
#[derive(Args, Clone)]
pub struct Join {
    /// A node to join through (IP:PORT or HOST:PORT); repeat for more. At least one must answer.
    #[arg(long, short = 'b', value_name = "ADDR", required = true)]
    pub bootstrap: Vec<String>,
    /// Replication factor: how many of the nearest peers hold each record (5..20)
    #[arg(long, default_value_t = 5)]
    pub replication: u32,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

/// Where a node's control socket lives.
#[derive(Args, Clone)]
pub struct Control {
    /// Directory of the control sockets [default: $XDG_RUNTIME_DIR/libpeer, else
    /// /tmp/libpeer-<uid>]; it must be the user's own, mode 0700
    #[arg(long, value_name = "DIR")]
    pub control_dir: Option<PathBuf>,
}

/// How many contacts, holders, records and connections one address or prefix may take.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddressLimits {
    Default,
    Strict,
    Off,
}

impl AddressLimits {
    pub fn diversity(self) -> peer::Diversity {
        match self {
            AddressLimits::Default => peer::Diversity::default(),
            AddressLimits::Strict => peer::Diversity::strict(),
            AddressLimits::Off => peer::Diversity::off(),
        }
    }
}

#[derive(Args)]
pub struct NodeArgs {
    /// Address to listen on (IP:PORT; port 0 picks one)
    #[arg(long, short = 'l', value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// Nodes to join through at start (IP:PORT or HOST:PORT); repeat for more
    #[arg(long, short = 'b', value_name = "ADDR")]
    pub bootstrap: Vec<String>,
    /// Keep identity, contacts, held records and the republish list in DIR: a restarted
    /// node resumes from it (no bootstrap needed)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Replication factor (5..20)
    #[arg(long, default_value_t = 5)]
    pub replication: u32,
    /// Address limits (SECURITY.md): `default` counts every address but loopback ones,
    /// `strict` counts loopback too, `off` has none
    #[arg(long, value_enum, default_value_t = AddressLimits::Default, value_name = "MODE")]
    pub address_limits: AddressLimits,
    /// Print the statistics every S seconds
    #[arg(long, value_name = "S")]
    pub stats_every: Option<u64>,
    /// Print the statistics (--stats-every) as JSON lines
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub control: Control,
}

#[derive(Args)]
pub struct TestnetArgs {
    /// How many nodes (1..1000)
    pub n: usize,
    /// First port: the nodes listen on P, P+1, ...; 0 (the default) picks free ports
    #[arg(long, default_value_t = 0, value_name = "P")]
    pub base_port: u16,
    /// Loopback address to listen on
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub ip: std::net::IpAddr,
    #[command(flatten)]
    pub control: Control,
}

#[derive(Args)]
pub struct StatsArgs {
    /// The node's address (as `peer node` printed it)
    #[arg(long, value_name = "IP:PORT")]
    pub node: SocketAddr,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub control: Control,
}

#[derive(Args)]
pub struct SetArgs {
    /// The file to store; `-` for standard input
    pub file: String,
    #[command(flatten)]
    pub join: Join,
}

#[derive(Args)]
pub struct RefArgs {
    /// The value's key (SHA-256 of the value), 64 hex digits
    pub key: String,
    /// Write the value to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub join: Join,
}

#[derive(Args)]
pub struct BagArgs {
    #[command(subcommand)]
    pub op: BagOp,
}

#[derive(Subcommand)]
pub enum BagOp {
    /// Publish VALUE into the bag KEY (re-announced while this command runs: once)
    Publish {
        /// The bag's key, 64 hex digits
        key: String,
        /// The 32-byte value, 64 hex digits
        value: String,
        #[command(flatten)]
        join: Join,
    },
    /// The bag's values by number of distinct publishers
    Popular(BagQuery),
    /// The bag's most recently published values
    Recent(BagQuery),
    /// A uniformly random sample of the bag's values
    Sample(BagQuery),
}

#[derive(Args)]
pub struct BagQuery {
    /// The bag's key, 64 hex digits
    pub key: String,
    /// At most this many values
    #[arg(long, default_value_t = 20)]
    pub cap: usize,
    #[command(flatten)]
    pub join: Join,
}

#[derive(Args)]
pub struct NsArgs {
    #[command(subcommand)]
    pub op: NsOp,
}

#[derive(Subcommand)]
pub enum NsOp {
    /// Make a key pair: prints the secret and the public key
    Keygen {
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Sign and store VALUE under KEY in the namespace of the secret key's public key
    Set {
        /// File holding the secret key (64 hex digits), as `keygen` printed it
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// The record's key, 64 hex digits
        key: String,
        /// The 32-byte value, 64 hex digits
        value: String,
        #[command(flatten)]
        join: Join,
    },
    /// Read the record KEY of the namespace PUBLIC (the highest valid version)
    Ref {
        /// The namespace's public key, 64 hex digits
        public: String,
        /// The record's key, 64 hex digits
        key: String,
        /// Accept only the version with this signature (128 hex digits)
        #[arg(long, value_name = "HEX")]
        signature: Option<String>,
        #[command(flatten)]
        join: Join,
    },
}
