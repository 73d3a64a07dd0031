//! The byte encodings of the rows (see the module doc of `persist` for the layout). Every
//! decoder checks lengths and tags and returns None on bytes it does not recognise, so a
//! damaged row becomes an error naming its table, never a panic.

use crate::id::{Contact, Id};
use crate::store::kept::{Published, PublishedKey};
use crate::wire::NamespaceRecord;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Reads fixed-size pieces off the front of a row.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|b| b.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }

    /// Some(()) when every byte was read: trailing bytes mean a row we do not understand.
    fn end(self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

const ADDR_V4: u8 = 4;
const ADDR_V6: u8 = 6;

/// static key (32) ++ 4 ++ ip (4) ++ port (2), or static key (32) ++ 6 ++ ip (16) ++ port (2) ++
/// flowinfo (4) ++ scope id (4); the uid is the row's key.
pub fn contact(c: &Contact) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 1 + 26);
    out.extend_from_slice(&c.static_key);
    match c.addr {
        SocketAddr::V4(a) => {
            out.push(ADDR_V4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        SocketAddr::V6(a) => {
            out.push(ADDR_V6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.flowinfo().to_be_bytes());
            out.extend_from_slice(&a.scope_id().to_be_bytes());
        }
    }
    out
}

/// The contact of a `contacts` row (key `uid`).
pub fn decode_contact(uid: &[u8], row: &[u8]) -> Option<Contact> {
    let id = Id::from_slice(uid)?;
    let mut r = Reader(row);
    let static_key = r.array()?;
    let addr = match r.u8()? {
        ADDR_V4 => {
            let ip: [u8; 4] = r.array()?;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), r.u16()?))
        }
        ADDR_V6 => {
            let ip: [u8; 16] = r.array()?;
            let port = r.u16()?;
            let (flowinfo, scope) = (r.u32()?, r.u32()?);
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flowinfo, scope))
        }
        _ => return None,
    };
    r.end()?;
    Some(Contact { id, addr, static_key })
}

/// expires_at (8, big-endian) ++ the value's bytes.
pub fn held_value(value: &[u8], expires_at: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// (expires_at, value)
pub fn decode_held_value(row: &[u8]) -> Option<(u64, &[u8])> {
    let mut r = Reader(row);
    let expires_at = r.u64()?;
    Some((expires_at, r.rest()))
}

/// public key (32) ++ key (32): the key of a `records` row.
pub fn record_key(public_key: &[u8; 32], key: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(public_key);
    out[32..].copy_from_slice(key);
    out
}

/// value (32) ++ signature (64) ++ seq (8); public key and key are elsewhere (the row key).
fn record_body(out: &mut Vec<u8>, r: &NamespaceRecord) {
    out.extend_from_slice(&r.value);
    out.extend_from_slice(&r.signature);
    out.extend_from_slice(&r.seq.to_be_bytes());
}

fn decode_record_body(public_key: [u8; 32], key: [u8; 32], r: &mut Reader) -> Option<NamespaceRecord> {
    Some(NamespaceRecord { public_key, key, value: r.array()?, signature: r.array()?, seq: r.u64()? })
}

/// expires_at (8) ++ value (32) ++ signature (64) ++ seq (8).
pub fn held_record(record: &NamespaceRecord, expires_at: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 104);
    out.extend_from_slice(&expires_at.to_be_bytes());
    record_body(&mut out, record);
    out
}

/// (expires_at, record)
pub fn decode_held_record(key: &[u8], row: &[u8]) -> Option<(u64, NamespaceRecord)> {
    let mut k = Reader(key);
    let (public_key, rkey) = (k.array()?, k.array()?);
    k.end()?;
    let mut r = Reader(row);
    let expires_at = r.u64()?;
    let record = decode_record_body(public_key, rkey, &mut r)?;
    r.end()?;
    Some((expires_at, record))
}

const PUB_VALUE: u8 = 0;
const PUB_BAG: u8 = 1;
const PUB_RECORD: u8 = 2;

/// tag ++ the key's fields: the key of a `published_index` row.
pub fn published_key(k: &PublishedKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(65);
    match k {
        PublishedKey::Value(id) => {
            out.push(PUB_VALUE);
            out.extend_from_slice(&id.0);
        }
        PublishedKey::BagEntry(bag, value) => {
            out.push(PUB_BAG);
            out.extend_from_slice(&bag.0);
            out.extend_from_slice(value);
        }
        PublishedKey::Record(pk, key) => {
            out.push(PUB_RECORD);
            out.extend_from_slice(pk);
            out.extend_from_slice(key);
        }
    }
    out
}

/// tag ++ the entry: a value's bytes; bag (32) ++ value (32); public key ++ key ++ record body.
pub fn published(p: &Published) -> Vec<u8> {
    match p {
        Published::Value(v) => {
            let mut out = Vec::with_capacity(1 + v.len());
            out.push(PUB_VALUE);
            out.extend_from_slice(v);
            out
        }
        Published::BagEntry { key, value } => {
            let mut out = Vec::with_capacity(65);
            out.push(PUB_BAG);
            out.extend_from_slice(&key.0);
            out.extend_from_slice(value);
            out
        }
        Published::Record(r) => {
            let mut out = Vec::with_capacity(1 + 64 + 104);
            out.push(PUB_RECORD);
            out.extend_from_slice(&r.public_key);
            out.extend_from_slice(&r.key);
            record_body(&mut out, r);
            out
        }
    }
}

/// The entry of a `published` row.
pub fn decode_published(row: &[u8]) -> Option<Published> {
    let mut r = Reader(row);
    let p = match r.u8()? {
        PUB_VALUE => return Some(Published::Value(r.rest().into())),
        PUB_BAG => Published::BagEntry { key: Id(r.array()?), value: r.array()? },
        PUB_RECORD => {
            let (public_key, key) = (r.array()?, r.array()?);
            Published::Record(decode_record_body(public_key, key, &mut r)?)
        }
        _ => return None,
    };
    r.end()?;
    Some(p)
}
