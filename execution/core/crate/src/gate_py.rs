//! The gate's Python face (`tickwave_core.gate_denial`, `gate_checks`, `exposure`,
//! `conversion_route`): conversions only, the rules are `gate.rs` and `rates.rs`.
//!
//! The engine's state answers from its own values (`EngineState.first_denial`); these functions
//! answer for a risk view built outside it (`execution.core.risk.RiskView`), read field by field.
//! What the kernel decides is asked of it: the calendar (`limits.market`) and the day's P&L (the
//! view's `day_pnl`, asked once for the whole pass); the conversion route is `rates.rs`'s, over the
//! limits' instruments table.

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::maps::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::day_loss::KnownDay;
use crate::decide;
use crate::events::Event;
use crate::events_py::{event_from_py, event_to_py};
use crate::gate::{self, Answers, Check, Limits, MarketHours, Proposed, Quote, Spec, View};
use crate::ids;
use crate::money::Dec;
use crate::rates::{self, QuoteRates};
use crate::rounding::Wide;
use crate::{overflow, to_dec, PyPriceWindow};

static DECIMAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
// The limits last converted and their Rust value (limits are replaced, never changed: identity tells).
static LAST_LIMITS: Mutex<Option<(Py<PyAny>, Arc<Limits>)>> = Mutex::new(None);

pub(crate) use crate::rates::Routes;

/// A denial as the facade takes it: `(check, reason, halts)`.
pub(crate) type PyDenial = Option<(&'static str, String, &'static str)>;

pub(crate) fn py_denial(found: Option<gate::Denial>) -> PyDenial {
    found.map(|denial| (denial.check, denial.reason, denial.halts.name()))
}

fn wide(value: &Bound<'_, PyAny>) -> PyResult<Wide> {
    Wide::parse(value.str()?.to_str()?).map_err(|bad| {
        pyo3::exceptions::PyValueError::new_err(format!("not a finite decimal: {:?}", bad.0))
    })
}

fn text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.cast::<PyString>()?.to_str()?.to_owned())
}

/// The Rust value of a `RiskLimits` (kept for the last one converted).
pub(crate) fn limits_of(limits: &Bound<'_, PyAny>) -> PyResult<Arc<Limits>> {
    let py = limits.py();
    if let Ok(last) = LAST_LIMITS.lock() {
        if let Some((object, converted)) = last.as_ref() {
            if object.bind(py).is(limits) {
                return Ok(Arc::clone(converted));
            }
        }
    }
    let converted = Arc::new(convert_limits(limits)?);
    if let Ok(mut last) = LAST_LIMITS.lock() {
        *last = Some((limits.clone().unbind(), Arc::clone(&converted)));
    }
    Ok(converted)
}

