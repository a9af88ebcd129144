//! The loss checks' first answer: the day's P&L summed in floats, with a bound on the error.
//!
//! Most ticks, fills and signals find the day far above its loss limit; a float sum of the day's
//! parts ([`DayParts`], as the nearest floats) with a bound on its error tells so for a fraction of
//! the exact sums' cost. Only a sum within its bound of the floor goes to the exact valuation.

use crate::valuation::DayParts;

/// A bound on the relative error of a float estimate (sums and products of a few dozen terms).
pub const ESTIMATE_ERROR: f64 = 1.0 / (1u64 << 40) as f64;
/// A float stands within 2**-53 of the number it was made from (relative): twice that, with room.
pub const FLOAT_ROUNDING: f64 = 1.0 / (1u64 << 52) as f64;
/// What a fill carried into a currency's cost adds to its drift, relative to the terms it summed.
const CARRY_ROUNDING: f64 = 1.0 / (1u64 << 50) as f64;

#[derive(Clone, Debug, PartialEq)]
struct FloatLeg {
    symbol: String,
    units: f64,
    cost: f64,
}

#[derive(Clone, Debug, PartialEq)]
struct FloatPart {
    currency: String,
    constant: f64,
    legs: Vec<FloatLeg>,
    /// A bound on the error the fills carried into the part.
    drift: f64,
}

/// The day's parts in floats, carried across fills, and the last answer found clear.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatScreen {
    parts: Vec<FloatPart>,
    /// Below the exact day's P&L at the last question found clear: (estimate - error, error).
    pub cleared: (f64, f64),
}

impl Default for FloatScreen {
    fn default() -> FloatScreen {
        FloatScreen {
            parts: Vec::new(),
            cleared: (f64::NEG_INFINITY, 0.0),
        }
    }
}

/// The floor as a float, raised by that float's own rounding.
pub fn bound(floor: f64) -> f64 {
    floor + floor.abs() * FLOAT_ROUNDING
}

impl FloatScreen {
    pub fn new() -> FloatScreen {
        FloatScreen::default()
    }

    /// Take the exact parts as the nearest floats, with no drift.
    pub fn take(&mut self, parts: &DayParts) {
        self.parts = parts
            .parts
            .iter()
            .map(|part| FloatPart {
                currency: part.currency.clone(),
                constant: part.constant.to_f64(),
                legs: part
                    .legs
                    .iter()
                    .map(|leg| FloatLeg {
                        symbol: leg.symbol.clone(),
                        units: leg.units.to_f64(),
                        cost: leg.cost.to_f64(),
                    })
                    .collect(),
                drift: 0.0,
            })
            .collect();
    }

    /// Carry a fill booked just now: its symbol's leg holds `units` after it and `traded`
    /// (u x p, signed) more cost. At any mid, booking u units at price p moves the day by
    /// u x (mid - p), however the book splits it between realised P&L and cost. The cost's float
    /// errs by the roundings of u, p, u x p and the sum, 5 x 2**-53 of `|cost| + |u x p|` at most,
    /// which the currency's drift adds (2**-50 of it).
    pub fn carry(&mut self, quote: &str, symbol: &str, units: f64, traded: f64) {
        let at = match self.parts.iter().position(|part| part.currency == quote) {
            Some(at) => at,
            None => {
                self.parts.push(FloatPart {
                    currency: quote.to_owned(),
                    constant: 0.0,
                    legs: Vec::new(),
                    drift: 0.0,
                });
                self.parts.len() - 1
            }
        };
        let part = &mut self.parts[at];
        match part.legs.iter_mut().find(|leg| leg.symbol == symbol) {
            Some(leg) => {
                part.drift += CARRY_ROUNDING * (leg.cost.abs() + traded.abs());
                leg.units = units;
                leg.cost += traded;
            }
            None => {
                part.legs.push(FloatLeg {
                    symbol: symbol.to_owned(),
                    units,
                    cost: traded,
                });
                part.drift += CARRY_ROUNDING * traded.abs();
            }
        }
    }

