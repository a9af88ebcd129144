//! Tickwave's execution core, exposed to Python as `tickwave_core`.
//!
//! The rules live in plain Rust modules (tested with `cargo test`, no Python linked); this file
//! is their Python face only: conversions in, conversions out, no rule of its own.

pub mod booking;
pub mod broker;
pub mod chain;
pub mod day_loss;
pub mod day_screen;
pub mod decide;
pub mod engine_state;
mod engine_state_py;
pub mod events;
mod events_py;
#[cfg(test)]
mod fixtures;
pub mod gate;
mod gate_py;
pub mod ids;
pub mod lifecycle;
pub mod maps;
pub mod market;
mod market_py;
pub mod money;
pub mod paper;
mod paper_py;
pub mod positions;
pub mod pyfloat;
pub mod rates;
pub mod replay;
mod replay_py;
pub mod risk;
pub mod rounding;
pub mod sizing;
pub mod spike;
mod spike_py;
pub mod stops;
mod tick_columns_py;
pub mod valuation;
pub mod wide_int;

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

use money::{Dec, Overflow};

/// The core's version, so the shell can tell which build it loaded.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Return the audit chain's link hash of `canonical` after `previous_hash` (lowercase hex SHA-256).
/// A previous hash that is not ASCII is refused (`ValueError`), as the hex it must be.
#[pyfunction]
fn link_hash(previous_hash: &str, canonical: &[u8]) -> PyResult<String> {
    if !previous_hash.is_ascii() {
        return Err(PyValueError::new_err(
            "a chain's previous hash is ASCII hex",
        ));
    }
    Ok(chain::link_hash(previous_hash, canonical))
}

/// Link a sequence of canonical event bytes after `head`; return `(new head, next seq)`.
#[pyfunction]
fn chain_extend(head: &str, next_seq: i64, canonicals: Vec<Bound<'_, PyBytes>>) -> (String, i64) {
    chain::extend(
        head,
        next_seq,
        canonicals.iter().map(|bytes| bytes.as_bytes()),
    )
}

/// Return the deterministic id of an order's `sequence`-th fill (`broker.rs`).
#[pyfunction]
fn fill_id_for(client_order_id: &str, sequence: usize) -> String {
    broker::fill_id_for(client_order_id, sequence)
}

/// Return whether the order lifecycle allows `from_status -> to_status` (wire names).
#[pyfunction]
fn is_allowed(from_status: &str, to_status: &str) -> bool {
    lifecycle::is_allowed_named(from_status, to_status)
}

/// Return every allowed `(from, to)` pair of the order lifecycle (wire names).
#[pyfunction]
fn transitions() -> Vec<(&'static str, &'static str)> {
    lifecycle::transitions()
        .into_iter()
        .map(|(from, to)| (from.name(), to.name()))
        .collect()
}

/// Return the statuses an order ends in.
#[pyfunction]
fn terminal_statuses() -> Vec<&'static str> {
    lifecycle::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.name())
        .collect()
}

/// Return the statuses in which the broker may still fill an order.
#[pyfunction]
fn working_statuses() -> Vec<&'static str> {
    lifecycle::ALL
        .into_iter()
        .filter(|s| s.is_working())
        .map(|s| s.name())
        .collect()
}

/// Order ids by creation time (see `lifecycle.rs`).
#[pyclass(name = "CreationIndex", module = "tickwave_core")]
struct PyCreationIndex {
    index: lifecycle::CreationIndex,
}

#[pymethods]
impl PyCreationIndex {
    #[new]
    fn new() -> Self {
        PyCreationIndex {
            index: lifecycle::CreationIndex::new(),
        }
    }

    /// Index an order: in time order, orders of the same millisecond in the order they were added.
    fn add(&mut self, created_at_ms: i64, client_order_id: &str) {
        self.index.add(created_at_ms, client_order_id)
    }

    /// Forget an order indexed at `created_at_ms` (ValueError when it is not indexed).
    fn remove(&mut self, created_at_ms: i64, client_order_id: &str) -> PyResult<()> {
        if self.index.remove(created_at_ms, client_order_id) {
            Ok(())
        } else {
            Err(PyValueError::new_err("list.remove(x): x not in list"))
        }
    }

