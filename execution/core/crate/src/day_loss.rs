//! The day's loss as the gate and the breakers ask it ([`DayLoss`]), over the engine's state in
//! plain Rust: the trading day's P&L ([`DayParts`]' exact sums, each open leg at its symbol's latest
//! mid, each currency converted once along its route at the latest quotes), screened first in
//! floats ([`FloatScreen`]: most questions find the day far above its floor) and kept per change
//! of what it reads.
//!
//! [`DayValuation`] holds only caches, never state: the exact day by (trading day, P&L revision,
//! limits), its parts by (trading day, books revision, limits), the parts in floats carried across
//! each fill, the last question found clear. The limits are compared by identity (a new `Arc` is
//! new limits), so an operator's limits are valued afresh.

use crate::maps::HashMap;
use std::sync::Arc;

use crate::day_screen::FloatScreen;
use crate::engine_state::EngineState;
use crate::events::OrderFilled;
use crate::gate::{exceeds, DayLoss, Limits, MarketHours, Rates};
use crate::money::Dec;
use crate::rates::{float_rate, Route};
use crate::rounding::Wide;
use crate::valuation::DayParts;

/// Why a day could not be valued: an amount beyond the core's width, a mark without an instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unvalued(pub String);

/// What a question reads: the state, the limits in force, the calendar and the conversion routes
/// at the state's quotes.
pub struct Inputs<'a> {
    pub state: &'a EngineState,
    pub limits: &'a Arc<Limits>,
    pub market: &'a dyn MarketHours,
    pub rates: &'a dyn Rates,
}

/// What a cached answer was worked out for.
#[derive(Debug)]
struct Key {
    day: String,
    revision: i64,
    limits: Arc<Limits>,
}

impl Key {
    fn new(day: &str, revision: i64, limits: &Arc<Limits>) -> Key {
        Key {
            day: day.to_owned(),
            revision,
            limits: Arc::clone(limits),
        }
    }

    fn is(&self, day: &str, revision: i64, limits: &Arc<Limits>) -> bool {
        Arc::ptr_eq(&self.limits, limits) && self.revision == revision && self.day == day
    }
}

/// The last question the float screen found clear.
#[derive(Debug)]
struct Screened {
    pnl_revision: i64,
    books_revision: i64,
    day: String,
    limits: Arc<Limits>,
    floor: Wide,
}

/// The day's P&L of one engine state, valued at most once per change of what it reads (caches only).
#[derive(Debug, Default)]
pub struct DayValuation {
    /// The exact day, by P&L revision (None: a currency has no rate).
    total: Option<(Key, Option<Wide>)>,
    /// What only the books decide of the day, by books revision.
    parts: Option<(Key, DayParts)>,
    /// The parts in floats, current for the key (books revision) held beside them.
    screen: FloatScreen,
    screen_for: Option<Key>,
    screened: Option<Screened>,
    /// The last instant asked and its trading day, by limits (a tick's breakers and a signal at its time ask alike).
    day_at: Option<(i64, Arc<Limits>, String)>,
}

/// The float rate from `currency` to the account currency along its route (None: no rate).
fn factor(rates: &dyn Rates, currency: &str) -> Option<f64> {
    rates.route(currency).map(|route| float_rate(&route))
}

/// The day's parts: per quote currency the day's realised P&L less its marks, and each open
/// position's units and cost (before the day's mark, the open positions have not changed the day).
fn day_parts(state: &EngineState, limits: &Limits, day: &str) -> Result<DayParts, Unvalued> {
    let mut parts = DayParts::new();
    if let Some(realized) = state.realized_by_day.get(day) {
        let mut amounts: Vec<_> = realized.iter().collect();
        amounts.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (currency, amount) in amounts {
            parts.set_realized(currency, Wide::from_dec(*amount));
        }
    }
    if day != state.marked_day {
        return Ok(parts);
    }
    let mut marks: Vec<_> = state.day_marks.iter().collect();
    marks.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (symbol, mark) in marks {
        let spec = limits.instruments.get(symbol).ok_or_else(|| {
            Unvalued(format!("a day's mark of {symbol}, which has no instrument"))
        })?;
        parts.subtract_mark(&spec.quote, &Wide::from_dec(*mark));
    }
    let mut books: Vec<_> = state.books.iter().collect();
    books.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (symbol, book) in books {
        if let Some(spec) = limits.instruments.get(symbol) {
            if !book.lots.is_zero() {
                parts
                    .add_position(&spec.quote, symbol, book, spec.contract_size)
                    .map_err(|bad| Unvalued(bad.0))?;
            }
        }
    }
    Ok(parts)
}

