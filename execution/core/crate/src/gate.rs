//! The pre-trade gate (no Python): every check in its order, each with its denial's exact words,
//! and the gate's two passes, [`first_denial`] (a signal's order) and [`operator_denial`] (an
//! operator's reduce-only close).
//!
//! A check reads the proposed order ([`Proposed`]), what the engine knows ([`View`]) and the
//! limits ([`Limits`]); it changes nothing. What the kernel decides is asked, never copied: the
//! market's hours ([`MarketHours`]), the conversion route of a currency at the latest mids
//! ([`Rates`], `rates.rs`'s in Rust) and the day's P&L ([`DayLoss`], the valuation's). The collar, the order rate and
//! the flash-crash window are `risk.rs`.

use std::collections::VecDeque;

use crate::maps::{HashMap, HashMapExt, HashSet};

// A float estimate's error bound, relative to the sum of its terms, and a float's own (`day_screen.rs`'s).
use crate::day_screen::{ESTIMATE_ERROR, FLOAT_ROUNDING};
use crate::events::py_repr;
use crate::money::{Dec, Overflow};
use crate::rates::float_rate;
use crate::risk::{self, CollarBreach};
use crate::rounding::{self, Wide};

/// Which breaker a denial trips, beyond refusing the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halts {
    Nothing,
    Trading,
    Symbol,
}

impl Halts {
    /// The facade's name of it (`Denial.halts`).
    pub fn name(self) -> &'static str {
        match self {
            Halts::Nothing => "",
            Halts::Trading => "trading",
            Halts::Symbol => "symbol",
        }
    }
}

/// Why the gate refuses an order: the check, its words, and the breaker it trips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub check: &'static str,
    pub reason: String,
    pub halts: Halts,
}

fn denial(check: &'static str, reason: String) -> Option<Denial> {
    Some(Denial {
        check,
        reason,
        halts: Halts::Nothing,
    })
}

/// True when `signed` lots bring `current` (working orders included) towards flat without crossing it.
pub fn is_reducing(current: Dec, signed: Dec) -> Result<bool, Overflow> {
    let after = current.checked_add(signed)?;
    Ok(!current.is_zero()
        && after.abs().cmp_value(current.abs()).is_lt()
        && (after.is_zero() || after.is_positive() == current.is_positive()))
}

/// A signal of another timeframe than the one that drives its symbol says nothing about the position.
pub fn signal_timeframe(symbol: &str, timeframe: &str, driver: &str) -> Option<Denial> {
    if timeframe == driver {
        return None;
    }
    denial(
        "signal_timeframe",
        format!("{timeframe} signal; {symbol} is driven by {driver} signals"),
    )
}

/// HALTED (globally or for the symbol) denies all; REDUCING denies what does not reduce.
pub fn trading_state(
    state: &str,
    symbol: &str,
    symbol_halted: bool,
    reducing: bool,
) -> Option<Denial> {
    if state == "HALTED" {
        return denial("trading_state", "trading is HALTED".to_owned());
    }
    if symbol_halted {
        return denial("trading_state", format!("{symbol} is HALTED"));
    }
    if state == "REDUCING" && !reducing {
        return denial(
            "trading_state",
            "REDUCING: the order would not reduce the position".to_owned(),
        );
    }
    None
}

/// A signal older than the TTL.
pub fn signal_ttl(age_ms: i64, ttl_ms: i64) -> Option<Denial> {
    if age_ms > ttl_ms {
        return denial(
            "signal_ttl",
            format!("signal is {age_ms} ms old (ttl {ttl_ms} ms)"),
        );
    }
    None
}

/// An order larger than the largest order size.
pub fn max_order_size(quantity_lots: f64, max_order_lots: f64) -> Option<Denial> {
    if quantity_lots > max_order_lots {
        return denial(
            "max_order_size",
            format!(
                "{} lots exceeds {}",
                py_repr(quantity_lots),
                py_repr(max_order_lots)
            ),
        );
    }
    None
}

/// Why `symbol` has no usable price: no tick (`tick_time_ms` None), or one older than `max_age_ms`.
pub fn stale_price(
    symbol: &str,
    tick_time_ms: Option<i64>,
    now_ms: i64,
    max_age_ms: i64,
) -> Option<String> {
    match tick_time_ms {
        None => Some(format!("no price for {symbol} yet")),
        Some(time_ms) if now_ms - time_ms > max_age_ms => Some(format!(
            "latest {symbol} tick is {} ms old",
            now_ms - time_ms
        )),
        Some(_) => None,
    }
}

