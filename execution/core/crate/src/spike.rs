//! The spike filter of one symbol (no Python): the one rule of the dataflow's spike step, the
//! execution process's price screen and every replay's.
//!
//! A mid price more than `threshold_bps` away from a slow EMA reference is a spike, unless it is a
//! level shift that holds in time and size: `confirm_after` consecutive ticks on the same side,
//! stamped no earlier than the newest tick believed at the old level, spanning at least
//! `confirm_ms`, all within `tolerance_bps` of one another, and, once the reference has held for
//! `confirm_after` ticks, within `max_factor` of it. Then the reference jumps to the new level.
//! Floats are compared and combined in the order the Python filter did, so every decision and
//! every reference is the same bits (`tickwave.validation.SpikeFilter` is the facade).

use crate::events::py_repr;

/// The limits of a filter (the settings' `streams.spike_*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub threshold_bps: f64,
    pub alpha: f64,
    pub confirm_after: i64,
    pub confirm_ms: i64,
    pub tolerance_bps: f64,
    pub max_factor: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            threshold_bps: 300.0,
            alpha: 0.05,
            confirm_after: 5,
            confirm_ms: 10_000,
            tolerance_bps: 100.0,
            max_factor: 2.0,
        }
    }
}

/// What a filter remembers between ticks (a new filter: all zero, `reference_ms` -1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    pub reference: f64,
    /// The newest event time believed at the reference's level.
    pub reference_ms: i64,
    /// Ticks believed at the reference's level (settled from `confirm_after`).
    pub held: i64,
    pub pending_side: i64,
    pub pending_count: i64,
    pub pending_first_ms: i64,
    pub pending_last_ms: i64,
    pub pending_low: f64,
    pub pending_high: f64,
}

impl Default for State {
    fn default() -> Self {
        State {
            reference: 0.0,
            reference_ms: -1,
            held: 0,
            pending_side: 0,
            pending_count: 0,
            pending_first_ms: 0,
            pending_last_ms: 0,
            pending_low: 0.0,
            pending_high: 0.0,
        }
    }
}

/// Which rule a rejected tick broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpikeKind {
    /// Beyond the threshold, and not (yet) a level shift.
    Spike,
    /// Beyond `max_factor` of a settled reference: never a level shift.
    BeyondFactor,
    /// Stamped before the newest tick believed at the reference's level.
    StampedBefore,
}

/// A rejected tick: the rule, and the figures its reason names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rejected {
    pub kind: SpikeKind,
    pub mid: f64,
    pub move_bps: f64,
    pub reference: f64,
    pub max_factor: f64,
}

impl Rejected {
    /// The dead-letter reason code of every rejection of this filter.
    pub const CODE: &'static str = "spike";

    /// The reason, in the Python filter's words (floats as `repr` writes them, the move as `{:+.0f}`).
    pub fn reason(&self) -> String {
        let spike = format!(
            "spike: mid {} is {} bps from reference {}",
            py_repr(self.mid),
            signed_whole(self.move_bps),
            py_repr(self.reference)
        );
        match self.kind {
            SpikeKind::Spike => spike,
            SpikeKind::BeyondFactor => format!(
                "{spike}, beyond {}x of a settled reference: never a level shift",
                py_repr(self.max_factor)
            ),
            SpikeKind::StampedBefore => {
                format!("{spike}, stamped before the reference's newest tick")
            }
        }
    }
}

/// A float as Python's `format(x, "+.0f")`: the exact value rounded half to even, always signed.
pub fn signed_whole(x: f64) -> String {
    if x.is_nan() {
        return "+nan".to_owned();
    }
    format!("{x:+.0}") // Rust rounds the exact binary value, ties to even, and writes -0 and +inf as Python
}