    /// Return the ids created at or after `since_ms`, oldest first.
    fn since(&self, since_ms: i64) -> Vec<&str> {
        self.index.since(since_ms).collect()
    }

    /// Forget the orders created before `before_ms` that `is_done(id)`; return their ids, oldest first.
    fn retire(&mut self, before_ms: i64, is_done: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        self.index
            .retire(before_ms, |id| is_done.call1((id,))?.is_truthy())
    }

    fn __len__(&self) -> usize {
        self.index.len()
    }
}

/// Return `lots` as whole lot steps, rounded towards zero.
#[pyfunction]
fn to_steps(lots: f64, lot_step: f64) -> i64 {
    sizing::to_steps(lots, lot_step)
}

/// Return the decimals a multiple of `lot_step` is rounded to.
#[pyfunction]
fn lot_decimals(lot_step: f64) -> u32 {
    sizing::lot_decimals(lot_step)
}

/// Return whole lot steps as lots, rounded as Python's `round(steps * lot_step, decimals)`.
#[pyfunction]
#[pyo3(signature = (steps, lot_step, decimals=None))]
fn round_lots(steps: i64, lot_step: f64, decimals: Option<u32>) -> f64 {
    sizing::round_lots(
        steps,
        lot_step,
        decimals.unwrap_or_else(|| sizing::lot_decimals(lot_step)),
    )
}

/// The sizing rules of one policy: caps in steps and decimals worked out once.
#[pyclass(frozen, name = "Sizing", module = "tickwave_core")]
pub(crate) struct PySizing {
    pub(crate) policy: sizing::Policy,
}

#[pymethods]
impl PySizing {
    #[new]
    fn new(max_position_lots: f64, max_order_lots: f64, lot_step: f64, min_strength: f64) -> Self {
        PySizing {
            policy: sizing::Policy::new(max_position_lots, max_order_lots, lot_step, min_strength),
        }
    }

    /// The largest position as whole lot steps.
    #[getter]
    fn position_cap_steps(&self) -> i64 {
        self.policy.position_cap_steps
    }

    /// The largest order as whole lot steps.
    #[getter]
    fn order_cap_steps(&self) -> i64 {
        self.policy.order_cap_steps
    }

    /// The decimals lots are rounded to.
    #[getter]
    fn lot_decimals(&self) -> u32 {
        self.policy.lot_decimals
    }

    /// Return the signed position a direction (`long`, `short`, `flat`) and strength ask for.
    fn target_lots(&self, direction: &str, strength: f64) -> PyResult<f64> {
        let sign = sizing::direction_sign(direction)
            .ok_or_else(|| PyValueError::new_err(format!("unknown direction {direction:?}")))?;
        Ok(self.policy.target_lots(sign, strength))
    }

    /// Return `("buy" | "sell", lots)` moving `current_lots` towards `target_lots`, or None when there.
    fn order_for(&self, target_lots: f64, current_lots: f64) -> Option<(&'static str, f64)> {
        self.policy
            .order_for(target_lots, current_lots)
            .map(|(buy, lots)| (if buy { "buy" } else { "sell" }, lots))
    }
}

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DEQUE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Read a Python `Decimal` (or anything whose text is a finite decimal) exactly.
pub(crate) fn to_dec(value: &Bound<'_, PyAny>) -> PyResult<Dec> {
    let text = value.str()?;
    Dec::parse(text.to_str()?).map_err(|bad| {
        PyValueError::new_err(format!("amount must be a finite decimal, got {:?}", bad.0))
    })
}

/// Write an exact amount as a Python `Decimal` (the same coefficient and exponent).
pub(crate) fn to_py(py: Python<'_>, amount: Dec) -> PyResult<Py<PyAny>> {
    Ok(DECIMAL
        .import(py, "decimal", "Decimal")?
        .call1((amount.to_string(),))?
        .unbind())
}

pub(crate) fn overflow(_: Overflow) -> PyErr {
    PyOverflowError::new_err(Overflow.to_string())
}

