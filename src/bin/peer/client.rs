//! The one-shot clients: join through `--bootstrap`, make one call, print the result, leave.

use crate::args::{BagArgs, BagOp, BagQuery, Join, NsArgs, NsOp, RefArgs, SetArgs};
use crate::hex;
use crate::{Fail, Outcome};
use peer::{BagKind, Id, Node, Options, MAX_VALUE_SIZE};
use serde_json::json;
use std::io::{Read, Write};
use std::net::IpAddr;

/// A node of our own, joined to the network through the first bootstrap address that
/// answers; it listens on the loopback address when the network is local, else on all.
fn join(j: &Join) -> Result<Node, Fail> {
    let local =
        j.bootstrap.iter().all(|b| b.starts_with("127.") || b.starts_with("localhost:") || b.starts_with("[::1]"));
    let ip: IpAddr = if local { "127.0.0.1".parse().unwrap() } else { "0.0.0.0".parse().unwrap() };
    // A client: others do not keep it in their routing tables once it has gone.
    let opts = Options { replication: j.replication, client: true, ..Options::default() };
    let node = Node::with_options(None, ip, 0, &opts).map_err(|e| e.to_string())?;
    let mut reached = 0;
    let mut why = Vec::new();
    for b in &j.bootstrap {
        let (host, port) = split_addr(b)?;
        match node.connect_host(host, port) {
            Ok(()) => reached += 1,
            Err(e) => why.push(format!("{b}: {e}")),
        }
    }
    if reached == 0 {
        return Err(format!("no bootstrap node answered ({})", why.join("; ")));
    }
    node.bootstrap().map_err(|e| format!("bootstrap: {e}"))?;
    Ok(node)
}

/// "IP:PORT", "[IPv6]:PORT" or "HOST:PORT".
fn split_addr(a: &str) -> Result<(&str, u16), Fail> {
    let bad = || format!("bootstrap address must be IP:PORT or HOST:PORT, got {a:?}");
    let (host, port) = a.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Ok((host, port.parse().map_err(|_| bad())?))
}

fn print_json(v: serde_json::Value) {
    println!("{v}");
}

pub fn set(a: SetArgs) -> Result<Outcome, Fail> {
    let mut value = Vec::new();
    if a.file == "-" {
        std::io::stdin().take(MAX_VALUE_SIZE as u64 + 1).read_to_end(&mut value).map_err(|e| format!("stdin: {e}"))?;
    } else {
        let f = std::fs::File::open(&a.file).map_err(|e| format!("{}: {e}", a.file))?;
        f.take(MAX_VALUE_SIZE as u64 + 1).read_to_end(&mut value).map_err(|e| format!("{}: {e}", a.file))?;
    }
    if value.len() > MAX_VALUE_SIZE {
        return Err(format!("{}: larger than the maximum value size, {MAX_VALUE_SIZE} bytes", a.file));
    }
    let node = join(&a.join)?;
    let key = node.set(&value).map_err(|e| e.to_string())?;
    if a.join.json {
        print_json(json!({ "key": hex::encode(&key.0), "size": value.len() }));
    } else {
        println!("{}", hex::encode(&key.0));
    }
    Ok(Outcome::Done)
}