/// The parts of `day` with the books as they are, built once per change of the books or the limits.
fn parts_of<'s>(
    kept: &'s mut Option<(Key, DayParts)>,
    on: &Inputs<'_>,
    day: &str,
) -> Result<&'s DayParts, Unvalued> {
    let revision = on.state.books_revision;
    let current = matches!(kept, Some((key, _)) if key.is(day, revision, on.limits));
    if !current {
        let parts = day_parts(on.state, on.limits, day)?;
        *kept = Some((Key::new(day, revision, on.limits), parts));
    }
    match kept {
        Some((_, parts)) => Ok(parts),
        None => unreachable!("the parts were kept just now"),
    }
}

impl DayValuation {
    pub fn new() -> DayValuation {
        DayValuation::default()
    }

    /// The trading day of `now_ms` (the calendar's; the last instant asked is kept). An empty name
    /// (a table outside its span, a calendar that failed) is never kept.
    pub fn trading_day(&mut self, on: &Inputs<'_>, now_ms: i64) -> String {
        if let Some((at, limits, day)) = &self.day_at {
            if *at == now_ms && Arc::ptr_eq(limits, on.limits) {
                return day.clone();
            }
        }
        let day = on.market.trading_day(now_ms);
        if !day.is_empty() {
            self.day_at = Some((now_ms, Arc::clone(on.limits), day.clone()));
        }
        day
    }

    /// The trading day's P&L in the account currency at `now_ms` (None: a currency has no rate).
    ///
    /// Day P&L = realised today + (unrealised now - unrealised at the day's start, as marked at
    /// the rollover); each currency's sum converted once, at the latest mids. Every sum is exact.
    pub fn daily_pnl(&mut self, on: &Inputs<'_>, now_ms: i64) -> Result<Option<Wide>, Unvalued> {
        let day = self.trading_day(on, now_ms);
        self.pnl_of(on, &day)
    }

    fn pnl_of(&mut self, on: &Inputs<'_>, day: &str) -> Result<Option<Wide>, Unvalued> {
        let revision = on.state.pnl_revision;
        if let Some((key, total)) = &self.total {
            if key.is(day, revision, on.limits) {
                return Ok(total.clone());
            }
        }
        let parts = parts_of(&mut self.parts, on, day)?;
        let account = &on.limits.account_currency;
        let routes: HashMap<&str, Option<Route>> = parts
            .parts
            .iter()
            .filter(|part| part.currency != *account)
            .map(|part| (part.currency.as_str(), on.rates.route(&part.currency)))
            .collect();
        let quotes = &on.state.quotes;
        let total = parts
            .value(
                account,
                |symbol| quotes.get(symbol).map(|quote| quote.mid()),
                |currency| routes.get(currency).and_then(|route| route.as_deref()),
            )
            .map_err(|_| Unvalued("a mid that is not a finite decimal".to_owned()))?;
        self.total = Some((Key::new(day, revision, on.limits), total.clone()));
        Ok(total)
    }

    /// What `daily_pnl(now_ms)` (not None) `> floor` would answer: from the float screen when it can.
    pub fn is_above(
        &mut self,
        on: &Inputs<'_>,
        now_ms: i64,
        floor: &Wide,
    ) -> Result<bool, Unvalued> {
        let day = self.trading_day(on, now_ms);
        let state = on.state;
        if let Some(screened) = &self.screened {
            if screened.pnl_revision == state.pnl_revision
                && screened.books_revision == state.books_revision
                && screened.day == day
                && Arc::ptr_eq(&screened.limits, on.limits)
                && screened.floor == *floor
            {
                return Ok(true);
            }
        }
        let current =
            matches!(&self.screen_for, Some(key) if key.is(&day, state.books_revision, on.limits));
        if !current {
            self.screen.take(parts_of(&mut self.parts, on, &day)?);
            self.screen_for = Some(Key::new(&day, state.books_revision, on.limits));
        }
        let quotes = &state.quotes;
        let estimate = self
            .screen
            .value::<std::convert::Infallible>(
                &on.limits.account_currency,
                |symbol| Ok(quotes.get(symbol).map(|quote| quote.mid())),
                |currency| Ok(factor(on.rates, currency)),
            )
            .unwrap_or_else(|never| match never {});
        if self.screen.clears(estimate, floor.to_f64()) {
            self.screened = Some(Screened {
                pnl_revision: state.pnl_revision,
                books_revision: state.books_revision,
                day,
                limits: Arc::clone(on.limits),
                floor: floor.clone(),
            });
            return Ok(true);
        }
        Ok(self
            .pnl_of(on, &day)?
            .is_some_and(|pnl| exceeds(&pnl, floor)))
    }