/// What one fill did to its symbol's position (see `positions.rs`); amounts are `Decimal`s.
#[pyclass(frozen, get_all, name = "Booking", module = "tickwave_core")]
struct PyBooking {
    position_before: Py<PyAny>,
    position_after: Py<PyAny>,
    entry_value_after: Py<PyAny>,
    realized: Py<PyAny>,
    round_trip_id: String,
    opens_round_trip_id: String,
}

impl PyBooking {
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                self.position_before.clone_ref(py),
                self.position_after.clone_ref(py),
                self.entry_value_after.clone_ref(py),
                self.realized.clone_ref(py),
                self.round_trip_id
                    .clone()
                    .into_pyobject(py)?
                    .into_any()
                    .unbind(),
                self.opens_round_trip_id
                    .clone()
                    .into_pyobject(py)?
                    .into_any()
                    .unbind(),
            ],
        )
    }
}

#[pymethods]
impl PyBooking {
    #[new]
    fn new(
        position_before: Py<PyAny>,
        position_after: Py<PyAny>,
        entry_value_after: Py<PyAny>,
        realized: Py<PyAny>,
        round_trip_id: String,
        opens_round_trip_id: String,
    ) -> Self {
        PyBooking {
            position_before,
            position_after,
            entry_value_after,
            realized,
            round_trip_id,
            opens_round_trip_id,
        }
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        match other.cast::<PyBooking>() {
            Ok(other) => self.fields(py)?.eq(other.get().fields(py)?),
            Err(_) => Ok(false),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let shown = |value: &Py<PyAny>| -> PyResult<String> {
            Ok(value.bind(py).repr()?.to_str()?.to_owned())
        };
        Ok(format!(
            "Booking(position_before={}, position_after={}, entry_value_after={}, realized={}, round_trip_id={:?}, opens_round_trip_id={:?})",
            shown(&self.position_before)?,
            shown(&self.position_after)?,
            shown(&self.entry_value_after)?,
            shown(&self.realized)?,
            self.round_trip_id,
            self.opens_round_trip_id
        ))
    }
}

/// One symbol's open lots, first in first out (see `positions.rs`); amounts in and out are `Decimal`s.
#[pyclass(name = "Book", module = "tickwave_core")]
struct PyBook {
    book: positions::Book,
    lots: Option<Py<PyAny>>, // the net position as a Decimal, made when first read after a change
}

impl PyBook {
    fn wrap(book: positions::Book) -> PyBook {
        PyBook { book, lots: None }
    }
}

#[pymethods]
impl PyBook {
    #[new]
    fn new() -> Self {
        PyBook::wrap(positions::Book::new())
    }

    /// The open lots, oldest first: a deque of `(signed lots, entry price)` pairs (a copy).
    #[getter]
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pairs = PyList::empty(py);
        for (lots, price) in &self.book.entries {
            pairs.append((to_py(py, *lots)?, to_py(py, *price)?))?;
        }
        DEQUE.import(py, "collections", "deque")?.call1((pairs,))
    }

    /// The open round trip (the fill that opened it), "" when flat.
    #[getter]
    fn trip_id(&self) -> String {
        self.book.trip_id.clone()
    }

    /// The signed net position.
    #[getter]
    fn lots(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(lots) = &self.lots {
            return Ok(lots.clone_ref(py));
        }
        let lots = to_py(py, self.book.lots)?;
        self.lots = Some(lots.clone_ref(py));
        Ok(lots)
    }

    /// Bumped by every fill and take.
    #[getter]
    fn revision(&self) -> i64 {
        self.book.revision
    }

    /// Return an independent copy (to preview fills without booking them).
    fn copy(&self) -> PyBook {
        PyBook::wrap(self.book.copy())
    }

    /// Become `other` (a copy of this book that booked a fill ahead), keeping this object.
    fn take(&mut self, other: PyRef<'_, PyBook>) {
        self.book.take(&other.book);
        self.lots = None;
    }

    /// Apply one execution; return the realised P&L in price x lots.
    fn fill(
        &mut self,
        py: Python<'_>,
        signed_lots: &Bound<'_, PyAny>,
        price: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let realized = self
            .book
            .fill(to_dec(signed_lots)?, to_dec(price)?)
            .map_err(overflow);
        self.lots = None;
        to_py(py, realized?)
    }

