//! Hexadecimal keys and values on the command line, and JSON strings.

use crate::Fail;

pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly N bytes from 2N hex digits; `what` names the argument in the error.
pub fn decode<const N: usize>(what: &str, text: &str) -> Result<[u8; N], Fail> {
    let t = text.trim();
    let bad = || format!("{what} must be {} hexadecimal digits, got {:?}", 2 * N, shorten(t));
    if t.len() != 2 * N || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn shorten(t: &str) -> String {
    if t.chars().count() > 70 {
        format!("{}...", t.chars().take(70).collect::<String>())
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let k: [u8; 2] = decode("key", "0aFf").unwrap();
        assert_eq!(k, [0x0a, 0xff]);
        assert_eq!(encode(&k), "0aff");
        assert!(decode::<2>("key", "0af").is_err());
        assert!(decode::<2>("key", "0afg").unwrap_err().contains("key must be 4 hexadecimal digits"));
    }
}