/// Python's `max(a, b)` of floats: `a` unless `b > a` (a NaN never wins from the right).
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)` of floats: `a` unless `b < a`.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// One symbol's spike filter: its limits and its state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpikeFilter {
    pub limits: Limits,
    pub state: State,
}

impl SpikeFilter {
    /// A new filter with these limits.
    pub fn new(limits: Limits) -> Self {
        SpikeFilter {
            limits,
            state: State::default(),
        }
    }

    /// Judge one quote at its event time: None when believed (and the reference moves), else why not.
    pub fn check(&mut self, time_ms: i64, bid: f64, ask: f64) -> Option<Rejected> {
        let mid = (bid + ask) / 2.0;
        let s = &mut self.state;
        if s.reference == 0.0 {
            s.reference = mid;
            s.reference_ms = time_ms;
            s.held = 1;
            return None;
        }
        let move_bps = (mid / s.reference - 1.0) * 10_000.0;
        if move_bps.abs() <= self.limits.threshold_bps {
            s.reference += self.limits.alpha * (mid - s.reference);
            s.held += 1;
            if time_ms > s.reference_ms {
                s.reference_ms = time_ms;
            }
            s.pending_side = 0;
            s.pending_count = 0;
            return None;
        }
        self.pending(mid, time_ms, move_bps)
    }

    /// A tick beyond the threshold: a spike, or one more tick of a level shift that may come to hold.
    fn pending(&mut self, mid: f64, time_ms: i64, move_bps: f64) -> Option<Rejected> {
        let limits = self.limits;
        let s = &mut self.state;
        let rejected = |kind| {
            Some(Rejected {
                kind,
                mid,
                move_bps,
                reference: s.reference,
                max_factor: limits.max_factor,
            })
        };
        let factor = py_max(mid / s.reference, s.reference / mid);
        if s.held >= limits.confirm_after && factor > limits.max_factor {
            return rejected(SpikeKind::BeyondFactor);
        }
        if time_ms < s.reference_ms {
            return rejected(SpikeKind::StampedBefore);
        }
        let spike = rejected(SpikeKind::Spike);
        let side = if move_bps > 0.0 { 1 } else { -1 };
        let (mut low, mut high) = (py_min(mid, s.pending_low), py_max(mid, s.pending_high));
        if side != s.pending_side
            || s.pending_low <= 0.0
            || (high / low - 1.0) * 10_000.0 > limits.tolerance_bps
        {
            // A new candidate level starts with this tick.
            s.pending_side = side;
            s.pending_count = 0;
            s.pending_first_ms = time_ms;
            s.pending_last_ms = time_ms;
            low = mid;
            high = mid;
        }
        s.pending_count += 1;
        s.pending_low = low;
        s.pending_high = high;
        s.pending_last_ms = s.pending_last_ms.max(time_ms);
        let span_ms = i128::from(s.pending_last_ms) - i128::from(s.pending_first_ms);
        if s.pending_count >= limits.confirm_after && span_ms >= i128::from(limits.confirm_ms) {
            // A level shift held in time and size: follow it.
            s.reference = mid;
            s.reference_ms = s.pending_last_ms;
            s.held = s.pending_count;
            s.pending_side = 0;
            s.pending_count = 0;
            return None;
        }
        spike
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(filter: &mut SpikeFilter, mid: f64) -> i64 {
        let mut at_ms = 1_700_000_000_000;
        for _ in 0..10 {
            assert_eq!(filter.check(at_ms, mid - 0.25, mid + 0.25), None);
            at_ms += 1000;
        }
        at_ms
    }

    #[test]
    fn a_far_tick_is_a_spike_in_the_python_filters_words() {
        let mut filter = SpikeFilter::new(Limits::default());
        let at_ms = settled(&mut filter, 2000.0);
        let rejected = filter.check(at_ms, 2100.0, 2100.0).unwrap();
        assert_eq!(rejected.kind, SpikeKind::Spike);
        assert_eq!(
            rejected.reason(),
            "spike: mid 2100.0 is +500 bps from reference 2000.0"
        );
        let far = filter.check(at_ms, 50_000.0, 50_000.0).unwrap();
        assert_eq!(
            far.reason(),
            "spike: mid 50000.0 is +240000 bps from reference 2000.0, beyond 2.0x of a settled \
             reference: never a level shift"
        );
        let late = filter.check(at_ms - 60_000, 1900.0, 1900.0).unwrap();
        assert_eq!(
            late.reason(),
            "spike: mid 1900.0 is -500 bps from reference 2000.0, stamped before the reference's \
             newest tick"
        );
    }

    #[test]
    fn a_shift_held_in_time_and_size_is_followed() {
        let mut filter = SpikeFilter::new(Limits::default());
        let at_ms = settled(&mut filter, 2000.0);
        let verdicts: Vec<_> = (0..12)
            .map(|i| filter.check(at_ms + 1000 * i, 2100.0, 2100.0))
            .collect();
        assert!(verdicts[..10].iter().all(Option::is_some));
        assert_eq!(verdicts[10], None);
        assert_eq!(filter.state.reference, 2100.0);
    }

    #[test]
    fn the_move_is_written_as_python_formats_it() {
        // format(x, "+.0f") in Python: ties to even on the exact value, the sign of zero kept.
        let cases = [
            (0.5, "+0"),
            (1.5, "+2"),
            (2.5, "+2"),
            (-0.5, "-0"),
            (-0.4, "-0"),
            (0.49999999999999994, "+0"),
            (1e20, "+100000000000000000000"),
            (f64::INFINITY, "+inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "+nan"),
        ];
        for (x, text) in cases {
            assert_eq!(signed_whole(x), text, "{x}");
        }
    }
}