    /// Apply one execution and return what it did to the position and the round trip.
    fn book(
        &mut self,
        py: Python<'_>,
        signed_lots: &Bound<'_, PyAny>,
        price: &Bound<'_, PyAny>,
        fill_id: &str,
    ) -> PyResult<PyBooking> {
        let before = self.lots(py)?; // the Decimal already made for the position, when it was read
        let booking = self
            .book
            .book(to_dec(signed_lots)?, to_dec(price)?, fill_id)
            .map_err(overflow);
        self.lots = None;
        let booking = booking?;
        let after = self.lots(py)?; // made once: the booking's and the book's position after
        Ok(PyBooking {
            position_before: before,
            position_after: after,
            entry_value_after: to_py(py, booking.entry_value_after)?,
            realized: to_py(py, booking.realized)?,
            round_trip_id: booking.round_trip_id,
            opens_round_trip_id: booking.opens_round_trip_id,
        })
    }

    /// Return the open lots x their entry prices (signed).
    fn entry_value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, self.book.entry_value().map_err(overflow)?)
    }

    /// Return the open P&L at `mid` in price x lots.
    fn unrealized(&self, py: Python<'_>, mid: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        to_py(py, self.book.unrealized(to_dec(mid)?).map_err(overflow)?)
    }

    fn __repr__(&self) -> String {
        let entries: Vec<String> = self
            .book
            .entries
            .iter()
            .map(|(lots, price)| format!("({lots}, {price})"))
            .collect();
        format!(
            "Book(entries=[{}], trip_id={:?})",
            entries.join(", "),
            self.book.trip_id
        )
    }
}

/// The lowest and highest mid of one symbol over the last `window_ms` (see `risk.rs`).
#[pyclass(name = "PriceWindow", module = "tickwave_core")]
pub(crate) struct PyPriceWindow {
    pub(crate) window: risk::PriceWindow,
}

#[pymethods]
impl PyPriceWindow {
    #[new]
    fn new(window_ms: i64) -> Self {
        PyPriceWindow {
            window: risk::PriceWindow::new(window_ms),
        }
    }

    #[getter]
    fn window_ms(&self) -> i64 {
        self.window.window_ms
    }

    /// Add one mid and forget those older than the window.
    fn update(&mut self, time_ms: i64, mid: f64) {
        self.window.update(time_ms, mid)
    }

    /// Return the high-low range over the window as a percentage of the low (0 when empty).
    fn move_pct(&self) -> f64 {
        self.window.move_pct()
    }
}

// ---------------------------------------------------------------------------------------------
// The gate's rules on an order's figures (`gate.rs`); a denial is `(check, reason, halts)`.

use gate_py::{py_denial, PyDenial};

/// Return True when `signed_lots` bring `current_lots` (working orders included) towards flat.
#[pyfunction]
fn is_reducing(current_lots: &Bound<'_, PyAny>, signed_lots: &Bound<'_, PyAny>) -> PyResult<bool> {
    gate::is_reducing(to_dec(current_lots)?, to_dec(signed_lots)?).map_err(overflow)
}

/// Deny a signal of another timeframe than its symbol's driver.
#[pyfunction]
fn signal_timeframe_denial(symbol: &str, timeframe: &str, driver: &str) -> PyDenial {
    py_denial(gate::signal_timeframe(symbol, timeframe, driver))
}

/// Deny a signal older than the TTL.
#[pyfunction]
fn signal_ttl_denial(age_ms: i64, ttl_ms: i64) -> PyDenial {
    py_denial(gate::signal_ttl(age_ms, ttl_ms))
}

/// Deny an order larger than the largest order size.
#[pyfunction]
fn max_order_size_denial(quantity_lots: f64, max_order_lots: f64) -> PyDenial {
    py_denial(gate::max_order_size(quantity_lots, max_order_lots))
}