/// An order that leaves the position (`exposure` with working orders, plus `signed` lots) beyond
/// `max_position_lots`; an order that only reduces passes.
pub fn max_position(
    exposure: Dec,
    signed: Dec,
    reducing: bool,
    max_position_lots: f64,
) -> Result<Option<Denial>, Overflow> {
    if reducing {
        return Ok(None);
    }
    let after = exposure.checked_add(signed)?;
    let limit = Dec::from_float(max_position_lots).map_err(|_| Overflow)?;
    if after.abs().cmp_value(limit).is_gt() {
        return Ok(denial(
            "max_position",
            format!(
                "position would be {after} lots (limit {})",
                py_repr(max_position_lots)
            ),
        ));
    }
    Ok(None)
}

/// Too many broker rejects in a row: denied, and trading halts.
pub fn consecutive_rejects(rejects: i64, max_rejects: i64) -> Option<Denial> {
    if rejects >= max_rejects {
        return Some(Denial {
            check: "consecutive_rejects",
            reason: format!("{rejects} broker rejects in a row"),
            halts: Halts::Trading,
        });
    }
    None
}

/// The symbol's mid moved more than `threshold_pct` within the window: denied, and the symbol halts.
pub fn flash_crash(
    symbol: &str,
    move_pct: f64,
    threshold_pct: f64,
    window_ms: i64,
) -> Option<Denial> {
    if move_pct > threshold_pct {
        return Some(Denial {
            check: "flash_crash",
            reason: flash_crash_words(symbol, move_pct, window_ms),
            halts: Halts::Symbol,
        });
    }
    None
}

/// The flash-crash breaker's words (the gate's denial and the tick's halt say the same).
pub fn flash_crash_words(symbol: &str, move_pct: f64, window_ms: i64) -> String {
    format!("{symbol} moved {move_pct:.2}% within {window_ms} ms")
}

// ---------------------------------------------------------------------------------------------
// What the gate reads
// ---------------------------------------------------------------------------------------------

/// The market's hours and trading day (`market.rs`: the kernel's calendar, or its generated table).
pub use crate::market::MarketHours;

/// The kernel's conversion route from `currency` to the account currency at the latest mids:
/// `(mid, multiplies)` pairs (empty: the account currency itself), or None when a rate is missing.
pub trait Rates {
    fn route(&self, currency: &str) -> Option<Vec<(f64, bool)>>;
}

/// The day's P&L in the account currency, as the valuation values it.
pub trait DayLoss {
    /// What `daily_pnl() > floor` would answer (a known P&L only); it may answer without the exact sums.
    fn is_above(&mut self, floor: &Wide) -> bool;
    /// The day's P&L (None: a currency of it has no rate).
    fn daily_pnl(&mut self) -> Option<Wide>;
}

/// An instrument's facts the gate values a leg with.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub contract_size: f64,
    /// The currency one lot buys (the conversion route's pairs read it with `quote`).
    pub base: String,
    pub quote: String,
}

/// The limits the checks enforce (`execution.core.limits.RiskLimits`, but the calendar).
#[derive(Clone, Debug)]
pub struct Limits {
    pub allowed_symbols: HashSet<String>,
    pub signal_ttl_ms: i64,
    pub max_order_lots: f64,
    pub max_position_lots: f64,
    pub max_gross_exposure: Wide,
    pub instruments: HashMap<String, Spec>,
    pub account_currency: String,
    pub max_tick_age_ms: i64,
    pub price_collar_bps: f64,
    pub max_orders_per_second: i64,
    pub daily_loss_limit: Wide,
    pub daily_loss_action: String,
    pub max_consecutive_rejects: i64,
    pub flash_crash_pct: f64,
    pub flash_crash_window_ms: i64,
    pub signal_timeframe: String,
    pub signal_timeframes: HashMap<String, String>,
}

impl Limits {
    /// The timeframe whose signals drive `symbol`'s position (one driver per symbol).
    pub fn driving_timeframe(&self, symbol: &str) -> &str {
        self.signal_timeframes
            .get(symbol)
            .unwrap_or(&self.signal_timeframe)
    }