    /// [`DayValuation::is_above`] at `fill`'s time, just after it was booked: from the answer before
    /// it when only that fill moved the day.
    pub fn is_above_after(
        &mut self,
        on: &Inputs<'_>,
        fill: &OrderFilled,
        floor: &Wide,
    ) -> Result<bool, Unvalued> {
        let at_ms = fill.header.event_at_ms;
        let day = self.trading_day(on, at_ms);
        let state = on.state;
        self.carry(on, fill, &day);
        let alone = self.screened.as_ref().is_some_and(|screened| {
            Arc::ptr_eq(&screened.limits, on.limits)
                && screened.floor == *floor
                && screened.pnl_revision + 1 == state.pnl_revision
                && screened.books_revision + 1 == state.books_revision // it alone
                && screened.day == state.marked_day
                && state.marked_day == day
        });
        if alone && self.clears_after(on, fill, floor) {
            if let Some(screened) = &mut self.screened {
                screened.pnl_revision = state.pnl_revision;
                screened.books_revision = state.books_revision;
            }
            return Ok(true);
        }
        self.is_above(on, at_ms, floor)
    }

    /// Keep the float parts current across `fill`, booked just now, when they were current just
    /// before it: its leg holds the book's units after it and u x p more cost (signed).
    fn carry(&mut self, on: &Inputs<'_>, fill: &OrderFilled, day: &str) {
        let state = on.state;
        let was_current = matches!(&self.screen_for, Some(key) if key.is(day, state.books_revision - 1, on.limits));
        if !was_current || state.marked_day != day {
            return; // not current before the fill (or the day's legs are not counted yet): taken afresh
        }
        let symbol = fill.header.symbol.as_str();
        let Some(order) = state.orders.get(&fill.header.client_order_id) else {
            return;
        };
        let booked = order.fill_ids.contains(&fill.fill_id);
        let spec = on.limits.instruments.get(symbol);
        let Some(spec) = spec.filter(|_| booked && state.quotes.contains_key(symbol)) else {
            return; // a leg without a mid counts none
        };
        let after = state
            .books
            .get(&*order.symbol)
            .map_or(Dec::ZERO, |book| book.lots);
        let contract = spec.contract_size;
        let mut traded = fill.fill_lots * contract * fill.fill_price;
        if !order.is_buy() && fill.fill_lots > 0.0 {
            traded = -traded; // the position went down
        }
        let units = Wide::from_dec(after).to_f64() * contract;
        self.screen.carry(&spec.quote, symbol, units, traded);
        self.screen_for = Some(Key::new(day, state.books_revision, on.limits));
    }

    /// Whether the day, which cleared the floor last, clears it still after `fill` alone: at the
    /// same mids, booking u units at price p moves the day by exactly u x (mid - p).
    fn clears_after(&mut self, on: &Inputs<'_>, fill: &OrderFilled, floor: &Wide) -> bool {
        let symbol = fill.header.symbol.as_str();
        let (Some(spec), Some(quote)) = (
            on.limits.instruments.get(symbol),
            on.state.quotes.get(symbol),
        ) else {
            return false; // no leg valued: the sums decide
        };
        let rate = if spec.quote == on.limits.account_currency {
            1.0
        } else {
            match factor(on.rates, &spec.quote) {
                Some(rate) => rate,
                None => return false,
            }
        };
        let units = fill.fill_lots * spec.contract_size * rate;
        self.screen
            .clears_after(units, quote.mid(), fill.fill_price, floor.to_f64())
    }
}

