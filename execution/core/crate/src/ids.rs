//! Deterministic ids (`tickwave.contracts.core.stable_id`, `joined_id`, `client_order_id_for`):
//! the hex BLAKE2b digest of parts joined with U+001F, half as many bytes as hex digits.

use blake2::digest::consts::{U12, U16};
use blake2::{Blake2b, Digest};

/// The parts' separator.
pub const SEPARATOR: char = '\u{1f}';

/// The id of a text whose parts are already joined with [`SEPARATOR`]: `length` hex digits (24 or 32).
pub fn joined_id(text: &str, length: usize) -> Option<String> {
    let digest = match length {
        24 => Blake2b::<U12>::digest(text.as_bytes()).to_vec(),
        32 => Blake2b::<U16>::digest(text.as_bytes()).to_vec(),
        _ => return None,
    };
    Some(hex(&digest))
}

/// The 32-digit id of `parts` (each as Python's `str` writes it).
pub fn stable_id(parts: &[&str]) -> String {
    let text = parts.join(&SEPARATOR.to_string());
    joined_id(&text, 32).expect("32 digits is a known length")
}

/// The id of the one order a signal may produce (31 characters at most: MT5's order comment).
pub fn client_order_id_for(signal_id: &str) -> String {
    let text = format!("order{SEPARATOR}{signal_id}");
    format!(
        "tw-{}",
        joined_id(&text, 24).expect("24 digits is a known length")
    )
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_pythons_blake2b_hex_digests() {
        // hashlib.blake2b(b"abc", digest_size=16).hexdigest() and digest_size=12
        assert_eq!(
            joined_id("abc", 32).unwrap(),
            "cf4ab791c62b8d2b2109c90275287816"
        );
        assert_eq!(joined_id("abc", 24).unwrap().len(), 24);
        assert_eq!(joined_id("abc", 20), None);
        assert!(client_order_id_for("s").starts_with("tw-"));
        assert_eq!(client_order_id_for("s").len(), 27);
    }
}