fn convert_limits(limits: &Bound<'_, PyAny>) -> PyResult<Limits> {
    let get = |name: &str| limits.getattr(name);
    let mut instruments = HashMap::new();
    for item in get("instruments")?.call_method0("items")?.try_iter()? {
        let (symbol, spec): (String, Bound<'_, PyAny>) = item?.extract()?;
        instruments.insert(symbol, spec_of(&spec)?);
    }
    let mut allowed_symbols = HashSet::new();
    for symbol in get("allowed_symbols")?.try_iter()? {
        allowed_symbols.insert(text(&symbol?)?);
    }
    Ok(Limits {
        allowed_symbols,
        signal_ttl_ms: get("signal_ttl_ms")?.extract()?,
        max_order_lots: get("max_order_lots")?.extract()?,
        max_position_lots: get("max_position_lots")?.extract()?,
        max_gross_exposure: wide(&get("max_gross_exposure")?)?,
        instruments,
        account_currency: text(&get("account_currency")?)?,
        max_tick_age_ms: get("max_tick_age_ms")?.extract()?,
        price_collar_bps: get("price_collar_bps")?.extract()?,
        max_orders_per_second: get("max_orders_per_second")?.extract()?,
        daily_loss_limit: wide(&get("daily_loss_limit")?)?,
        daily_loss_action: text(&get("daily_loss_action")?)?,
        max_consecutive_rejects: get("max_consecutive_rejects")?.extract()?,
        flash_crash_pct: get("flash_crash_pct")?.extract()?,
        flash_crash_window_ms: get("flash_crash_window_ms")?.extract()?,
        signal_timeframe: text(&get("signal_timeframe")?)?,
        signal_timeframes: get("signal_timeframes")?
            .call_method0("items")?
            .try_iter()?
            .map(|item| item?.extract::<(String, String)>())
            .collect::<PyResult<_>>()?,
    })
}

/// What the gate and the conversion route read of an `Instrument`.
fn spec_of(spec: &Bound<'_, PyAny>) -> PyResult<Spec> {
    Ok(Spec {
        contract_size: spec.getattr("contract_size")?.extract()?,
        base: text(&spec.getattr("base")?)?,
        quote: text(&spec.getattr("quote")?)?,
    })
}

/// The first error a Python answer raised (the gate's questions answer plainly; the call then raises it).
#[derive(Default)]
pub(crate) struct Raised(RefCell<Option<PyErr>>);

impl Raised {
    pub(crate) fn keep<T>(&self, answer: PyResult<T>, otherwise: T) -> T {
        answer.unwrap_or_else(|error| {
            self.0.borrow_mut().get_or_insert(error);
            otherwise
        })
    }

    /// Raise what a question raised, if anything.
    pub(crate) fn check(self) -> PyResult<()> {
        self.0.into_inner().map_or(Ok(()), Err)
    }
}

/// The kernel's calendar (`limits.market`), asked in Python; `day`: the trading day already asked.
pub(crate) struct PyMarket<'a, 'py> {
    pub market: Bound<'py, PyAny>,
    pub day: Option<String>,
    pub raised: &'a Raised,
    /// The calendar's table over a span (`market.rs`, made from this calendar): asked first, the
    /// calendar only outside its span.
    pub table: Option<&'a crate::market::MarketTable>,
}

impl MarketHours for PyMarket<'_, '_> {
    fn is_open(&self, now_ms: i64) -> bool {
        if let Some(open) = self.table.and_then(|table| table.is_open(now_ms)) {
            return open;
        }
        let answer = self
            .market
            .call_method1(intern!(self.market.py(), "is_open"), (now_ms,));
        self.raised
            .keep(answer.and_then(|open| open.is_truthy()), false)
    }

    fn trading_day(&self, now_ms: i64) -> String {
        if let Some(day) = &self.day {
            return day.clone();
        }
        if let Some(day) = self.table.and_then(|table| table.trading_day(now_ms)) {
            return day;
        }
        let py = self.market.py();
        let answer = self
            .market
            .call_method1(intern!(py, "trading_day"), (now_ms,))
            .and_then(|day| day.call_method0(intern!(py, "isoformat")))
            .and_then(|text| text.extract::<String>());
        self.raised.keep(answer, String::new())
    }
}

/// The conversion routes at the quotes' mids (`rates.rs`) over the limits' instruments table
/// (converted once per limits); `known`: the answers kept, which the caller may carry over while
/// neither the quotes nor the limits changed.
pub(crate) fn quote_rates<'a>(
    limits: Bound<'_, PyAny>,
    quotes: &'a HashMap<String, Quote>,
    known: Routes,
    raised: &Raised,
) -> QuoteRates<'a> {
    let table = raised.keep(limits_of(&limits).map(Some), None);
    QuoteRates::new(table, quotes, known)
}

/// The pairs `tickwave.instruments.convert` goes through from `source` to `target` at `mids`
/// (`(mid, multiplies)`: one, else two via USD), or None; `instruments`: symbol -> `Instrument`
/// (only the quoted symbols' are read).
#[pyfunction]
fn conversion_route<'py>(
    source: &str,
    target: &str,
    instruments: &Bound<'py, PyAny>,
    mids: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let py = mids.py();
    if source == target {
        return Ok(Some(PyTuple::empty(py)));
    }
    let mut quoted: Vec<(String, f64)> = Vec::new();
    let mut table = HashMap::new();
    for item in mids.call_method0(intern!(mids.py(), "items"))?.try_iter()? {
        let (symbol, mid): (String, f64) = item?.extract()?;
        let spec = instruments.call_method1(intern!(mids.py(), "get"), (&symbol,))?;
        if spec.is_none() {
            continue;
        }
        table.insert(symbol.clone(), spec_of(&spec)?);
        quoted.push((symbol, mid));
    }
    quoted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mids: Vec<(&str, f64)> = quoted.iter().map(|(s, mid)| (s.as_str(), *mid)).collect();
    rates::route(source, target, &table, &mids)
        .map(|route| PyTuple::new(py, route))
        .transpose()
}

/// The day's P&L the view's `day_pnl` gives (the engine's valuation, or a fixed amount), asked once.
fn known_day(
    view: &Bound<'_, PyAny>,
    limits: &Bound<'_, PyAny>,
    now_ms: i64,
) -> PyResult<KnownDay> {
    let py = view.py();
    let pnl = view
        .getattr(intern!(py, "day_pnl"))?
        .call_method1(intern!(py, "daily_pnl"), (limits, now_ms))?;
    Ok(KnownDay(if pnl.is_none() {
        None
    } else {
        Some(wide(&pnl)?)
    }))
}