/// The day of an engine state as the gate and the breakers ask it: at `now_ms`, or just after
/// `fill` (the only change since the last question). A day that cannot be valued answers as one
/// without a rate (below every floor, no P&L: the order denied, the breaker tripped) and keeps why.
pub struct StateDay<'a> {
    pub valuation: &'a mut DayValuation,
    pub on: Inputs<'a>,
    pub now_ms: i64,
    pub fill: Option<&'a OrderFilled>,
    /// The first reason a question could not be answered.
    pub failed: Option<Unvalued>,
}

impl StateDay<'_> {
    fn kept<T>(&mut self, answer: Result<T, Unvalued>, otherwise: T) -> T {
        answer.unwrap_or_else(|why| {
            self.failed.get_or_insert(why);
            otherwise
        })
    }
}

impl DayLoss for StateDay<'_> {
    fn is_above(&mut self, floor: &Wide) -> bool {
        let answer = match self.fill {
            Some(fill) => self.valuation.is_above_after(&self.on, fill, floor),
            None => self.valuation.is_above(&self.on, self.now_ms, floor),
        };
        self.kept(answer, false)
    }

    fn daily_pnl(&mut self) -> Option<Wide> {
        let answer = self.valuation.daily_pnl(&self.on, self.now_ms);
        self.kept(answer, None)
    }
}

/// A day's P&L known in advance (a risk view built outside the engine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownDay(pub Option<Wide>);

impl DayLoss for KnownDay {
    fn is_above(&mut self, floor: &Wide) -> bool {
        self.0.as_ref().is_some_and(|pnl| exceeds(pnl, floor))
    }

    fn daily_pnl(&mut self) -> Option<Wide> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_state::Context;
    use crate::events::{Event, OrderSubmitted, OrderType, Side};
    use crate::fixtures;
    use crate::gate::{Quote, Spec};
    use crate::rates::QuoteRates;

    const DAY: &str = "2023-11-15";

    struct Calendar;

    impl MarketHours for Calendar {
        fn is_open(&self, _now_ms: i64) -> bool {
            true
        }
        fn trading_day(&self, _now_ms: i64) -> String {
            DAY.to_owned()
        }
    }

    fn limits() -> Arc<Limits> {
        Arc::new(fixtures::limits())
    }

    struct Kernel(Arc<Limits>);

    impl Context for Kernel {
        fn instrument(&self, symbol: &str) -> Option<&Spec> {
            self.0.instruments.get(symbol)
        }
        fn trading_day(&self, _at_ms: i64) -> String {
            DAY.to_owned()
        }
    }

    fn fill(n: usize, symbol: &str, side: Side, lots: f64, price: f64) -> [Event; 2] {
        let header = fixtures::header(n, symbol);
        [
            Event::OrderSubmitted(OrderSubmitted {
                header: header.clone(),
                side,
                quantity_lots: lots,
                order_type: OrderType::Market,
                limit_price: None,
                venue: None,
            }),
            Event::OrderFilled(OrderFilled {
                header,
                fill_id: format!("f{n}"),
                fill_price: price,
                fill_lots: lots,
                cumulative_lots: lots,
                is_final: true,
            }),
        ]
    }

    fn quote(state: &mut EngineState, symbol: &str, mid: f64) {
        let at = Quote {
            time_ms: 1_000,
            bid: mid,
            ask: mid,
        };
        state.observe_tick(symbol, at, 5_000);
        state.pnl_revision += 1; // as the engine's face counts a tick
    }

    fn apply(state: &mut EngineState, limits: &Arc<Limits>, events: &[Event]) {
        for event in events {
            state
                .apply(event, &Kernel(Arc::clone(limits)), None)
                .unwrap();
        }
    }

    /// A day of +5 USD realised on EURUSD and 0.1 lots of USDJPY held from 150, marked flat.
    fn day_state(limits: &Arc<Limits>) -> EngineState {
        let mut state = EngineState::new();
        apply(&mut state, limits, &fill(1, "EURUSD", Side::Buy, 0.1, 1.1));
        apply(
            &mut state,
            limits,
            &fill(2, "EURUSD", Side::Sell, 0.1, 1.1005),
        );
        state.marked_day = DAY.to_owned();
        apply(
            &mut state,
            limits,
            &fill(3, "USDJPY", Side::Buy, 0.1, 150.0),
        );
        quote(&mut state, "EURUSD", 1.1);
        quote(&mut state, "USDJPY", 151.0);
        state
    }

