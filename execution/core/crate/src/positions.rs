//! Net positions in exact decimals, first in first out: Tickwave's one accounting rule.
//!
//! FIFO lots rather than an average price: an average needs a division, which cannot be exact,
//! while matching a closing fill against the oldest open lots needs only products and sums, so
//! realised and open P&L stay exact. [`Book::book`] says what each fill did to the position
//! (before and after, realised P&L, the round trip); the engine puts that on the fill's record.

use std::collections::VecDeque;

use crate::money::{Dec, Overflow};

/// What one fill did to its symbol's position (amounts in price x lots: multiply by the contract size).
///
/// A round trip runs from flat to flat and is named by the fill that opened it. A fill that flips
/// the position through zero closes its trip (`round_trip_id`, which its realised P&L belongs to)
/// and opens the next at its own price (`opens_round_trip_id`, its own id); a fill from flat opens
/// a trip (both ids are its own); any other fill opens none (`""`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booking {
    pub position_before: Dec,
    pub position_after: Dec,
    pub entry_value_after: Dec,
    pub realized: Dec,
    pub round_trip_id: String,
    pub opens_round_trip_id: String,
}

/// One symbol's open lots, oldest first, each with its entry price (signed lots: + long, - short).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    pub entries: VecDeque<(Dec, Dec)>,
    /// The open round trip (the fill that opened it), `""` when flat.
    pub trip_id: String,
    /// The signed net position: the sum of the entries' lots.
    pub lots: Dec,
    /// Bumped by every fill and take: what was worked out from the entries holds while it is the same.
    pub revision: i64,
}

impl Default for Dec {
    fn default() -> Dec {
        Dec::ZERO
    }
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    /// An independent copy (to preview fills without booking them), at revision 0.
    pub fn copy(&self) -> Book {
        Book {
            entries: self.entries.clone(),
            trip_id: self.trip_id.clone(),
            lots: self.lots,
            revision: 0,
        }
    }

    /// Become `other` (a copy of this book that booked a fill ahead), keeping this book's revision count.
    pub fn take(&mut self, other: &Book) {
        self.entries = other.entries.clone();
        self.trip_id = other.trip_id.clone();
        self.lots = other.lots;
        self.revision += 1;
    }

    fn sum_lots(&self) -> Result<Dec, Overflow> {
        self.entries
            .iter()
            .try_fold(Dec::ZERO, |total, (lots, _)| total.checked_add(*lots))
    }

    /// Apply one execution; return the realised P&L in price x lots (multiply by the contract size).
    ///
    /// A fill on the side of the position opens new lots; the other way it closes the oldest lots
    /// first, and whatever is left over opens a position the other way.
    pub fn fill(&mut self, signed_lots: Dec, price: Dec) -> Result<Dec, Overflow> {
        let mut realized = Dec::ZERO;
        let mut remaining = signed_lots;
        while !remaining.is_zero() {
            let Some(&(open_lots, entry_price)) = self.entries.front() else {
                break;
            };
            if open_lots.is_positive() == remaining.is_positive() {
                break;
            }
            let mut closed = remaining.abs().min_first(open_lots.abs());
            if open_lots.is_negative() {
                closed = closed.negated(); // signed: what the closing lots move the position by, towards zero
            }
            realized =
                realized.checked_add(closed.checked_mul(price.checked_sub(entry_price)?)?)?;
            let left = open_lots.checked_sub(closed)?;
            if left.is_zero() {
                self.entries.pop_front();
            } else {
                self.entries[0] = (left, entry_price);
            }
            remaining = remaining.checked_add(closed)?;
        }
        if !remaining.is_zero() {
            self.entries.push_back((remaining, price));
        }
        self.lots = self.sum_lots()?;
        self.revision += 1;
        Ok(realized)
    }

    /// Apply one execution (as [`Book::fill`]) and return what it did to the position and the round trip.
    pub fn book(
        &mut self,
        signed_lots: Dec,
        price: Dec,
        fill_id: &str,
    ) -> Result<Booking, Overflow> {
        let before = self.lots;
        let realized = self.fill(signed_lots, price)?;
        let after = self.lots;
        let mut trip = self.trip_id.clone();
        let opened = if before.is_zero() {
            trip = fill_id.to_owned();
            fill_id.to_owned()
        } else if !after.is_zero() && after.is_positive() != before.is_positive() {
            fill_id.to_owned()
        } else {
            String::new()
        };
        self.trip_id = if after.is_zero() {
            String::new()
        } else if opened.is_empty() {
            trip.clone()
        } else {
            opened.clone()
        };
        Ok(Booking {
            position_before: before,
            position_after: after,
            entry_value_after: self.entry_value()?,
            realized,
            round_trip_id: trip,
            opens_round_trip_id: opened,
        })
    }