pub fn get(a: RefArgs) -> Result<Outcome, Fail> {
    let key = Id(hex::decode::<32>("KEY", &a.key)?);
    let node = join(&a.join)?;
    let Some(value) = node.get(&key).map_err(|e| e.to_string())? else {
        if a.join.json {
            print_json(json!({ "key": a.key, "found": false }));
        }
        return Ok(Outcome::NotFound);
    };
    if let Some(path) = &a.output {
        std::fs::write(path, &value).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if a.join.json {
        let mut v = json!({ "key": hex::encode(&key.0), "found": true, "size": value.len() });
        if a.output.is_none() {
            v["value"] = json!(hex::encode(&value));
        }
        print_json(v);
    } else if a.output.is_none() {
        std::io::stdout().write_all(&value).map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(Outcome::Done)
}

pub fn bag(a: BagArgs) -> Result<Outcome, Fail> {
    let (kind, q): (BagKind, BagQuery) = match a.op {
        BagOp::Publish { key, value, join: j } => {
            let k = Id(hex::decode::<32>("KEY", &key)?);
            let v = hex::decode::<32>("VALUE", &value)?;
            let node = join(&j)?;
            node.bag_publish(&k, &v).map_err(|e| e.to_string())?;
            if j.json {
                print_json(json!({ "key": key, "published": hex::encode(&v) }));
            }
            return Ok(Outcome::Done);
        }
        BagOp::Popular(q) => (BagKind::Popular, q),
        BagOp::Recent(q) => (BagKind::Recent, q),
        BagOp::Sample(q) => (BagKind::Sample, q),
    };
    let k = Id(hex::decode::<32>("KEY", &q.key)?);
    let node = join(&q.join)?;
    let values = node.bag_query(kind, &k, q.cap).map_err(|e| e.to_string())?;
    if q.join.json {
        print_json(json!({ "key": q.key, "values": values.iter().map(|v| hex::encode(v)).collect::<Vec<_>>() }));
    } else {
        for v in &values {
            println!("{}", hex::encode(v));
        }
    }
    Ok(if values.is_empty() { Outcome::NotFound } else { Outcome::Done })
}

pub fn ns(a: NsArgs) -> Result<Outcome, Fail> {
    match a.op {
        NsOp::Keygen { json } => {
            let (secret, public) = peer::sign::keypair(&mut rand::rngs::OsRng);
            if json {
                print_json(json!({ "secret": hex::encode(&secret), "public": hex::encode(&public) }));
            } else {
                println!("secret {}\npublic {}", hex::encode(&secret), hex::encode(&public));
            }
            Ok(Outcome::Done)
        }
        NsOp::Set { secret_file, key, value, join: j } => {
            let text = std::fs::read_to_string(&secret_file).map_err(|e| format!("{}: {e}", secret_file.display()))?;
            // The file may be `keygen`'s whole output: take the secret's line.
            let line = text.lines().find(|l| l.starts_with("secret ")).map_or(text.as_str(), |l| &l[7..]);
            let secret = hex::decode::<32>("the secret key", line)?;
            let public = peer::sign::public_of(&secret);
            let k = hex::decode::<32>("KEY", &key)?;
            let v = hex::decode::<32>("VALUE", &value)?;
            let node = join(&j)?;
            let sig = node.namespace_set(&secret, &public, &k, &v).map_err(|e| e.to_string())?;
            if j.json {
                print_json(json!({ "public": hex::encode(&public), "key": key, "signature": hex::encode(&sig) }));
            } else {
                println!("public {}\nsignature {}", hex::encode(&public), hex::encode(&sig));
            }
            Ok(Outcome::Done)
        }
        NsOp::Ref { public, key, signature, join: j } => {
            let p = hex::decode::<32>("PUBLIC", &public)?;
            let k = hex::decode::<32>("KEY", &key)?;
            let pin = signature.map(|s| hex::decode::<64>("--signature", &s)).transpose()?;
            let node = join(&j)?;
            let found = node.namespace_ref(&p, &k, pin.as_ref()).map_err(|e| e.to_string())?;
            let hit = found.is_some();
            match (found, j.json) {
                (Some((value, sig)), true) => {
                    print_json(json!({ "found": true, "value": hex::encode(&value), "signature": hex::encode(&sig) }))
                }
                (Some((value, _)), false) => println!("{}", hex::encode(&value)),
                (None, true) => print_json(json!({ "found": false })),
                (None, false) => {}
            }
            Ok(if hit { Outcome::Done } else { Outcome::NotFound })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_addr;

    #[test]
    fn addresses() {
        assert_eq!(split_addr("127.0.0.1:4000").unwrap(), ("127.0.0.1", 4000));
        assert_eq!(split_addr("[::1]:4000").unwrap(), ("::1", 4000));
        assert_eq!(split_addr("localhost:1").unwrap(), ("localhost", 1));
        assert!(split_addr("127.0.0.1").is_err());
        assert!(split_addr("127.0.0.1:99999").is_err());
    }
}
