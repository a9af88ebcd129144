//! Market hours and the trading day as a table (no Python): the instants where the market opens or
//! closes and where the trading day rolls over, each with the state from it on.
//!
//! The rule is the Python kernel's (`tickwave.market.MarketCalendar`: New York time with its DST,
//! the rollover time, holidays, `always`); `MarketCalendar.table` lists its changes over a span and
//! builds this table from them, so the core reads the rule without a second copy of it (no time
//! zone data here). A table answers inside its span only; the replay builds one over its timeline's
//! span plus a margin (`MarketCalendar.table`'s caller says how much).

use std::fmt;

/// The market's state from an instant on, until the next change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    start_ms: i64,
    is_open: bool,
    day: u32, // index into `MarketTable::days`
}

/// Why a list of changes cannot make a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError(pub String);

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When the market is open and which trading day an instant belongs to, over `[start, end)` UTC ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketTable {
    segments: Vec<Segment>,
    days: Vec<String>, // each trading day's ISO name, in the order first met
    end_ms: i64,
}

impl MarketTable {
    /// Build a table from its changes: `(from_ms, is_open, trading day's ISO name)`, in strictly
    /// increasing time, the first at the span's start; the span ends before `end_ms`.
    pub fn new<S: Into<String>>(
        changes: impl IntoIterator<Item = (i64, bool, S)>,
        end_ms: i64,
    ) -> Result<MarketTable, TableError> {
        let mut table = MarketTable {
            segments: Vec::new(),
            days: Vec::new(),
            end_ms,
        };
        for (start_ms, is_open, day) in changes {
            let day = day.into();
            if let Some(last) = table.segments.last() {
                if start_ms <= last.start_ms {
                    return Err(TableError(format!(
                        "changes out of order: {start_ms} after {}",
                        last.start_ms
                    )));
                }
            }
            // Changes within one day share its name (a day met again later is stored again).
            let index = match table.days.last() {
                Some(last) if *last == day => table.days.len() - 1,
                _ => {
                    table.days.push(day);
                    table.days.len() - 1
                }
            };
            let day = u32::try_from(index).map_err(|_| TableError("too many days".into()))?;
            table.segments.push(Segment {
                start_ms,
                is_open,
                day,
            });
        }
        match table.segments.first() {
            None => Err(TableError("a table needs at least one change".into())),
            Some(first) if first.start_ms >= end_ms => Err(TableError(format!(
                "the span ends at {end_ms}, not after its start {}",
                first.start_ms
            ))),
            Some(_) => Ok(table),
        }
    }

    /// The segment `ms` falls in (binary search), None outside the span.
    fn segment(&self, ms: i64) -> Option<&Segment> {
        if ms >= self.end_ms {
            return None;
        }
        let after = self.segments.partition_point(|s| s.start_ms <= ms);
        after.checked_sub(1).map(|index| &self.segments[index])
    }

    /// Whether the market is open at `ms` (None outside the span).
    pub fn is_open(&self, ms: i64) -> Option<bool> {
        self.segment(ms).map(|s| s.is_open)
    }

    /// The trading day `ms` belongs to, as its ISO date (None outside the span).
    pub fn trading_day(&self, ms: i64) -> Option<String> {
        self.segment(ms).map(|s| self.days[s.day as usize].clone())
    }

    /// The span the table answers for: `[start, end)` UTC ms.
    pub fn span(&self) -> (i64, i64) {
        (self.segments[0].start_ms, self.end_ms)
    }

    /// How many changes the table holds.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// A table always holds at least one change (see [`MarketTable::new`]).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// Market hours as the gate and the replay read them.
pub trait MarketHours {
    fn is_open(&self, now_ms: i64) -> bool;
    fn trading_day(&self, now_ms: i64) -> String;
}

/// Outside its span a table fails closed: the market is closed (the gate opens nothing) and the
/// trading day is the empty name, which no day's limits or P&L are kept under. A replay never asks
/// there: it builds the table over its timeline's span plus a margin and checks [`MarketTable::span`]
/// before it starts.
impl MarketHours for MarketTable {
    fn is_open(&self, now_ms: i64) -> bool {
        MarketTable::is_open(self, now_ms).unwrap_or(false)
    }

    fn trading_day(&self, now_ms: i64) -> String {
        MarketTable::trading_day(self, now_ms).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A winter week of the fx rule around a Friday close (New York 17:00 = 22:00 UTC).
    const FRI_CLOSE: i64 = 1_704_492_000_000; // 2024-01-05 22:00 UTC
    const SUN_OPEN: i64 = FRI_CLOSE + 2 * 86_400_000;

    fn week() -> MarketTable {
        MarketTable::new(
            [
                (FRI_CLOSE - 86_400_000, true, "2024-01-05"),
                (FRI_CLOSE, false, "2024-01-08"),
                (SUN_OPEN, true, "2024-01-08"),
                (SUN_OPEN + 86_400_000, true, "2024-01-09"),
            ],
            SUN_OPEN + 2 * 86_400_000,
        )
        .unwrap()
    }

    #[test]
    fn each_instant_reads_the_change_at_or_before_it() {
        let table = week();
        assert_eq!(table.is_open(FRI_CLOSE - 1), Some(true));
        assert_eq!(table.is_open(FRI_CLOSE), Some(false));
        assert_eq!(table.is_open(SUN_OPEN - 1), Some(false));
        assert_eq!(table.is_open(SUN_OPEN), Some(true));
        assert_eq!(
            table.trading_day(FRI_CLOSE - 1).as_deref(),
            Some("2024-01-05")
        );
        assert_eq!(table.trading_day(FRI_CLOSE).as_deref(), Some("2024-01-08"));
        assert_eq!(
            table.trading_day(SUN_OPEN + 86_400_000).as_deref(),
            Some("2024-01-09")
        );
        assert_eq!(table.days.len(), 3); // the weekend's two changes share one day
    }

    #[test]
    fn outside_its_span_a_table_has_no_answer_and_the_gate_reads_closed() {
        let table = week();
        let (start, end) = table.span();
        assert_eq!(table.is_open(start - 1), None);
        assert_eq!(table.trading_day(end), None);
        assert_eq!(table.is_open(end - 1), Some(true));
        let hours: &dyn MarketHours = &table;
        assert!(!hours.is_open(end));
        assert_eq!(hours.trading_day(start - 1), "");
        assert!(hours.is_open(start));
        assert_eq!(hours.trading_day(start), "2024-01-05");
    }

    #[test]
    fn changes_out_of_order_or_none_are_refused() {
        assert!(MarketTable::new([(5, true, "d"), (5, false, "d")], 10).is_err());
        assert!(MarketTable::new(Vec::<(i64, bool, String)>::new(), 10).is_err());
        assert!(MarketTable::new([(10, true, "d")], 10).is_err());
    }
}