    /// The floor of the day's P&L: minus the daily loss limit.
    pub fn loss_floor(&self) -> Wide {
        self.daily_loss_limit.negated()
    }
}

/// A symbol's latest quote (`paper.rs`'s).
pub use crate::paper::Quote;

/// What the checks read of the engine's state (never changed by a check).
pub struct View<'a> {
    pub trading_state: &'a str,
    pub halted_symbols: &'a HashSet<String>,
    pub positions: &'a HashMap<String, Dec>,
    /// Signed lots of working orders not yet filled.
    pub pending: &'a HashMap<String, Dec>,
    pub quotes: &'a HashMap<String, Quote>,
    /// When each order of the rate's window was sent, in time order.
    pub order_times_ms: &'a VecDeque<i64>,
    pub consecutive_rejects: i64,
}

impl View<'_> {
    /// The position as if every working order filled: what the limits must hold for.
    pub fn exposure_lots(&self, symbol: &str) -> Result<Dec, Overflow> {
        let held = self.positions.get(symbol).copied().unwrap_or(Dec::ZERO);
        held.checked_add(self.pending.get(symbol).copied().unwrap_or(Dec::ZERO))
    }
}

/// The sized order a signal (or an operator) asks for, before the gate.
#[derive(Clone, Debug)]
pub struct Proposed<'a> {
    pub symbol: &'a str,
    pub is_buy: bool,
    pub quantity_lots: f64,
    pub limit_price: Option<f64>,
    /// When its signal was created.
    pub created_at_ms: i64,
}

impl Proposed<'_> {
    /// The order's lots, signed by its side (exactly, from the float's shortest text).
    pub fn signed_lots(&self) -> Result<Dec, Overflow> {
        let lots = Dec::from_float(self.quantity_lots).map_err(|_| Overflow)?;
        Ok(if self.is_buy { lots } else { lots.negated() })
    }
}

/// What the gate asks the kernel and the valuation, and the order's symbol's move in its window.
pub struct Answers<'a> {
    pub market: &'a dyn MarketHours,
    pub rates: &'a dyn Rates,
    pub day: &'a mut dyn DayLoss,
    /// The order's symbol's high-low move over the flash-crash window, in percent.
    pub move_pct: f64,
}

// ---------------------------------------------------------------------------------------------
// The checks, in gate order
// ---------------------------------------------------------------------------------------------

/// The gate's checks; [`CHECKS`] is their documented order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    TradingState,
    SymbolAllowed,
    MarketOpen,
    SignalTtl,
    MaxOrderSize,
    NoPrice,
    MaxPosition,
    GrossExposure,
    PriceCollar,
    OrderRate,
    DailyLoss,
    ConsecutiveRejects,
    FlashCrash,
}

impl Check {
    /// The check's name, as its denials and the facade's functions (`check_<name>`) say it.
    pub fn name(self) -> &'static str {
        match self {
            Check::TradingState => "trading_state",
            Check::SymbolAllowed => "symbol_allowed",
            Check::MarketOpen => "market_open",
            Check::SignalTtl => "signal_ttl",
            Check::MaxOrderSize => "max_order_size",
            Check::NoPrice => "no_price",
            Check::MaxPosition => "max_position",
            Check::GrossExposure => "gross_exposure",
            Check::PriceCollar => "price_collar",
            Check::OrderRate => "order_rate",
            Check::DailyLoss => "daily_loss",
            Check::ConsecutiveRejects => "consecutive_rejects",
            Check::FlashCrash => "flash_crash",
        }
    }

    /// The check of that name.
    pub fn named(name: &str) -> Option<Check> {
        CHECKS.iter().copied().find(|check| check.name() == name)
    }
}

/// Every check of a signal's order, in order.
pub const CHECKS: [Check; 13] = [
    Check::TradingState,
    Check::SymbolAllowed,
    Check::MarketOpen,
    Check::SignalTtl,
    Check::MaxOrderSize,
    Check::NoPrice,
    Check::MaxPosition,
    Check::GrossExposure,
    Check::PriceCollar,
    Check::OrderRate,
    Check::DailyLoss,
    Check::ConsecutiveRejects,
    Check::FlashCrash,
];

