//! The trading day's P&L, exact: per quote currency, what only the books decide (the parts), then
//! valued at the latest mids and converted once per currency into the account currency.
//!
//! Day P&L = realised today + (unrealised now - unrealised at the day's start). Per quote currency,
//! the realised P&L less the day's marks and the open positions' cost is a constant, and each open
//! position is a leg worth `units x mid - cost` at its mid: the same exact amount as the sum over
//! its entries. Every sum is exact at any width ([`Wide`]), so the order of the parts changes nothing.

use crate::money::{Dec, NotADecimal};
use crate::positions::Book;
use crate::rounding::{convert, BadRate, Wide};

/// One open position: its units (lots x contract size) and its cost (entry value x contract size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub symbol: String,
    pub units: Wide,
    pub cost: Wide,
}

/// One quote currency's part: the constant and the legs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub currency: String,
    pub constant: Wide,
    pub legs: Vec<Leg>,
}

/// The day's parts, by quote currency in the order first named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayParts {
    pub parts: Vec<Part>,
}

fn zero() -> Wide {
    Wide::new(false, vec![0], 0) // Python's Decimal(0)
}

impl DayParts {
    pub fn new() -> DayParts {
        DayParts::default()
    }

    fn part(&mut self, currency: &str) -> &mut Part {
        let at = match self.parts.iter().position(|part| part.currency == currency) {
            Some(at) => at,
            None => {
                self.parts.push(Part {
                    currency: currency.to_owned(),
                    constant: zero(),
                    legs: Vec::new(),
                });
                self.parts.len() - 1
            }
        };
        &mut self.parts[at]
    }

    /// Start `currency`'s constant at the day's realised P&L in it.
    pub fn set_realized(&mut self, currency: &str, amount: Wide) {
        self.part(currency).constant = amount;
    }

    /// Take a day's mark (an open position's unrealised P&L at the day's start) off its currency.
    pub fn subtract_mark(&mut self, currency: &str, mark: &Wide) {
        let part = self.part(currency);
        part.constant = part.constant.add(&mark.negated());
    }

    /// Add an open position: its units and its cost at `contract_size` (exact).
    pub fn add_position(
        &mut self,
        currency: &str,
        symbol: &str,
        book: &Book,
        contract_size: f64,
    ) -> Result<(), NotADecimal> {
        let contract = Wide::from_dec(Dec::from_float(contract_size)?);
        let entry_value = book
            .entry_value()
            .map_err(|overflow| NotADecimal(overflow.to_string()))?;
        let leg = Leg {
            symbol: symbol.to_owned(),
            units: Wide::from_dec(book.lots).multiply(&contract, usize::MAX),
            cost: Wide::from_dec(entry_value).multiply(&contract, usize::MAX),
        };
        self.part(currency).legs.push(leg);
        Ok(())
    }

    /// The day's P&L in the account currency: each leg valued at `mid_of(symbol)` (a leg without a
    /// mid counts none), each currency's non-zero sum converted along `route_of(currency)` (None:
    /// no rate, and then the day's P&L is unknown: None).
    pub fn value<'a>(
        &self,
        account: &str,
        mut mid_of: impl FnMut(&str) -> Option<f64>,
        mut route_of: impl FnMut(&str) -> Option<&'a [(f64, bool)]>,
    ) -> Result<Option<Wide>, BadRate> {
        let mut total = zero();
        for part in &self.parts {
            let mut amount = part.constant.clone();
            for leg in &part.legs {
                let Some(mid) = mid_of(&leg.symbol) else {
                    continue;
                };
                let mid = Wide::from_dec(Dec::from_float(mid).map_err(|_| BadRate)?);
                let value = leg
                    .units
                    .multiply(&mid, usize::MAX)
                    .add(&leg.cost.negated());
                amount = amount.add(&value);
            }
            if amount.is_zero() {
                continue;
            }
            if part.currency != account {
                let Some(route) = route_of(&part.currency) else {
                    return Ok(None);
                };
                amount = convert(&amount, route)?;
            }
            total = total.add(&amount);
        }
        Ok(Some(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::d;
    use crate::rounding::w;

    #[test]
    fn sums_are_exact_and_keep_the_smaller_exponent() {
        assert_eq!(w("1.10").add(&w("2")).to_string(), "3.10");
        assert_eq!(w("0.5").add(&w("-0.50")).to_string(), "0.00");
        assert_eq!(w("-1").add(&w("0.001")).to_string(), "-0.999");
        assert_eq!(w("-0").add(&w("-0.0")).to_string(), "-0.0");
        assert_eq!(w("9.99").add(&w("0.01")).to_string(), "10.00");
    }

    #[test]
    fn a_day_values_each_leg_at_its_mid_and_converts_each_currency_once() {
        let mut book = Book::new();
        book.fill(d("0.5"), d("150.0")).unwrap();
        let mut parts = DayParts::new();
        parts.set_realized("USD", w("12.5"));
        parts
            .add_position("JPY", "USDJPY", &book, 100000.0)
            .unwrap();
        parts.subtract_mark("JPY", &w("1000"));
        let route = [(151.0, false)];
        let value = parts
            .value(
                "USD",
                |symbol| (symbol == "USDJPY").then_some(151.0),
                |currency| (currency == "JPY").then_some(&route[..]),
            )
            .unwrap()
            .unwrap();
        // 0.5 lots x 100,000 x (151 - 150) = 50,000 JPY, less the mark 1,000: 49,000 / 151 USD, plus 12.5.
        assert_eq!(value.to_string(), "337.0033112582781456953642384");
        let no_rate = parts.value("USD", |_| Some(151.0), |_| None).unwrap();
        assert_eq!(no_rate, None);
    }
}
