//! The conversion route between two currencies at the latest mids (the kernel's
//! `tickwave.instruments.conversion_route`): the direct pair, else two legs via USD; each leg a
//! mid that multiplies (the pair's base is the source) or divides. [`QuoteRates`] answers the
//! gate's [`Rates`] from the engine's quotes with no Python.

use crate::maps::HashMap;
use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

use crate::gate::{Limits, Quote, Rates, Spec};

/// The currency a route without a direct pair goes through.
pub const PIVOT: &str = "USD";

/// A route's legs: `(mid, multiplies)`; empty from a currency to itself.
pub type Route = Vec<(f64, bool)>;

/// Each currency's route (None: no rate), as answered.
pub type Routes = HashMap<String, Option<Route>>;

/// The mid of the first quoted pair (by symbol) between `source` and `target` and whether it
/// multiplies; a symbol without a spec or whose mid is not above zero is passed over.
fn pair(
    source: &str,
    target: &str,
    instruments: &HashMap<String, Spec>,
    mids: &[(&str, f64)],
) -> Option<(f64, bool)> {
    mids.iter().find_map(|&(symbol, mid)| {
        let spec = instruments.get(symbol)?;
        // Not `mid > 0.0`: a NaN mid is not "<= 0" either, and the rule passes over only those.
        if mid <= 0.0 {
            return None;
        }
        let forward = spec.base == source && spec.quote == target;
        (forward || (spec.base == target && spec.quote == source)).then_some((mid, forward))
    })
}

/// The pairs a conversion from `source` to `target` goes through at `mids` (sorted by symbol):
/// none to itself, the direct pair, else two via USD; None when a pair has no mid.
pub fn route(
    source: &str,
    target: &str,
    instruments: &HashMap<String, Spec>,
    mids: &[(&str, f64)],
) -> Option<Route> {
    if source == target {
        return Some(Vec::new());
    }
    let direct = pair(source, target, instruments, mids);
    if direct.is_some() || source == PIVOT || target == PIVOT {
        return direct.map(|leg| vec![leg]);
    }
    let first = pair(source, PIVOT, instruments, mids)?;
    let second = pair(PIVOT, target, instruments, mids)?;
    Some(vec![first, second])
}

/// A route's rate in floats: each leg's mid multiplied or divided in turn (1 for the empty route).
pub fn float_rate(route: &[(f64, bool)]) -> f64 {
    route.iter().fold(
        1.0,
        |rate, &(mid, multiplies)| {
            if multiplies {
                rate * mid
            } else {
                rate / mid
            }
        },
    )
}

/// Each quote's mid, sorted by symbol (the order the route reads them in).
pub fn sorted_mids(quotes: &HashMap<String, Quote>) -> Vec<(&str, f64)> {
    let mut mids: Vec<(&str, f64)> = quotes
        .iter()
        .map(|(symbol, quote)| (symbol.as_str(), quote.mid()))
        .collect();
    mids.sort_unstable_by(|a, b| a.0.cmp(b.0));
    mids
}

/// The routes to the account currency at the quotes' mids, each currency's found once (`known`:
/// the answers kept, which the caller may carry over while neither the quotes nor the limits change).
pub struct QuoteRates<'a> {
    /// The instruments table and the account currency (None: no table, no rate).
    pub limits: Option<Arc<Limits>>,
    pub quotes: &'a HashMap<String, Quote>,
    pub known: RefCell<Routes>,
    mids: OnceCell<Vec<(&'a str, f64)>>,
}

impl<'a> QuoteRates<'a> {
    pub fn new(
        limits: Option<Arc<Limits>>,
        quotes: &'a HashMap<String, Quote>,
        known: Routes,
    ) -> Self {
        QuoteRates {
            limits,
            quotes,
            known: RefCell::new(known),
            mids: OnceCell::new(),
        }
    }

    /// Read `mids` (sorted by symbol) instead of the quotes'.
    pub fn at_mids(self, mids: Vec<(&'a str, f64)>) -> Self {
        let _ = self.mids.set(mids);
        self
    }
}

impl Rates for QuoteRates<'_> {
    fn route(&self, currency: &str) -> Option<Route> {
        if let Some(known) = self.known.borrow().get(currency) {
            return known.clone();
        }
        let limits = self.limits.as_ref()?;
        let mids = self.mids.get_or_init(|| sorted_mids(self.quotes));
        let found = route(
            currency,
            &limits.account_currency,
            &limits.instruments,
            mids,
        );
        self.known
            .borrow_mut()
            .insert(currency.to_owned(), found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(base: &str, quote: &str) -> Spec {
        Spec {
            contract_size: 100_000.0,
            base: base.to_owned(),
            quote: quote.to_owned(),
        }
    }

    fn table() -> HashMap<String, Spec> {
        HashMap::from_iter([
            ("EURUSD".to_owned(), spec("EUR", "USD")),
            ("USDJPY".to_owned(), spec("USD", "JPY")),
            ("GBPUSD".to_owned(), spec("GBP", "USD")),
        ])
    }

    #[test]
    fn a_direct_pair_multiplies_from_its_base_and_divides_from_its_quote() {
        let mids = [("EURUSD", 1.25), ("USDJPY", 150.0)];
        assert_eq!(
            route("EUR", "USD", &table(), &mids),
            Some(vec![(1.25, true)])
        );
        assert_eq!(
            route("JPY", "USD", &table(), &mids),
            Some(vec![(150.0, false)])
        );
        assert_eq!(route("USD", "USD", &table(), &mids), Some(vec![]));
    }

    #[test]
    fn without_a_direct_pair_two_legs_via_usd_or_none() {
        let mids = [("EURUSD", 1.25), ("GBPUSD", 1.5), ("USDJPY", 150.0)];
        assert_eq!(
            route("JPY", "EUR", &table(), &mids),
            Some(vec![(150.0, false), (1.25, false)])
        );
        assert_eq!(route("JPY", "GBP", &table(), &mids[..1]), None);
        assert_eq!(route("CHF", "USD", &table(), &mids), None);
    }

    #[test]
    fn a_mid_not_above_zero_or_without_a_spec_is_passed_over() {
        let mids = [("EURUSD", 0.0), ("XEUR", 2.0)];
        let mut instruments = table();
        assert_eq!(route("EUR", "USD", &instruments, &mids), None);
        instruments.insert("AEURUSD".to_owned(), spec("USD", "EUR"));
        let mids = [("AEURUSD", 0.8), ("EURUSD", 1.25)];
        assert_eq!(
            route("EUR", "USD", &instruments, &mids),
            Some(vec![(0.8, false)])
        );
    }
}
