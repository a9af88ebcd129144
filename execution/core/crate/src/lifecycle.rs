//! The order lifecycle: the one table of allowed `(from, to)` status pairs.
//!
//! Anything not in the table is an illegal transition (a broker or the journal reported
//! something impossible). Terminal statuses (filled, canceled, rejected, expired) have no way out.

/// Where one order is in its life (the wire names are the Python `OrderStatus` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    New,
    Submitted,
    Accepted,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

use Status::*;

/// Every status, in the order the Python enum declares them.
#[rustfmt::skip]
pub const ALL: [Status; 8] = [New, Submitted, Accepted, PartiallyFilled, Filled, Canceled, Rejected, Expired];

impl Status {
    /// The status's wire name.
    pub fn name(self) -> &'static str {
        match self {
            New => "new",
            Submitted => "submitted",
            Accepted => "accepted",
            PartiallyFilled => "partially_filled",
            Filled => "filled",
            Canceled => "canceled",
            Rejected => "rejected",
            Expired => "expired",
        }
    }

    /// The status named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Status> {
        ALL.iter().copied().find(|status| status.name() == name)
    }

    /// True once nothing more can happen to the order.
    pub fn is_terminal(self) -> bool {
        matches!(self, Filled | Canceled | Rejected | Expired)
    }

    /// True while the broker may still fill it.
    pub fn is_working(self) -> bool {
        matches!(self, Submitted | Accepted | PartiallyFilled)
    }
}

/// Return whether the lifecycle allows `from -> to`.
pub fn is_allowed(from: Status, to: Status) -> bool {
    matches!(
        (from, to),
        (New, Submitted)
            | (New, Expired) // recorded but never sent (crash before the broker call)
            | (Submitted, Accepted)
            | (Submitted, Rejected)
            | (Submitted, PartiallyFilled) // a market order may report its fill before an ack
            | (Submitted, Filled)
            | (Submitted, Canceled)
            | (Submitted, Expired) // unknown to the broker after a restart
            | (Accepted, PartiallyFilled)
            | (Accepted, Filled)
            | (Accepted, Canceled)
            | (Accepted, Expired)
            | (PartiallyFilled, PartiallyFilled)
            | (PartiallyFilled, Filled)
            | (PartiallyFilled, Canceled) // the rest is canceled, the fills stand
            | (PartiallyFilled, Expired)
    )
}

/// Return whether the lifecycle allows `from -> to`, by wire names (an unknown name is never allowed).
pub fn is_allowed_named(from: &str, to: &str) -> bool {
    match (Status::parse(from), Status::parse(to)) {
        (Some(from), Some(to)) => is_allowed(from, to),
        _ => false,
    }
}