    /// The sum of the parts (each leg at `mid_of(symbol)`, none without a mid; each currency but
    /// `account` times `factor_of(currency)`) and a bound on its error; None when a rate is unknown.
    pub fn value<E>(
        &self,
        account: &str,
        mut mid_of: impl FnMut(&str) -> Result<Option<f64>, E>,
        mut factor_of: impl FnMut(&str) -> Result<Option<f64>, E>,
    ) -> Result<Option<(f64, f64)>, E> {
        let (mut total, mut size, mut drifts) = (0.0, 0.0, 0.0);
        for part in &self.parts {
            let (mut amount, mut terms, mut drift) =
                (part.constant, part.constant.abs(), part.drift);
            for leg in &part.legs {
                let Some(mid) = mid_of(&leg.symbol)? else {
                    continue;
                };
                let value = leg.units * mid;
                amount += value - leg.cost;
                terms += value.abs() + leg.cost.abs();
            }
            if part.currency != account {
                let Some(factor) = factor_of(&part.currency)? else {
                    return Ok(None);
                };
                amount *= factor;
                terms *= factor;
                drift *= factor;
            }
            total += amount;
            size += terms;
            drifts += drift;
        }
        Ok(Some((
            total,
            size * ESTIMATE_ERROR + drifts * (1.0 + ESTIMATE_ERROR),
        )))
    }

    /// Whether `estimate` (from [`FloatScreen::value`]) is above `floor` by more than its error.
    pub fn clears(&mut self, estimate: Option<(f64, f64)>, floor: f64) -> bool {
        let Some((value, error)) = estimate else {
            return false;
        };
        if value - error > bound(floor) {
            self.cleared = (value - error, error);
            return true;
        }
        false
    }

    /// Whether the day, which cleared the floor last, clears it still after one fill of `units`
    /// (lots x contract size x rate) at `price` with the symbol's mid at `mid`: the fill moves the
    /// day by exactly u x (mid - p); its float errs by 2**-40 of u x (mid + p) at most.
    pub fn clears_after(&mut self, units: f64, mid: f64, price: f64, floor: f64) -> bool {
        let (mut low, error) = self.cleared;
        low -= units * (mid - price).abs() + ESTIMATE_ERROR * (units * (mid + price) + error);
        if low > bound(floor) {
            self.cleared = (low, error + ESTIMATE_ERROR * units * (mid + price));
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::positions::Book;
    use crate::rounding::Wide;

    #[test]
    fn a_day_far_above_its_floor_clears_and_one_near_it_does_not() {
        let mut book = Book::new();
        book.fill(crate::money::d("1.0"), crate::money::d("1.1"))
            .unwrap();
        let mut parts = DayParts::new();
        parts.set_realized("USD", Wide::parse("-100").unwrap());
        parts
            .add_position("USD", "EURUSD", &book, 100000.0)
            .unwrap();
        let mut screen = FloatScreen::new();
        screen.take(&parts);
        let estimate = screen
            .value::<()>("USD", |_| Ok(Some(1.1)), |_| Ok(Some(1.0)))
            .unwrap();
        let (value, error) = estimate.unwrap();
        assert!((value + 100.0).abs() < 1e-6 && error > 0.0);
        assert!(screen.clears(estimate, -1000.0));
        assert!(!screen.clears(estimate, -100.0)); // within its error of the floor: unsure
        assert!(screen.clears_after(100000.0, 1.1, 1.1001, -1000.0));
        assert!(!screen.clears_after(100000.0, 1.1, 1.2, -1000.0));
    }

    #[test]
    fn a_carried_fill_moves_the_leg_and_widens_the_drift() {
        let mut screen = FloatScreen::new();
        screen.carry("USD", "EURUSD", 100000.0, 110000.0);
        screen.carry("USD", "EURUSD", 0.0, -120000.0);
        let (value, error) = screen
            .value::<()>("USD", |_| Ok(Some(1.2)), |_| Ok(Some(1.0)))
            .unwrap()
            .unwrap();
        assert!((value - 10000.0).abs() < 1e-6);
        assert!(error >= CARRY_ROUNDING * (110000.0 + 110000.0 + 120000.0));
    }
}