/// A `RiskView`'s values, read once.
struct ViewValues {
    trading_state: String,
    halted_symbols: HashSet<String>,
    positions: HashMap<String, Dec>,
    pending: HashMap<String, Dec>,
    quotes: HashMap<String, Quote>,
    order_times_ms: VecDeque<i64>,
    consecutive_rejects: i64,
}

fn lots_of(dict: &Bound<'_, PyAny>) -> PyResult<HashMap<String, Dec>> {
    let mut lots = HashMap::new();
    for item in dict.call_method0("items")?.try_iter()? {
        let (symbol, amount): (String, Bound<'_, PyAny>) = item?.extract()?;
        lots.insert(symbol, to_dec(&amount)?);
    }
    Ok(lots)
}

/// A tick's quote.
pub(crate) fn quote_of(tick: &Bound<'_, PyAny>) -> PyResult<Quote> {
    let py = tick.py();
    Ok(Quote {
        bid: tick.getattr(intern!(py, "bid"))?.extract()?,
        ask: tick.getattr(intern!(py, "ask"))?.extract()?,
        time_ms: tick.getattr(intern!(py, "time_ms"))?.extract()?,
    })
}

fn view_values(view: &Bound<'_, PyAny>) -> PyResult<ViewValues> {
    let mut quotes = HashMap::new();
    for item in view
        .getattr("last_ticks")?
        .call_method0("items")?
        .try_iter()?
    {
        let (symbol, tick): (String, Bound<'_, PyAny>) = item?.extract()?;
        quotes.insert(symbol, quote_of(&tick)?);
    }
    Ok(ViewValues {
        trading_state: text(&view.getattr("trading_state")?)?,
        halted_symbols: view.getattr("halted_symbols")?.extract()?,
        positions: lots_of(&view.getattr("positions")?)?,
        pending: lots_of(&view.getattr("pending")?)?,
        quotes,
        order_times_ms: view
            .getattr("order_times_ms")?
            .extract::<Vec<i64>>()?
            .into(),
        consecutive_rejects: view.getattr("consecutive_rejects")?.extract()?,
    })
}

impl ViewValues {
    fn view(&self) -> View<'_> {
        View {
            trading_state: &self.trading_state,
            halted_symbols: &self.halted_symbols,
            positions: &self.positions,
            pending: &self.pending,
            quotes: &self.quotes,
            order_times_ms: &self.order_times_ms,
            consecutive_rejects: self.consecutive_rejects,
        }
    }
}

/// The move of `symbol`'s price window, if the windows (a dict of `PriceWindow`s) hold one.
pub(crate) fn move_pct(windows: &Bound<'_, PyAny>, symbol: &str) -> PyResult<f64> {
    match windows.get_item(symbol) {
        Ok(window) => Ok(window.cast::<PyPriceWindow>()?.borrow().window.move_pct()),
        Err(_) => Ok(0.0),
    }
}

/// A `ProposedOrder`'s figures.
struct OrderValues {
    symbol: String,
    is_buy: bool,
    quantity_lots: f64,
    limit_price: Option<f64>,
    created_at_ms: i64,
}

fn order_values(order: &Bound<'_, PyAny>) -> PyResult<OrderValues> {
    let py = order.py();
    Ok(OrderValues {
        symbol: text(&order.getattr(intern!(py, "symbol"))?)?,
        is_buy: text(&order.getattr(intern!(py, "side"))?)? == "buy",
        quantity_lots: order.getattr(intern!(py, "quantity_lots"))?.extract()?,
        limit_price: order.getattr(intern!(py, "limit_price"))?.extract()?,
        created_at_ms: order
            .getattr(intern!(py, "signal"))?
            .getattr(intern!(py, "created_at_ms"))?
            .extract()?,
    })
}

/// Which pass of the gate to run.
enum Pass<'a> {
    Checks(&'a [Check]),
    Operator,
}

fn run(
    pass: Pass<'_>,
    order: &Bound<'_, PyAny>,
    view: &Bound<'_, PyAny>,
    limits: &Bound<'_, PyAny>,
    now_ms: i64,
) -> PyResult<PyDenial> {
    let converted = limits_of(limits)?;
    let values = view_values(view)?;
    let figures = order_values(order)?;
    let proposed = Proposed {
        symbol: &figures.symbol,
        is_buy: figures.is_buy,
        quantity_lots: figures.quantity_lots,
        limit_price: figures.limit_price,
        created_at_ms: figures.created_at_ms,
    };
    let raised = Raised::default();
    let market = PyMarket {
        market: limits.getattr("market")?,
        day: None,
        raised: &raised,
        table: None,
    };
    let rates = quote_rates(limits.clone(), &values.quotes, HashMap::new(), &raised);
    let mut day = known_day(view, limits, now_ms)?;
    let mut answers = Answers {
        market: &market,
        rates: &rates,
        day: &mut day,
        move_pct: move_pct(&view.getattr("price_windows")?, &figures.symbol)?,
    };
    let view = values.view();
    let found = match pass {
        Pass::Checks(checks) => {
            gate::first_of(checks, &proposed, &view, &converted, &mut answers, now_ms)
        }
        Pass::Operator => gate::operator_denial(&proposed, &view, &converted, &mut answers, now_ms),
    }
    .map_err(overflow)?;
    raised.check()?;
    Ok(py_denial(found))
}

/// Run a pass of the gate on a `ProposedOrder` against a `RiskView`: `"all"` (every check in
/// order), `"operator"` (an operator's reduce-only order) or one check by name; the first denial.
#[pyfunction]
fn gate_denial(
    checks: &str,
    order: &Bound<'_, PyAny>,
    view: &Bound<'_, PyAny>,
    limits: &Bound<'_, PyAny>,
    now_ms: i64,
) -> PyResult<PyDenial> {
    let one;
    let pass = match checks {
        "all" => Pass::Checks(&gate::CHECKS),
        "operator" => Pass::Operator,
        name => {
            one = [Check::named(name)
                .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_owned()))?];
            Pass::Checks(&one)
        }
    };
    run(pass, order, view, limits, now_ms)
}

