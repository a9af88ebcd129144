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
            assert!(is_allowed(from, Canceled) && is_allowed(from, Expired) && is_allowed(from, Filled));
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
