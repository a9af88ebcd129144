//! The audit chain's links: `sha256(previous hash, "\n", canonical bytes)`, as lowercase hex.
//!
//! The canonical bytes are an order event's contract JSON, exactly as the journal writes it; the
//! first event of a chain follows [`GENESIS_HASH`].

use sha2::{Digest, Sha256};

/// The "previous hash" of a chain's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Return the hash of the event whose canonical bytes are `canonical`, after `previous_hash`.
pub fn link_hash(previous_hash: &str, canonical: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(previous_hash.as_bytes());
    digest.update(b"\n");
    digest.update(canonical);
    let sum = digest.finalize();
    let mut text = String::with_capacity(64);
    for byte in sum.iter() {
        text.push(HEX[(byte >> 4) as usize] as char);
        text.push(HEX[(byte & 0x0f) as usize] as char);
    }
    text
}

/// Link `canonicals` in order after `head` (whose next seq is `next_seq`); return the new head and next seq.
pub fn extend<'a, I>(head: &str, next_seq: i64, canonicals: I) -> (String, i64)
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut head = head.to_owned();
    let mut seq = next_seq;
    for canonical in canonicals {
        head = link_hash(&head, canonical);
        seq += 1;
    }
    (head, seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_hash_is_sha256_of_previous_newline_bytes() {
        // printf '%s\n%s' 0...0 '{"a":1}' | sha256sum
        assert_eq!(
            link_hash(GENESIS_HASH, b"{\"a\":1}"),
            "f21735afd2cd6af4fc5804b0045cebfd545aef8396d29d030c39cb8880b45b7f"
        );
        assert_eq!(link_hash("", b"").len(), 64);
        // sha256("\n")
        assert_eq!(
            link_hash("", b""),
            "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b"
        );
    }

    #[test]
    fn extend_links_each_event_after_the_last() {
        let one = link_hash(GENESIS_HASH, b"x");
        let two = link_hash(&one, b"y");
        assert_eq!(extend(GENESIS_HASH, 0, [&b"x"[..], &b"y"[..]]), (two, 2));
        assert_eq!(
            extend(GENESIS_HASH, 5, std::iter::empty()),
            (GENESIS_HASH.to_owned(), 5)
        );
    }

    #[test]
    fn a_changed_byte_changes_the_link() {
        assert_ne!(
            link_hash(GENESIS_HASH, b"{\"a\":1}"),
            link_hash(GENESIS_HASH, b"{\"a\":2}")
        );
    }
}