    fn ask<T>(
        state: &EngineState,
        limits: &Arc<Limits>,
        question: impl FnOnce(&Inputs<'_>) -> T,
    ) -> T {
        let rates = QuoteRates::new(Some(Arc::clone(limits)), &state.quotes, Default::default());
        question(&Inputs {
            state,
            limits,
            market: &Calendar,
            rates: &rates,
        })
    }

    fn wide(text: &str) -> Wide {
        Wide::parse(text).unwrap()
    }

    #[test]
    fn the_day_is_its_exact_sums_and_above_a_floor_only_strictly() {
        let limits = limits();
        let state = day_state(&limits);
        let mut valuation = DayValuation::new();
        let pnl = ask(&state, &limits, |on| valuation.daily_pnl(on, 1_000));
        // 5 USD, and 0.1 x 100,000 x (151 - 150) = 10,000 JPY at 151 (28 digits).
        assert_eq!(
            pnl.unwrap().unwrap().to_string(),
            "71.22516556291390728476821192"
        );
        let exact = wide("71.22516556291390728476821192");
        let below = wide("71.22516556291390728476821191");
        for floor in [&exact, &below, &wide("-1000"), &wide("1000")] {
            let expected = floor == &below || floor == &wide("-1000");
            for mut fresh in [DayValuation::new(), DayValuation::new()] {
                let answer = ask(&state, &limits, |on| fresh.is_above(on, 1_000, floor));
                assert_eq!(answer, Ok(expected), "{floor}");
            }
            let kept = ask(&state, &limits, |on| valuation.is_above(on, 1_000, floor));
            assert_eq!(kept, Ok(expected), "{floor}");
        }
    }

    #[test]
    fn after_a_fill_the_carried_answer_is_the_fresh_one() {
        let limits = limits();
        let mut state = day_state(&limits);
        let mut valuation = DayValuation::new();
        let far = wide("-1000");
        assert_eq!(
            ask(&state, &limits, |on| valuation.is_above(on, 1_000, &far)),
            Ok(true)
        );
        let events = fill(4, "USDJPY", Side::Sell, 0.3, 151.5);
        apply(&mut state, &limits, &events);
        let Event::OrderFilled(filled) = &events[1] else {
            unreachable!()
        };
        let mut fresh = DayValuation::new();
        let exact = ask(&state, &limits, |on| fresh.daily_pnl(on, 1_000))
            .unwrap()
            .unwrap();
        for floor in [far.clone(), exact.clone(), wide("-1e-20").add(&exact)] {
            let carried = ask(&state, &limits, |on| {
                valuation.is_above_after(on, filled, &floor)
            });
            let expected = exceeds(&exact, &floor);
            assert_eq!(carried, Ok(expected), "{floor} against {exact}");
            let fresh_answer = ask(&state, &limits, |on| {
                DayValuation::new().is_above(on, 1_000, &floor)
            });
            assert_eq!(fresh_answer, Ok(expected), "{floor} against {exact}");
        }
    }

    #[test]
    fn a_currency_without_a_rate_leaves_the_day_unknown_and_below_every_floor() {
        let limits = limits();
        let mut state = day_state(&limits);
        apply(
            &mut state,
            &limits,
            &fill(4, "USDJPY", Side::Sell, 0.1, 151.0),
        ); // 1,000 JPY realised
        state.quotes.remove("USDJPY");
        state.pnl_revision += 1;
        let mut day = DayValuation::new();
        assert_eq!(
            ask(&state, &limits, |on| day.daily_pnl(on, 1_000)),
            Ok(None)
        );
        assert_eq!(
            ask(&state, &limits, |on| day.is_above(
                on,
                1_000,
                &wide("-1e12")
            )),
            Ok(false)
        );
        let mut known = KnownDay(Some(wide("-1000")));
        assert!(!known.is_above(&wide("-1000")) && known.is_above(&wide("-1000.01")));
    }
}