/// Every allowed pair, in declaration order of their statuses.
pub fn transitions() -> Vec<(Status, Status)> {
    let mut pairs = Vec::new();
    for from in ALL {
        for to in ALL {
            if is_allowed(from, to) {
                pairs.push((from, to));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_its_sixteen_pairs() {
        assert_eq!(transitions().len(), 16);
        assert!(is_allowed(New, Submitted));
        assert!(is_allowed(PartiallyFilled, PartiallyFilled));
        assert!(!is_allowed(New, Filled));
        assert!(!is_allowed(Accepted, Rejected));
        assert!(!is_allowed(Submitted, New));
    }

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(!is_allowed(from, to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn every_working_status_can_end() {
        for from in ALL.into_iter().filter(|s| s.is_working()) {
            assert!(
                is_allowed(from, Canceled) && is_allowed(from, Expired) && is_allowed(from, Filled)
            );
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for status in ALL {
            assert_eq!(Status::parse(status.name()), Some(status));
        }
        assert!(!is_allowed_named("new", "nonsense"));
        assert!(is_allowed_named("submitted", "filled"));
    }
}

/// Order ids by creation time: those created at or after an instant, without a scan of every order.
///
/// In time order; orders of the same millisecond in the order they were added. A periodic
/// reconciliation reads a window of orders; scanning every order at each pass made a long
/// replay quadratic.
#[derive(Clone, Debug, Default)]
pub struct CreationIndex {
    entries: Vec<(i64, String)>,
}

impl CreationIndex {
    pub fn new() -> CreationIndex {
        CreationIndex::default()
    }

    /// Room for `count` more entries.
    pub fn reserve(&mut self, count: usize) {
        self.entries.reserve(count);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first place whose time is at or after `at_ms`.
    fn first_at(&self, at_ms: i64) -> usize {
        self.entries
            .partition_point(|(created, _)| *created < at_ms)
    }

    /// Index an order: appended unless the clock stepped back (then after the orders of its millisecond).
    pub fn add(&mut self, created_at_ms: i64, client_order_id: &str) {
        let place = match self.entries.last() {
            Some((last, _)) if *last > created_at_ms => self
                .entries
                .partition_point(|(created, _)| *created <= created_at_ms),
            _ => self.entries.len(),
        };
        self.entries
            .insert(place, (created_at_ms, client_order_id.to_owned()));
    }

    /// Forget the first entry of this time and id; false when there is none.
    pub fn remove(&mut self, created_at_ms: i64, client_order_id: &str) -> bool {
        match self
            .entries
            .iter()
            .position(|(created, id)| *created == created_at_ms && id == client_order_id)
        {
            Some(place) => {
                self.entries.remove(place);
                true
            }
            None => false,
        }
    }

    /// The ids created at or after `since_ms`, oldest first.
    pub fn since(&self, since_ms: i64) -> impl Iterator<Item = &str> {
        self.entries[self.first_at(since_ms)..]
            .iter()
            .map(|(_, id)| id.as_str())
    }

    /// Forget the orders created before `before_ms` that `is_done`; return their ids, oldest first.
    ///
    /// Nothing is forgotten when `is_done` fails on one.
    pub fn retire<E>(
        &mut self,
        before_ms: i64,
        mut is_done: impl FnMut(&str) -> Result<bool, E>,
    ) -> Result<Vec<String>, E> {
        let end = self.first_at(before_ms);
        let mut done = Vec::with_capacity(end);
        for (_, id) in &self.entries[..end] {
            done.push(is_done(id)?);
        }
        let mut retired = Vec::new();
        let mut kept = Vec::with_capacity(self.entries.len());
        for ((created, id), is_done) in self.entries.drain(..end).zip(done) {
            if is_done {
                retired.push(id);
            } else {
                kept.push((created, id));
            }
        }
        kept.append(&mut self.entries);
        self.entries = kept;
        Ok(retired)
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    fn ids(index: &CreationIndex, since: i64) -> Vec<&str> {
        index.since(since).collect()
    }

    #[test]
    fn orders_keep_time_order_and_a_late_one_goes_after_its_millisecond() {
        let mut index = CreationIndex::new();
        index.add(10, "a");
        index.add(20, "b");
        index.add(20, "c");
        index.add(10, "d"); // the clock stepped back: after a, before b
        index.add(30, "e");
        assert_eq!(ids(&index, 0), ["a", "d", "b", "c", "e"]);
        assert_eq!(ids(&index, 20), ["b", "c", "e"]);
        assert_eq!(ids(&index, 31), Vec::<&str>::new());
    }

    #[test]
    fn remove_forgets_one_entry_and_says_when_there_is_none() {
        let mut index = CreationIndex::new();
        index.add(10, "a");
        index.add(10, "b");
        assert!(index.remove(10, "a"));
        assert!(!index.remove(10, "a"));
        assert!(!index.remove(11, "b"));
        assert_eq!(ids(&index, 0), ["b"]);
    }

    #[test]
    fn retire_forgets_only_done_orders_before_the_instant() {
        let mut index = CreationIndex::new();
        for (at, id) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
            index.add(at, id);
        }
        let retired = index.retire(4, |id| Ok::<bool, ()>(id != "b")).unwrap();
        assert_eq!(retired, ["a", "c"]);
        assert_eq!(ids(&index, 0), ["b", "d"]);
        assert!(index.retire(9, |_| Err::<bool, &str>("boom")).is_err());
        assert_eq!(ids(&index, 0), ["b", "d"]); // nothing forgotten on a failure
    }
}