/// Say why `symbol` has no usable price (no tick, or one older than `max_age_ms`), or None.
#[pyfunction]
fn stale_price(
    symbol: &str,
    tick_time_ms: Option<i64>,
    now_ms: i64,
    max_age_ms: i64,
) -> Option<String> {
    gate::stale_price(symbol, tick_time_ms, now_ms, max_age_ms)
}

/// Deny an order that leaves the position beyond its limit (one that only reduces passes).
#[pyfunction]
fn max_position_denial(
    exposure_lots: &Bound<'_, PyAny>,
    signed_lots: &Bound<'_, PyAny>,
    reducing: bool,
    max_position_lots: f64,
) -> PyResult<PyDenial> {
    let exposure = to_dec(exposure_lots)?;
    let signed = to_dec(signed_lots)?;
    gate::max_position(exposure, signed, reducing, max_position_lots)
        .map(py_denial)
        .map_err(overflow)
}

/// Deny, and halt trading, after too many broker rejects in a row.
#[pyfunction]
fn consecutive_rejects_denial(rejects: i64, max_rejects: i64) -> PyDenial {
    py_denial(gate::consecutive_rejects(rejects, max_rejects))
}

/// Deny, and halt the symbol, when its mid moved more than the threshold within the window.
#[pyfunction]
fn flash_crash_denial(symbol: &str, move_pct: f64, threshold_pct: f64, window_ms: i64) -> PyDenial {
    py_denial(gate::flash_crash(
        symbol,
        move_pct,
        threshold_pct,
        window_ms,
    ))
}

/// The flash-crash breaker's words.
#[pyfunction]
fn flash_crash_words(symbol: &str, move_pct: f64, window_ms: i64) -> String {
    gate::flash_crash_words(symbol, move_pct, window_ms)
}

fn add_gate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(is_reducing, m)?)?;
    m.add_function(wrap_pyfunction!(signal_timeframe_denial, m)?)?;
    m.add_function(wrap_pyfunction!(signal_ttl_denial, m)?)?;
    m.add_function(wrap_pyfunction!(max_order_size_denial, m)?)?;
    m.add_function(wrap_pyfunction!(stale_price, m)?)?;
    m.add_function(wrap_pyfunction!(max_position_denial, m)?)?;
    m.add_function(wrap_pyfunction!(consecutive_rejects_denial, m)?)?;
    m.add_function(wrap_pyfunction!(flash_crash_denial, m)?)?;
    m.add_function(wrap_pyfunction!(flash_crash_words, m)?)?;
    Ok(())
}