/// An operator's reduce-only order (flatten, a protective stop): the gate without the trading
/// state (it must work while HALTED), the signal's age and the breakers' trips; price, collar and
/// rate stay.
pub const OPERATOR_CHECKS: [Check; 6] = [
    Check::SymbolAllowed,
    Check::MarketOpen,
    Check::MaxOrderSize,
    Check::NoPrice,
    Check::PriceCollar,
    Check::OrderRate,
];

/// Run every check in order; the first denial, or None when the order may go.
pub fn first_denial(
    order: &Proposed<'_>,
    view: &View<'_>,
    limits: &Limits,
    answers: &mut Answers<'_>,
    now_ms: i64,
) -> Result<Option<Denial>, Overflow> {
    first_of(&CHECKS, order, view, limits, answers, now_ms)
}

/// Run the operator checks on an order that must only reduce; the first denial, or None.
pub fn operator_denial(
    order: &Proposed<'_>,
    view: &View<'_>,
    limits: &Limits,
    answers: &mut Answers<'_>,
    now_ms: i64,
) -> Result<Option<Denial>, Overflow> {
    if !is_reducing(view.exposure_lots(order.symbol)?, order.signed_lots()?)? {
        return Ok(denial(
            "reduce_only",
            "an operator's flatten order must only reduce the position".to_owned(),
        ));
    }
    first_of(&OPERATOR_CHECKS, order, view, limits, answers, now_ms)
}