    /// The open lots x their entry prices (signed): open P&L at `mark` is mark x lots - this.
    pub fn entry_value(&self) -> Result<Dec, Overflow> {
        self.entries
            .iter()
            .try_fold(Dec::ZERO, |total, (lots, price)| {
                total.checked_add(lots.checked_mul(*price)?)
            })
    }

    /// The open P&L at `mid` in price x lots.
    pub fn unrealized(&self, mid: Dec) -> Result<Dec, Overflow> {
        self.entries
            .iter()
            .try_fold(Dec::ZERO, |total, (lots, price)| {
                total.checked_add(mid.checked_sub(*price)?.checked_mul(*lots)?)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::d;

    #[test]
    fn a_trip_of_three_fills_closes_flat_with_its_exact_pnl() {
        let mut book = Book::new();
        let first = book.book(d("0.1"), d("1.1"), "a").unwrap();
        book.book(d("0.2"), d("1.2"), "b").unwrap();
        let last = book.book(d("-0.3"), d("1.3"), "c").unwrap();
        let after = book.book(d("0.1"), d("1.0"), "d").unwrap();
        assert_eq!(
            (
                first.round_trip_id.as_str(),
                first.opens_round_trip_id.as_str()
            ),
            ("a", "a")
        );
        assert!(last.position_after.is_zero());
        assert_eq!(
            (
                last.round_trip_id.as_str(),
                last.opens_round_trip_id.as_str()
            ),
            ("a", "")
        );
        assert_eq!(last.realized.to_string(), "0.04"); // 0.1 x 0.2 + 0.2 x 0.1
        assert_eq!(
            (
                after.round_trip_id.as_str(),
                after.opens_round_trip_id.as_str()
            ),
            ("d", "d")
        );
    }

    #[test]
    fn a_flip_closes_its_trip_and_opens_the_next_at_its_price() {
        let mut book = Book::new();
        book.book(d("0.3"), d("1.1"), "a").unwrap();
        let flip = book.book(d("-0.5"), d("1.2"), "b").unwrap();
        assert_eq!(flip.position_before.to_string(), "0.3");
        assert_eq!(flip.position_after.to_string(), "-0.2");
        assert_eq!(
            (
                flip.round_trip_id.as_str(),
                flip.opens_round_trip_id.as_str()
            ),
            ("a", "b")
        );
        assert_eq!(flip.realized.to_string(), "0.03");
        assert_eq!(flip.entry_value_after.to_string(), "-0.24");
        let closing = book.book(d("0.2"), d("1.15"), "c").unwrap();
        assert_eq!(closing.realized.to_string(), "0.010");
        assert_eq!(book.trip_id, "");
        assert_eq!(book.lots.to_string(), "0");
    }

    #[test]
    fn losses_on_a_short_are_negative_and_open_pnl_is_marked() {
        let mut book = Book::new();
        book.fill(d("-1.00"), d("2.000")).unwrap();
        assert_eq!(book.unrealized(d("2.5")).unwrap().to_string(), "-0.50000");
        let realized = book.fill(d("0.40"), d("2.1")).unwrap();
        assert_eq!(realized.to_string(), "-0.04000");
        assert_eq!(book.lots.to_string(), "-0.60");
        assert_eq!(book.revision, 2);
    }

    #[test]
    fn a_copy_is_independent_and_take_adopts_it() {
        let mut book = Book::new();
        book.fill(d("0.5"), d("1.1")).unwrap();
        let mut ahead = book.copy();
        ahead.fill(d("0.5"), d("1.2")).unwrap();
        assert_eq!(book.lots.to_string(), "0.5");
        book.take(&ahead);
        assert_eq!(book.lots.to_string(), "1.0");
        assert_eq!(book.revision, 2);
        assert_eq!(book.entries.len(), 2);
    }
}