#[pymodule]
fn tickwave_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", VERSION)?;
    m.add("GENESIS_HASH", chain::GENESIS_HASH)?;
    m.add_function(wrap_pyfunction!(link_hash, m)?)?;
    m.add_function(wrap_pyfunction!(fill_id_for, m)?)?;
    m.add("EXPIRED_PREFIX", broker::EXPIRED_PREFIX)?;
    m.add_function(wrap_pyfunction!(chain_extend, m)?)?;
    m.add_function(wrap_pyfunction!(is_allowed, m)?)?;
    m.add_function(wrap_pyfunction!(transitions, m)?)?;
    m.add_function(wrap_pyfunction!(terminal_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(working_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(to_steps, m)?)?;
    m.add_function(wrap_pyfunction!(lot_decimals, m)?)?;
    m.add_function(wrap_pyfunction!(round_lots, m)?)?;
    m.add_class::<PySizing>()?;
    m.add_class::<PyCreationIndex>()?;
    m.add_class::<PyBook>()?;
    m.add_class::<PyPriceWindow>()?;
    add_gate(m)?;
    m.add_class::<PyBooking>()?;
    add_rounding(m)?;
    // The paper venue.
    m.add_class::<paper_py::PyPaperVenue>()?;
    // The replay's timeline and journal.
    m.add_class::<replay_py::PyReplayTimeline>()?;
    m.add_class::<replay_py::PyReplayJournal>()?;
    m.add_function(wrap_pyfunction!(replay_py::replay_engine, m)?)?;
    // The engine state.
    engine_state_py::add(m)?;
    gate_py::add(m)?;
    // The journaled events and their wire bytes.
    events_py::add(m)?;
    // The spike filter.
    spike_py::add(m)?;
    // Market hours and the trading day.
    market_py::add(m)?;
    // Decoded ticks as columns for the kernel's rule table.
    tick_columns_py::add(m)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rounding on purpose (`rounding.rs`): a report's cents, the warehouse's scale, a conversion.

/// Read a Python `Decimal` (or its text) of any width; a NaN or an infinity is refused.
pub(crate) fn to_wide(value: &Bound<'_, PyAny>) -> PyResult<rounding::Wide> {
    let text = value.str()?;
    rounding::Wide::parse(text.to_str()?).map_err(|bad| {
        PyValueError::new_err(format!("amount must be a finite decimal, got {:?}", bad.0))
    })
}

/// Write a wide amount as a Python `Decimal` (the same sign, digits and exponent).
pub(crate) fn wide_to_py(py: Python<'_>, amount: &rounding::Wide) -> PyResult<Py<PyAny>> {
    Ok(DECIMAL
        .import(py, "decimal", "Decimal")?
        .call1((amount.to_string(),))?
        .unbind())
}

fn bad_rate(error: rounding::BadRate) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// Round `amount` to `places` decimals, half even (Python's `quantize`).
#[pyfunction]
fn quantize(py: Python<'_>, amount: &Bound<'_, PyAny>, places: i64) -> PyResult<Py<PyAny>> {
    wide_to_py(py, &to_wide(amount)?.quantize(places))
}

/// Return `amount` itself when it has at most `places` decimals, else rounded to them (half even).
#[pyfunction]
fn within_places(py: Python<'_>, amount: &Bound<'_, PyAny>, places: i64) -> PyResult<Py<PyAny>> {
    let wide = to_wide(amount)?;
    if wide.exponent >= -places {
        return Ok(amount.clone().unbind());
    }
    wide_to_py(py, &wide.quantize(places))
}

/// Convert `amount` along `route`'s `(mid, multiplies)` pairs, each step to 28 digits, half even.
#[pyfunction]
fn convert_amount(
    py: Python<'_>,
    amount: &Bound<'_, PyAny>,
    route: Vec<(f64, bool)>,
) -> PyResult<Py<PyAny>> {
    let converted = rounding::convert(&to_wide(amount)?, &route).map_err(bad_rate)?;
    wide_to_py(py, &converted)
}

/// A fill record's figures as `Decimal`s: realised P&L in the quote currency, in the account currency, entry value.
type FillFiguresPy = (Py<PyAny>, Option<Py<PyAny>>, Py<PyAny>);

/// Return a booking's figures for its fill's record: `(realised P&L in the quote currency, in the
/// account currency or None, entry value after)`, each at the warehouse's 18 decimals.
#[pyfunction]
#[pyo3(signature = (realized, entry_value_after, contract_size, route))]
fn fill_figures(
    py: Python<'_>,
    realized: &Bound<'_, PyAny>,
    entry_value_after: &Bound<'_, PyAny>,
    contract_size: f64,
    route: Option<Vec<(f64, bool)>>,
) -> PyResult<FillFiguresPy> {
    let entry = to_wide(entry_value_after)?;
    let figures =
        rounding::fill_figures(&to_wide(realized)?, &entry, contract_size, route.as_deref())
            .map_err(bad_rate)?;
    let account = match &figures.realized_account {
        None => None,
        Some(amount) => Some(wide_to_py(py, amount)?),
    };
    let entry_value = if figures.entry_value_after == entry {
        entry_value_after.clone().unbind() // unchanged: the same object
    } else {
        wide_to_py(py, &figures.entry_value_after)?
    };
    Ok((
        wide_to_py(py, &figures.realized_quote)?,
        account,
        entry_value,
    ))
}

fn add_rounding(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("WAREHOUSE_PLACES", rounding::WAREHOUSE_PLACES)?;
    m.add_function(wrap_pyfunction!(quantize, m)?)?;
    m.add_function(wrap_pyfunction!(within_places, m)?)?;
    m.add_function(wrap_pyfunction!(convert_amount, m)?)?;
    m.add_function(wrap_pyfunction!(fill_figures, m)?)?;
    Ok(())
}