/// Run `checks` in their order on one order; the first denial, or None.
pub fn first_of(
    checks: &[Check],
    order: &Proposed<'_>,
    view: &View<'_>,
    limits: &Limits,
    answers: &mut Answers<'_>,
    now_ms: i64,
) -> Result<Option<Denial>, Overflow> {
    let signed = order.signed_lots()?;
    let exposure = view.exposure_lots(order.symbol)?;
    let reducing = is_reducing(exposure, signed)?; // asked by several checks: one answer for the pass
    for &check in checks {
        let found = match check {
            Check::TradingState => trading_state(
                view.trading_state,
                order.symbol,
                view.halted_symbols.contains(order.symbol),
                reducing,
            ),
            Check::SymbolAllowed => symbol_allowed(order.symbol, &limits.allowed_symbols),
            Check::MarketOpen => market_open(answers.market.is_open(now_ms)),
            Check::SignalTtl => signal_ttl(now_ms - order.created_at_ms, limits.signal_ttl_ms),
            Check::MaxOrderSize => max_order_size(order.quantity_lots, limits.max_order_lots),
            Check::NoPrice => no_price(order.symbol, view, limits, now_ms),
            Check::MaxPosition => {
                max_position(exposure, signed, reducing, limits.max_position_lots)?
            }
            Check::GrossExposure if reducing => None,
            Check::GrossExposure => {
                gross_exposure(order.symbol, signed, view, limits, answers.rates)
            }
            Check::PriceCollar => price_collar(order, view, limits, now_ms),
            Check::OrderRate => {
                order_rate(view.order_times_ms, now_ms, limits.max_orders_per_second)
            }
            Check::DailyLoss if reducing => None,
            Check::DailyLoss => daily_loss(limits, answers.day),
            Check::ConsecutiveRejects => {
                consecutive_rejects(view.consecutive_rejects, limits.max_consecutive_rejects)
            }
            Check::FlashCrash => flash_crash(
                order.symbol,
                answers.move_pct,
                limits.flash_crash_pct,
                limits.flash_crash_window_ms,
            ),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// A symbol outside the allowed list.
pub fn symbol_allowed(symbol: &str, allowed: &HashSet<String>) -> Option<Denial> {
    if allowed.contains(symbol) {
        return None;
    }
    denial(
        "symbol_allowed",
        format!("{symbol} is not an allowed symbol"),
    )
}

/// The market is closed.
pub fn market_open(is_open: bool) -> Option<Denial> {
    if is_open {
        return None;
    }
    denial("market_open", "the market is closed".to_owned())
}

fn no_price(symbol: &str, view: &View<'_>, limits: &Limits, now_ms: i64) -> Option<Denial> {
    let time_ms = view.quotes.get(symbol).map(|quote| quote.time_ms);
    stale_price(symbol, time_ms, now_ms, limits.max_tick_age_ms)
        .and_then(|problem| denial("no_price", problem))
}

/// Without a usable price, on a spread too wide, or a limit price far from mid.
fn price_collar(
    order: &Proposed<'_>,
    view: &View<'_>,
    limits: &Limits,
    now_ms: i64,
) -> Option<Denial> {
    let quote = view.quotes.get(order.symbol);
    let time_ms = quote.map(|quote| quote.time_ms);
    if let Some(problem) = stale_price(order.symbol, time_ms, now_ms, limits.max_tick_age_ms) {
        return denial("price_collar", problem);
    }
    let quote = quote?;
    let collar = limits.price_collar_bps;
    match risk::collar_breach(quote.bid, quote.ask, order.limit_price, collar)? {
        CollarBreach::Spread(bps) => denial(
            "price_collar",
            format!("spread {bps:.1} bps exceeds the collar {}", py_repr(collar)),
        ),
        CollarBreach::LimitDistance(bps) => denial(
            "price_collar",
            format!("limit price is {bps:.1} bps from mid"),
        ),
    }
}

/// The last second already holds the allowed number of orders.
pub fn order_rate(sent_ms: &VecDeque<i64>, now_ms: i64, max_per_second: i64) -> Option<Denial> {
    let recent = risk::rate_breach(
        sent_ms.iter().copied(),
        sent_ms.len(),
        now_ms,
        max_per_second,
    )?;
    denial(
        "order_rate",
        format!("{recent} orders in the last second (limit {max_per_second})"),
    )
}

/// `a > b`, exactly.
pub fn exceeds(a: &Wide, b: &Wide) -> bool {
    let difference = a.add(&b.negated());
    !difference.is_zero() && !difference.negative
}

/// Python's `f"{amount:.2f}"` of a `Decimal` (half even, at two places).
pub fn cents(amount: &Wide) -> String {
    amount.quantize(2).to_string()
}

/// Once the day's loss reaches the limit (or cannot be valued): denied, and trading moves to
/// the limits' `daily_loss_action`. The caller lets an order that only reduces through.
pub fn daily_loss(limits: &Limits, day: &mut dyn DayLoss) -> Option<Denial> {
    let floor = limits.loss_floor();
    if day.is_above(&floor) {
        return None; // the day's loss is short of the limit
    }
    let Some(pnl) = day.daily_pnl() else {
        return denial(
            "no_rate",
            format!(
                "the day's P&L cannot be valued in {} (a rate is missing)",
                limits.account_currency
            ),
        );
    };
    if exceeds(&pnl, &floor) {
        return None;
    }
    Some(Denial {
        check: "daily_loss",
        reason: format!(
            "daily P&L {} breaches -{}",
            cents(&pnl),
            limits.daily_loss_limit
        ),
        halts: Halts::Trading,
    })
}

/// The legs of a gross exposure after an order: each symbol held, working or ordered with its
/// signed lots (the order's added to its symbol's), by symbol, flat ones left out.
fn legs<'a>(
    symbol: &'a str,
    signed: Dec,
    view: &View<'a>,
) -> Result<Vec<(&'a str, Dec)>, Overflow> {
    let mut symbols: Vec<&str> = view
        .positions
        .keys()
        .chain(view.pending.keys())
        .map(String::as_str)
        .chain(std::iter::once(symbol))
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    let mut legs = Vec::with_capacity(symbols.len());
    for held in symbols {
        let mut lots = view.exposure_lots(held)?;
        if held == symbol {
            lots = lots.checked_add(signed)?;
        }
        if !lots.is_zero() {
            legs.push((held, lots));
        }
    }
    Ok(legs)
}

/// |`lots`| x contract size x the symbol's mid in the account currency (exact; each conversion
/// step to 28 digits), or None without a spec, a price or a rate.
pub fn exposure(
    symbol: &str,
    lots: Dec,
    quotes: &HashMap<String, Quote>,
    limits: &Limits,
    rates: &dyn Rates,
) -> Option<Wide> {
    let (spec, quote) = (limits.instruments.get(symbol)?, quotes.get(symbol)?);
    let exact = |x: f64| Dec::from_float(x).ok().map(Wide::from_dec);
    let units = Wide::from_dec(lots.abs()).multiply(&exact(spec.contract_size)?, EXACT_DIGITS);
    let notional = units.multiply(&exact(quote.mid())?, EXACT_DIGITS);
    if spec.quote == limits.account_currency {
        return Some(notional);
    }
    rounding::convert(&notional, &rates.route(&spec.quote)?).ok()
}

// Digits enough for any exact product of two floats' texts (the money context's 1,000).
const EXACT_DIGITS: usize = 1000;

/// True when the gross exposure of `legs`, summed in floats, is under the limit by its error
/// bound: the exact sum is then under it too (false: unsure, or a leg has no spec, price or rate).
fn clears(legs: &[(&str, Dec)], view: &View<'_>, limits: &Limits, rates: &dyn Rates) -> bool {
    let mut rate_of: HashMap<&str, Option<f64>> = HashMap::new();
    let mut total = 0.0;
    for &(held, lots) in legs {
        let (Some(spec), Some(quote)) = (limits.instruments.get(held), view.quotes.get(held))
        else {
            return false;
        };
        let rate = *rate_of.entry(spec.quote.as_str()).or_insert_with(|| {
            if spec.quote == limits.account_currency {
                return Some(1.0);
            }
            rates.route(&spec.quote).map(|route| float_rate(&route))
        });
        let Some(rate) = rate else {
            return false;
        };
        let lots = Wide::from_dec(lots.abs()).to_f64();
        total += lots * spec.contract_size * quote.mid() * rate;
    }
    let limit = limits.max_gross_exposure.to_f64();
    total + total * ESTIMATE_ERROR < limit - limit.abs() * FLOAT_ROUNDING
}

/// An order that takes the gross exposure (account currency) over its limit; every leg needs a
/// rate. First summed in floats with a bound on their error; only a sum within it of the limit is
/// summed exactly. The caller lets an order that only reduces through.
pub fn gross_exposure(
    symbol: &str,
    signed: Dec,
    view: &View<'_>,
    limits: &Limits,
    rates: &dyn Rates,
) -> Option<Denial> {
    if !limits.instruments.contains_key(symbol) {
        return denial("instrument", format!("no instrument spec for {symbol}"));
    }
    let Ok(legs) = legs(symbol, signed, view) else {
        return denial("gross_exposure", "the exposure's lots overflow".to_owned());
    };
    if clears(&legs, view, limits, rates) {
        return None; // far under the limit, as most orders are: no exact sum needed
    }
    let mut total = Wide::from_dec(Dec::ZERO);
    for (held, lots) in legs {
        let Some(amount) = exposure(held, lots, view.quotes, limits, rates) else {
            let currency = limits
                .instruments
                .get(held)
                .map_or(held, |spec| spec.quote.as_str());
            return denial(
                "no_rate",
                format!(
                    "no rate to value {held} ({currency} -> {})",
                    limits.account_currency
                ),
            );
        };
        total = total.add(&amount);
    }
    if exceeds(&total, &limits.max_gross_exposure) {
        return denial(
            "gross_exposure",
            format!(
                "gross exposure would be {} (limit {})",
                cents(&total),
                limits.max_gross_exposure
            ),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::day_loss::KnownDay;
    use crate::fixtures;
    use crate::maps::HashSetExt;

    fn dec(text: &str) -> Dec {
        Dec::parse(text).unwrap()
    }

    #[test]
    fn reducing_only_towards_flat() {
        assert!(is_reducing(dec("1.0"), dec("-0.5")).unwrap());
        assert!(is_reducing(dec("1.0"), dec("-1.0")).unwrap());
        assert!(!is_reducing(dec("1.0"), dec("-1.5")).unwrap());
        assert!(!is_reducing(dec("0"), dec("-1")).unwrap());
        assert!(!is_reducing(dec("-1"), dec("-1")).unwrap());
    }

    #[test]
    fn position_at_the_limit_passes_beyond_it_is_denied() {
        assert_eq!(
            max_position(dec("1.5"), dec("0.5"), false, 2.0).unwrap(),
            None
        );
        let beyond = max_position(dec("1.5"), dec("0.6"), false, 2.0)
            .unwrap()
            .unwrap();
        assert_eq!(beyond.reason, "position would be 2.1 lots (limit 2.0)");
        assert_eq!(max_position(dec("-3"), dec("1"), true, 2.0).unwrap(), None);
    }

    #[test]
    fn python_texts() {
        assert_eq!(py_repr(10.0), "10.0");
        assert_eq!(py_repr(0.0001), "0.0001");
        assert_eq!(py_repr(0.00001), "1e-05");
        assert_eq!(py_repr(1e16), "1e+16");
        assert_eq!(py_repr(1.5e-300), "1.5e-300");
        assert_eq!(py_repr(-0.0), "-0.0");
        assert_eq!(
            flash_crash_words("X", 0.125, 5),
            "X moved 0.12% within 5 ms"
        );
        assert_eq!(
            flash_crash_words("X", 0.375, 5),
            "X moved 0.38% within 5 ms"
        );
    }

    struct Open;
    impl MarketHours for Open {
        fn is_open(&self, _now_ms: i64) -> bool {
            true
        }
        fn trading_day(&self, _now_ms: i64) -> String {
            "2024-01-03".to_owned()
        }
    }

    struct NoConversion;
    impl Rates for NoConversion {
        fn route(&self, _currency: &str) -> Option<Vec<(f64, bool)>> {
            None
        }
    }

    fn wide(text: &str) -> Wide {
        Wide::parse(text).unwrap()
    }

    /// The crate's test limits with EURUSD alone allowed and known.
    fn limits(max_gross_exposure: &str, daily_loss_limit: &str) -> Limits {
        Limits {
            allowed_symbols: HashSet::from_iter(["EURUSD".to_owned()]),
            max_gross_exposure: wide(max_gross_exposure),
            instruments: HashMap::from_iter([("EURUSD".to_owned(), fixtures::spec("EUR", "USD"))]),
            daily_loss_limit: wide(daily_loss_limit),
            ..fixtures::limits()
        }
    }

    /// The gate on a buy of `lots` EURUSD at 1.25 from flat, the day at `pnl`.
    fn gate_on(lots: f64, limits: &Limits, pnl: &str) -> Option<Denial> {
        let quote = Quote {
            bid: 1.25,
            ask: 1.25,
            time_ms: 1_000,
        };
        let (positions, pending) = (HashMap::new(), HashMap::new());
        let quotes = HashMap::from_iter([("EURUSD".to_owned(), quote)]);
        let (halted, sent) = (HashSet::new(), VecDeque::new());
        let view = View {
            trading_state: "ACTIVE",
            halted_symbols: &halted,
            positions: &positions,
            pending: &pending,
            quotes: &quotes,
            order_times_ms: &sent,
            consecutive_rejects: 0,
        };
        let order = Proposed {
            symbol: "EURUSD",
            is_buy: true,
            quantity_lots: lots,
            limit_price: None,
            created_at_ms: 1_000,
        };
        let mut day = KnownDay(Some(wide(pnl)));
        let mut answers = Answers {
            market: &Open,
            rates: &NoConversion,
            day: &mut day,
            move_pct: 0.0,
        };
        first_denial(&order, &view, limits, &mut answers, 1_000).unwrap()
    }

    #[test]
    fn gross_exposure_at_the_limit_passes_a_cent_over_is_denied() {
        // 0.5 lots x 100,000 x 1.25 = 62,500 exactly
        assert_eq!(gate_on(0.5, &limits("62500", "1000"), "0"), None);
        let over = gate_on(0.5, &limits("62499.99", "1000"), "0").unwrap();
        assert_eq!(over.check, "gross_exposure");
        assert_eq!(
            over.reason,
            "gross exposure would be 62500.00 (limit 62499.99)"
        );
    }

    #[test]
    fn daily_loss_at_the_limit_is_denied_a_cent_short_passes() {
        let limits = limits("1e9", "1000");
        assert_eq!(gate_on(0.5, &limits, "-999.99"), None);
        let at = gate_on(0.5, &limits, "-1000.004").unwrap();
        assert_eq!(
            (at.check, at.reason.as_str(), at.halts),
            (
                "daily_loss",
                "daily P&L -1000.00 breaches -1000",
                Halts::Trading
            )
        );
        assert_eq!(gate_on(0.5, &limits, "-1000").unwrap().check, "daily_loss");
    }

    #[test]
    fn checks_run_in_their_order_and_the_first_denial_wins() {
        // over the order size and the exposure: the size is checked first
        let denial = gate_on(12.0, &limits("1", "1000"), "-5000").unwrap();
        assert_eq!(denial.check, "max_order_size");
        assert_eq!(Check::named("flash_crash"), Some(Check::FlashCrash));
        assert_eq!(CHECKS.len(), 13);
    }
}