/// The names of the gate's checks in order, and of the operator's.
#[pyfunction]
fn gate_checks() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        gate::CHECKS.iter().map(|check| check.name()).collect(),
        gate::OPERATOR_CHECKS
            .iter()
            .map(|check| check.name())
            .collect(),
    )
}

/// |`lots`| x contract size x mid of `symbol` in the account currency (exact), or None without a
/// spec, a price or a rate; `mids`: the conversion's (default: every quote's).
#[pyfunction]
#[pyo3(signature = (symbol, lots, view, limits, mids=None))]
fn exposure(
    py: Python<'_>,
    symbol: &str,
    lots: &Bound<'_, PyAny>,
    view: &Bound<'_, PyAny>,
    limits: &Bound<'_, PyAny>,
    mids: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<Py<PyAny>>> {
    let converted = limits_of(limits)?;
    let values = view_values(view)?;
    let raised = Raised::default();
    let mut given: Vec<(String, f64)> = match mids {
        Some(mids) => mids.items().extract()?,
        None => Vec::new(),
    };
    given.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let rates = quote_rates(limits.clone(), &values.quotes, HashMap::new(), &raised);
    let rates = match mids {
        Some(_) => rates.at_mids(given.iter().map(|(s, mid)| (s.as_str(), *mid)).collect()),
        None => rates,
    };
    let amount = gate::exposure(symbol, to_dec(lots)?, &values.quotes, &converted, &rates);
    raised.check()?;
    amount
        .map(|amount| {
            Ok(DECIMAL
                .import(py, "decimal", "Decimal")?
                .call1((amount.to_string(),))?
                .unbind())
        })
        .transpose()
}

/// The `OrderSubmitted` that records `intent` as sent to `venue` at `now_ms` (`decide.rs`).
#[pyfunction]
fn submission<'py>(
    py: Python<'py>,
    intent: &Bound<'py, PyAny>,
    venue: &str,
    now_ms: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let Event::OrderIntent(intent) = event_from_py(intent)? else {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "submission takes an OrderIntent",
        ));
    };
    let submitted = decide::submission(&intent, venue, now_ms);
    event_to_py(py, &Event::OrderSubmitted(submitted))
}

/// The id of a text whose parts are joined with U+001F: `length` hex digits (24 or 32; `ids.rs`).
#[pyfunction]
fn joined_id(text: &str, length: usize) -> PyResult<String> {
    let digits = ids::IdLength::of_digits(length);
    digits
        .map(|digits| ids::joined_id(text, digits))
        .ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "an id has 24 or 32 digits, not {length}"
            ))
        })
}

/// The id of the one order a signal may produce (`ids.rs`).
#[pyfunction]
fn client_order_id_for(signal_id: &str) -> String {
    ids::client_order_id_for(signal_id)
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(submission, m)?)?;
    m.add_function(wrap_pyfunction!(joined_id, m)?)?;
    m.add_function(wrap_pyfunction!(client_order_id_for, m)?)?;
    m.add_function(wrap_pyfunction!(gate_denial, m)?)?;
    m.add_function(wrap_pyfunction!(gate_checks, m)?)?;
    m.add_function(wrap_pyfunction!(exposure, m)?)?;
    m.add_function(wrap_pyfunction!(conversion_route, m)?)?;
    m.add("CONVERSION_PIVOT", rates::PIVOT)?;
    Ok(())
}
