//! Deterministic ids (`tickwave.contracts.core.stable_id`, `joined_id`, `client_order_id_for`):
//! the hex BLAKE2b digest of parts joined with U+001F, half as many bytes as hex digits.

use blake2::digest::consts::{U12, U16};
use blake2::digest::{Digest, OutputSizeUser};
use blake2::Blake2b;

/// The parts' separator.
pub const SEPARATOR: char = '\u{1f}';

/// The hex digits of an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdLength {
    /// 32: a fill's, an event's (the default).
    Fill,
    /// 24: an order's (within MT5's 31-character comment with its prefix).
    Order,
}

impl IdLength {
    /// The length of `digits` hex digits (24 or 32), or None.
    pub fn of_digits(digits: usize) -> Option<IdLength> {
        match digits {
            32 => Some(IdLength::Fill),
            24 => Some(IdLength::Order),
            _ => None,
        }
    }
}

/// The hex BLAKE2b digest of `text`, of the size the ids use (`tickwave.contracts.joined_id`: 32 hex
/// digits; an order's id 24).
pub fn joined_id(text: &str, length: IdLength) -> String {
    match length {
        IdLength::Fill => hex_digest::<Blake2b<U16>>(text),
        IdLength::Order => hex_digest::<Blake2b<U12>>(text),
    }
}

fn hex_digest<H: Digest + OutputSizeUser>(text: &str) -> String {
    let digest = H::digest(text.as_bytes());
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// The 32-digit id of `parts` (each as Python's `str` writes it).
pub fn stable_id(parts: &[&str]) -> String {
    joined_id(&parts.join(&SEPARATOR.to_string()), IdLength::Fill)
}

/// The id of the one order a signal may produce (31 characters at most: MT5's order comment).
pub fn client_order_id_for(signal_id: &str) -> String {
    let text = format!("order{SEPARATOR}{signal_id}");
    format!("tw-{}", joined_id(&text, IdLength::Order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_pythons_blake2b_hex_digests() {
        // hashlib.blake2b(b"abc", digest_size=16).hexdigest(), and digest_size=12's length
        assert_eq!(
            joined_id("abc", IdLength::Fill),
            "cf4ab791c62b8d2b2109c90275287816"
        );
        assert_eq!(joined_id("abc", IdLength::Order).len(), 24);
        assert_eq!(IdLength::of_digits(20), None);
        assert!(client_order_id_for("s").starts_with("tw-"));
        assert_eq!(client_order_id_for("s").len(), 27);
    }
}
