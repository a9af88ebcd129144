//! The engine state's Python face (`tickwave_core.EngineState`, `tickwave_core.Order`): conversions
//! only, the rules are `engine_state.rs`.
//!
//! Events arrive as the contract's msgspec structs and are read field by field. The decision code
//! still in Python reads the state through containers this face keeps in step with the core's
//! values after each change (the orders, books, bookings, the risk view's positions, pending lots,
//! halts and quotes; the flash-crash windows are the core's alone): a read costs what a dict lookup costs, and only the core
//! writes them. During a replay in the core (`ReplayEngine`), no Python reads them: they are
//! written once, at its end (`Deferred`, `PyEngineState::flush`).

use crate::maps::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PySet, PyString, PyTuple, PyType};

use crate::booking;
use crate::day_loss::{self, DayValuation, StateDay, Unvalued};
use crate::decide;
use crate::engine_state::{self, Change, NumberMap, Refused};
use crate::events::{ControlCommand, OrderFilled, OrderIntent, OrderSubmitted, Signal, Tick};
use crate::events::{Event, Severity, TradingState};
use crate::events_py::{event_from_py, event_to_py};
use crate::gate_py::Routes;
use crate::lifecycle::{self, Status};
use crate::market::MarketTable;
use crate::money::{Dec, Overflow};
use crate::positions::Booking;
use crate::replay::{Control, Decision, Engine, Outcome};
use crate::PySizing;
use crate::{gate, gate_py};
use crate::{replay, stops};
use crate::{to_dec, to_py, PyBook, PyBooking};

// The Python classes this face reads or builds, imported once.
static CONTRACTS: PyOnceLock<Contracts> = PyOnceLock::new();
static STATUSES: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
static ILLEGAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static RISK_VIEW: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

struct Contracts {
    submitted: Py<PyType>,
    accepted: Py<PyType>,
    rejected: Py<PyType>,
    filled: Py<PyType>,
    fill: Py<PyType>,
    canceled: Py<PyType>,
    denied: Py<PyType>,
    risk_event: Py<PyType>,
    command: Py<PyType>,
}

fn contracts(py: Python<'_>) -> PyResult<&Contracts> {
    CONTRACTS.get_or_try_init(py, || {
        let module = py.import("tickwave.contracts")?;
        let class = |name: &str| -> PyResult<Py<PyType>> {
            Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Contracts {
            submitted: class("OrderSubmitted")?,
            accepted: class("OrderAccepted")?,
            rejected: class("OrderRejected")?,
            filled: class("OrderFilled")?,
            fill: class("Fill")?,
            canceled: class("OrderCanceled")?,
            denied: class("OrderDenied")?,
            risk_event: class("RiskEvent")?,
            command: class("ControlCommand")?,
        })
    })
}

/// The `OrderStatus` member of a status (the facade's enum, so callers compare as before).
fn status_member(py: Python<'_>, status: Status) -> PyResult<Py<PyAny>> {
    let members = STATUSES.get_or_try_init(py, || {
        let enum_class = py.import("execution.core.state")?.getattr("OrderStatus")?;
        lifecycle::ALL
            .iter()
            .map(|s| Ok(enum_class.call1((s.name(),))?.unbind()))
            .collect::<PyResult<Vec<_>>>()
    })?;
    let place = lifecycle::ALL
        .iter()
        .position(|s| *s == status)
        .expect("every status is listed");
    Ok(members[place].clone_ref(py))
}

fn illegal(py: Python<'_>, message: String) -> PyResult<PyErr> {
    let class = ILLEGAL.import(py, "execution.core.state", "IllegalTransition")?;
    Ok(PyErr::from_value(class.call1((message,))?))
}

fn refused(py: Python<'_>, refusal: Refused) -> PyResult<PyErr> {
    match refusal {
        Refused::Illegal(engine_state::IllegalTransition(message)) => illegal(py, message),
        Refused::Overflow => Ok(PyOverflowError::new_err(Overflow.to_string())),
        Refused::NotFinite(text) => Ok(PyValueError::new_err(format!(
            "not a finite number: {text}"
        ))),
        Refused::BadDetail(detail) => Ok(PyValueError::new_err(format!(
            "not a day rollover's marks: {detail}"
        ))),
    }
}

fn dec_of_float(value: f64) -> PyResult<Dec> {
    Dec::from_float(value)
        .map_err(|bad| PyValueError::new_err(format!("not a finite number: {}", bad.0)))
}

fn text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.cast::<PyString>()?.to_str()?.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------------------------

/// What the execution process knows about one order (rebuilt from the journal on start); frozen.
#[pyclass(frozen, name = "Order", module = "tickwave_core")]
pub struct PyOrder {
    pub order: Arc<engine_state::Order>,
}

#[pymethods]
impl PyOrder {
    #[new]
    #[pyo3(signature = (client_order_id, signal_id, symbol, side, quantity_lots, model_id, model_version,
        created_at_ms, status="new", filled_lots=0.0, broker_order_id=String::new(), fill_ids=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        client_order_id: String,
        signal_id: String,
        symbol: String,
        side: String,
        quantity_lots: f64,
        model_id: String,
        model_version: i64,
        created_at_ms: i64,
        status: &str,
        filled_lots: f64,
        broker_order_id: String,
        fill_ids: Vec<String>,
    ) -> PyResult<Self> {
        let status = Status::parse(status)
            .ok_or_else(|| PyValueError::new_err(format!("unknown order status {status:?}")))?;
        Ok(PyOrder {
            order: Arc::new(engine_state::Order {
                client_order_id: client_order_id.into(),
                signal_id: signal_id.into(),
                symbol: symbol.into(),
                side: side.into(),
                quantity_lots,
                model_id: model_id.into(),
                model_version,
                created_at_ms,
                status,
                filled_lots,
                broker_order_id: broker_order_id.into(),
                fill_ids,
            }),
        })
    }

    #[getter]
    fn client_order_id(&self) -> &str {
        &self.order.client_order_id[..]
    }
    #[getter]
    fn signal_id(&self) -> &str {
        &self.order.signal_id[..]
    }
    #[getter]
    fn symbol(&self) -> &str {
        &self.order.symbol[..]
    }
    #[getter]
    fn side(&self) -> &str {
        &self.order.side[..]
    }
    #[getter]
    fn quantity_lots(&self) -> f64 {
        self.order.quantity_lots
    }
    #[getter]
    fn model_id(&self) -> &str {
        &self.order.model_id[..]
    }
    #[getter]
    fn model_version(&self) -> i64 {
        self.order.model_version
    }
    #[getter]
    fn created_at_ms(&self) -> i64 {
        self.order.created_at_ms
    }
    #[getter]
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        status_member(py, self.order.status)
    }
    #[getter]
    fn filled_lots(&self) -> f64 {
        self.order.filled_lots
    }
    #[getter]
    fn broker_order_id(&self) -> &str {
        &self.order.broker_order_id[..]
    }
    #[getter]
    fn fill_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.order.fill_ids)
    }

    /// True once nothing more can happen to the order.
    #[getter]
    fn is_terminal(&self) -> bool {
        self.order.status.is_terminal()
    }

    /// True while the broker may still fill it.
    #[getter]
    fn is_working(&self) -> bool {
        self.order.status.is_working()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PyOrder>() {
            Ok(other) => self.order == other.get().order,
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.order.client_order_id.hash(&mut hasher);
        self.order.status.name().hash(&mut hasher);
        self.order.fill_ids.hash(&mut hasher);
        hasher.finish()
    }

    fn __repr__(&self) -> String {
        let o = &self.order;
        format!(
            "Order(client_order_id={:?}, signal_id={:?}, symbol={:?}, side={:?}, quantity_lots={:?}, model_id={:?}, model_version={}, created_at_ms={}, status={:?}, filled_lots={:?}, broker_order_id={:?}, fill_ids={:?})",
            o.client_order_id, o.signal_id, o.symbol, o.side, o.quantity_lots, o.model_id,
            o.model_version, o.created_at_ms, o.status.name(), o.filled_lots, o.broker_order_id, o.fill_ids
        )
    }
}

/// Return a copy of `order` in `to_status` (a fill may repeat `partially_filled`); `IllegalTransition`
/// when the lifecycle's table forbids the move.
#[pyfunction]
#[pyo3(signature = (order, to_status, filled_lots=None, broker_order_id=None, fill_id=None))]
pub fn moved(
    py: Python<'_>,
    order: &PyOrder,
    to_status: &str,
    filled_lots: Option<f64>,
    broker_order_id: Option<&str>,
    fill_id: Option<&str>,
) -> PyResult<PyOrder> {
    let to = Status::parse(to_status)
        .ok_or_else(|| PyValueError::new_err(format!("unknown order status {to_status:?}")))?;
    engine_state::moved(
        &order.order,
        to,
        filled_lots,
        broker_order_id.unwrap_or(""),
        fill_id.unwrap_or(""),
    )
    .map(|order| PyOrder {
        order: Arc::new(order),
    })
    .map_err(
        |engine_state::IllegalTransition(message)| match illegal(py, message) {
            Ok(error) | Err(error) => error,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// EngineState
// ---------------------------------------------------------------------------------------------

/// A fill booked ahead of its apply on a copy of its symbol's book (`booking.rs`'s offer): the books'
/// revision then (a cache, not state).
struct Ahead {
    offer: booking::Offer,
    books_revision: i64,
}

/// The table of `calendar` when a replay gave one (`kept`: the calendar it was made from and the table).
fn table_of<'a>(
    kept: &'a Option<(Py<PyAny>, Arc<MarketTable>)>,
    calendar: &Bound<'_, PyAny>,
) -> Option<&'a MarketTable> {
    kept.as_ref()
        .filter(|(market, _)| market.bind(calendar.py()).is(calendar))
        .map(|(_, table)| &**table)
}

/// The order header of an order event (None for any other).
fn order_header(event: &Event) -> Option<&crate::events::OrderHeader> {
    match event {
        Event::OrderSubmitted(e) => Some(&e.header),
        Event::OrderAccepted(e) => Some(&e.header),
        Event::OrderRejected(e) => Some(&e.header),
        Event::OrderFilled(e) => Some(&e.header),
        Event::OrderCanceled(e) => Some(&e.header),
        Event::OrderDenied(e) => Some(&e.header),
        _ => None,
    }
}

/// What the core asks while it applies an event: the instruments of the limits in force, and the
/// kernel's calendar (`limits.market`) for a fill's trading day.
struct PyContext<'a, 'py> {
    limits: Arc<gate::Limits>,
    market: gate_py::PyMarket<'a, 'py>,
}

impl engine_state::Context for PyContext<'_, '_> {
    fn instrument(&self, symbol: &str) -> Option<&gate::Spec> {
        self.limits.instruments.get(symbol)
    }

    fn trading_day(&self, at_ms: i64) -> String {
        use crate::market::MarketHours;
        self.market.trading_day(at_ms)
    }
}

/// What the engine knows, changed only by its own methods (the single writer; see `engine_state.rs`).
#[pyclass(name = "EngineState", module = "tickwave_core")]
pub struct PyEngineState {
    state: engine_state::EngineState,
    limits: Py<PyAny>,
    gate_limits: Arc<gate::Limits>,
    // The day's P&L the gate and the breakers ask about (caches only, `day_loss.rs`).
    day: DayValuation,
    // The next risk event's sequence (an id source, not state: ids only need to differ within a run).
    risk_sequence: i64,
    // Each currency's conversion route at the quotes of a P&L revision, under the limits in force.
    routes: (i64, Routes),
    view: Py<PyAny>,
    // The containers the Python readers read, kept in step with `state` by this face alone.
    orders: Py<PyDict>,
    books: Py<PyDict>,
    bookings: Py<PyDict>,
    decided_signals: Py<PyDict>,
    applied_commands: Py<PySet>,
    realized_by_day: Py<PyDict>,
    day_marks: Py<PyDict>,
    stop_denied_at_ms: Py<PyDict>,
    defects: Py<PyList>,
    // The view's containers (the risk checks read them).
    positions: Py<PyDict>,
    pending: Py<PyDict>,
    last_ticks: Py<PyDict>,
    halted_symbols: Py<PySet>,
    order_times_ms: Py<PyAny>,
    ahead: HashMap<String, Ahead>,
    // During a replay: its calendar (the object) and that calendar's table over the replay's span.
    market_table: Option<(Py<PyAny>, Arc<MarketTable>)>,
    // Python `Decimal`s made, by value (a cache: amounts repeat, and a `Decimal` is immutable).
    decimals: NumberMap<Dec, Py<PyAny>>,
    // During a replay: what the containers above have not taken yet (`flush` writes it at its end).
    deferred: Option<Box<Deferred>>,
    // After a replay: the orders and decided signals it changed, not yet written (`sync_rows`, on
    // the first read of either container, or before anything else writes them).
    rows: Option<Rows>,
}

/// What a replay changed in the orders and the decided signals (one entry per signal, most of its
/// containers' rows): written to their containers only when one is read.
#[derive(Default)]
struct Rows {
    // The orders as they were at the start: a place holding another `Arc` at the end moved.
    orders_at_start: Vec<Option<Arc<engine_state::Order>>>,
    decided_from: usize,
}

/// What a replay changed that the Python readers' containers have not taken yet: no Python runs
/// that reads them while `replay_engine` runs, so they are written once, at its end
/// (`PyEngineState::flush`), from the core's values, each key where writing it event by event
/// would have put it (a new key in the order first changed).
#[derive(Default)]
struct Deferred {
    rows: Rows,
    // The symbols of the orders sent, in the order first sent (pending lots' new keys).
    sent_symbols: Vec<engine_state::Text>,
    order_times: bool,
    // Each fill's booking (or None) in the order applied, and where each fill id (the venue's
    // digest, `ids.rs`) is in it.
    bookings: Vec<(String, Option<Booking>)>,
    booking_at: HashMap<String, usize>,
    // The symbols of the fills, in the order first filled (books and positions).
    filled_symbols: Vec<engine_state::Text>,
    // Each (trading day, currency) with realised P&L, in the order first booked.
    realized: Vec<(String, String)>,
    rejects: bool,
    trading_state: bool,
    halts: Vec<String>,
    commands: Vec<String>,
    marks: Option<Vec<(String, Dec)>>,
}

impl Deferred {
    fn new(state: &engine_state::EngineState) -> Deferred {
        Deferred {
            rows: Rows {
                orders_at_start: state.orders.slots().to_vec(),
                decided_from: state.decided_len(),
            },
            ..Deferred::default()
        }
    }

    /// Note `change`, made by applying `event` (`ahead`: the fill's booking made ahead, taken).
    fn note(
        &mut self,
        state: &engine_state::EngineState,
        event: &Event,
        change: Change,
        ahead: Option<Ahead>,
    ) {
        match change {
            Change::Submitted { .. } => {
                if let Some(header) = order_header(event) {
                    first_of(&mut self.sent_symbols, header.symbol.as_str());
                }
                self.order_times = true;
            }
            Change::Answered {
                booking, realized, ..
            } => {
                let Event::OrderFilled(filled) = event else {
                    return;
                };
                let kept = match (ahead, booking) {
                    (Some(ahead), _) => Some(ahead.offer.booking),
                    (None, booking) => booking.map(|booking| *booking),
                };
                self.booking_at
                    .insert(filled.fill_id.clone(), self.bookings.len());
                self.bookings.push((filled.fill_id.clone(), kept));
                if let Some(order) = state.orders.get(&filled.header.client_order_id) {
                    first_of(&mut self.filled_symbols, &order.symbol);
                }
                if let Some((day, currency, _)) = realized {
                    if !self
                        .realized
                        .iter()
                        .any(|(d, c)| *d == day && *c == currency)
                    {
                        self.realized.push((day, currency));
                    }
                }
            }
            Change::Rollover { marks } => self.marks = Some(marks),
            Change::TradingState => self.trading_state = true,
            Change::SymbolHalted { .. } => {
                if let Event::RiskEvent(risk) = event {
                    self.halts.push(risk.symbol.clone());
                }
            }
            Change::Command => {
                if let Event::ControlCommand(command) = event {
                    self.commands.push(command.command_id.clone());
                }
            }
            Change::Unchanged | Change::Denied { .. } | Change::Nothing => {}
        }
    }

    /// The booking of a fill applied since the start (None inside: applied without one).
    fn booking(&self, fill_id: &str) -> Option<&Option<Booking>> {
        self.booking_at.get(fill_id).map(|&at| &self.bookings[at].1)
    }
}

/// Keep `symbol` in `symbols` (a few), where it first came.
fn first_of(symbols: &mut Vec<engine_state::Text>, symbol: &str) {
    if !symbols.iter().any(|known| **known == *symbol) {
        symbols.push(symbol.into());
    }
}

fn dict_of<'py>(view: &Bound<'py, PyAny>, name: &str) -> PyResult<Py<PyDict>> {
    Ok(view.getattr(name)?.cast_into::<PyDict>()?.unbind())
}

#[pymethods]
impl PyEngineState {
    #[new]
    #[pyo3(signature = (limits, view=None))]
    fn new(py: Python<'_>, limits: Py<PyAny>, view: Option<Py<PyAny>>) -> PyResult<Self> {
        let view = match view {
            Some(view) => view,
            None => RISK_VIEW
                .import(py, "execution.core.risk", "RiskView")?
                .call0()?
                .unbind(),
        };
        let bound = view.bind(py);
        let converted = gate_py::limits_of(limits.bind(py))?;
        Ok(PyEngineState {
            day: DayValuation::new(),
            state: engine_state::EngineState::new(),
            gate_limits: converted,
            risk_sequence: 0,
            routes: (-1, Routes::new()),
            limits,
            positions: dict_of(bound, "positions")?,
            pending: dict_of(bound, "pending")?,
            last_ticks: dict_of(bound, "last_ticks")?,
            halted_symbols: bound
                .getattr("halted_symbols")?
                .cast_into::<PySet>()?
                .unbind(),
            order_times_ms: bound.getattr("order_times_ms")?.unbind(),
            view,
            orders: PyDict::new(py).unbind(),
            books: PyDict::new(py).unbind(),
            bookings: PyDict::new(py).unbind(),
            decided_signals: PyDict::new(py).unbind(),
            applied_commands: PySet::empty(py)?.unbind(),
            realized_by_day: PyDict::new(py).unbind(),
            day_marks: PyDict::new(py).unbind(),
            stop_denied_at_ms: PyDict::new(py).unbind(),
            defects: PyList::empty(py).unbind(),
            ahead: HashMap::new(),
            market_table: None,
            decimals: NumberMap::default(),
            deferred: None,
            rows: None,
        })
    }

    // ---- what the readers read ------------------------------------------------------------

    /// The limits in force (the configured ones, or an operator's `set_limit`).
    #[getter]
    fn limits(&self, py: Python<'_>) -> Py<PyAny> {
        self.limits.clone_ref(py)
    }

    /// What the risk checks read (its state half is written here only).
    #[getter]
    fn view(&self, py: Python<'_>) -> Py<PyAny> {
        self.view.clone_ref(py)
    }

    /// Every order kept, by client order id, in the order first stored.
    #[getter]
    fn orders(&mut self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.sync_rows(py)?;
        Ok(self.orders.clone_ref(py))
    }

    /// Each symbol's FIFO book.
    #[getter]
    fn books(&self, py: Python<'_>) -> Py<PyDict> {
        self.books.clone_ref(py)
    }

    /// What each booked fill did to its position, by fill id.
    #[getter]
    fn bookings(&self, py: Python<'_>) -> Py<PyDict> {
        self.bookings.clone_ref(py)
    }

    /// Signal id -> decided at (ms), in journal order.
    #[getter]
    fn decided_signals(&mut self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.sync_rows(py)?;
        Ok(self.decided_signals.clone_ref(py))
    }

    #[getter]
    fn applied_commands(&self, py: Python<'_>) -> Py<PySet> {
        self.applied_commands.clone_ref(py)
    }

    /// Realised P&L per trading day and quote currency (exact `Decimal`s).
    #[getter]
    fn realized_by_day(&self, py: Python<'_>) -> Py<PyDict> {
        self.realized_by_day.clone_ref(py)
    }

    /// Unrealised P&L of each position (quote currency) at the start of `marked_day`.
    #[getter]
    fn day_marks(&self, py: Python<'_>) -> Py<PyDict> {
        self.day_marks.clone_ref(py)
    }

    #[getter]
    fn marked_day(&self) -> &str {
        &self.state.marked_day
    }

    /// Protective closes denied, when (not journaled).
    #[getter]
    fn stop_denied_at_ms(&self, py: Python<'_>) -> Py<PyDict> {
        self.stop_denied_at_ms.clone_ref(py)
    }

    #[getter]
    fn defects(&self, py: Python<'_>) -> Py<PyList> {
        self.defects.clone_ref(py)
    }

    #[getter]
    fn retired_before_ms(&self) -> i64 {
        self.state.retired_before_ms
    }

    #[getter]
    fn retired_orders(&self) -> i64 {
        self.state.retired_orders
    }

    #[getter]
    fn retired_signals(&self) -> i64 {
        self.state.retired_signals
    }

    /// Bumped by every change the day's P&L depends on (the latest ticks, the books, the marks).
    #[getter]
    fn pnl_revision(&self) -> i64 {
        self.state.pnl_revision
    }

    /// Bumped by the changes that are not ticks (a fill booked, the day's marks).
    #[getter]
    fn books_revision(&self) -> i64 {
        self.state.books_revision
    }

    /// `(pnl_revision, books_revision)` in one call (the facade's copy is refreshed after each change).
    fn revisions(&self) -> (i64, i64) {
        (self.state.pnl_revision, self.state.books_revision)
    }

    // ---- the writers ------------------------------------------------------------------------

    /// Apply one recorded event; return False when it changed nothing (a fill seen before, a defect).
    ///
    /// An illegal order transition is a defect: it is logged, kept in `defects` and the order is
    /// left as it was.
    fn apply(&mut self, event: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.apply_known(event)
    }

    /// Keep the latest quote (a late tick does not replace a newer one) and the symbol's price window;
    /// return the P&L revision after it.
    fn observe_tick(&mut self, py: Python<'_>, tick: &Bound<'_, PyAny>) -> PyResult<i64> {
        let symbol_object = tick.getattr(intern!(py, "symbol"))?;
        let symbol = symbol_object.cast::<PyString>()?.to_str()?;
        let quote = gate_py::quote_of(tick)?;
        let window_ms = self.gate_limits.flash_crash_window_ms;
        if self.state.observe_tick(symbol, quote, window_ms) {
            self.last_ticks.bind(py).set_item(&symbol_object, tick)?;
        }
        Ok(self.state.pnl_revision)
    }

    /// Put an operator's limits in force (until a restart: the command is not replayed).
    fn set_limits(&mut self, py: Python<'_>, limits: Py<PyAny>) -> PyResult<()> {
        self.gate_limits = gate_py::limits_of(limits.bind(py))?;
        self.routes = (-1, Routes::new());
        self.limits = limits;
        Ok(())
    }

    // ---- the gate over the state's own values ------------------------------------------------

    /// Run the gate on an order from `symbol`'s position: every check in order (a signal's order),
    /// or, `is_operator`, the operator's checks on an order that must only reduce (flatten, a
    /// protective stop); the first denial `(check, reason, halts)`, or None when it may go.
    #[allow(clippy::too_many_arguments)]
    fn denial(
        &mut self,
        py: Python<'_>,
        symbol: &str,
        side: &str,
        quantity_lots: f64,
        created_at_ms: i64,
        now_ms: i64,
        is_operator: bool,
    ) -> PyResult<gate_py::PyDenial> {
        let order = gate::Proposed {
            symbol,
            is_buy: side == "buy",
            quantity_lots,
            limit_price: None, // the engine's orders are market orders
            created_at_ms,
        };
        self.gate(py, &order, now_ms, is_operator)
    }

    /// Decide on a signal (`decide.rs`): `(intent or None, events, is_duplicate)`, the contract's
    /// structs; `sizing`: the policy's core rules, `instance_id`: the risk events' ids.
    fn on_signal<'py>(
        &mut self,
        py: Python<'py>,
        signal: &Bound<'py, PyAny>,
        sizing: PyRef<'py, PySizing>,
        instance_id: &str,
        now_ms: i64,
    ) -> PyResult<(Option<Bound<'py, PyAny>>, Bound<'py, PyTuple>, bool)> {
        let Event::Signal(signal) = event_from_py(signal)? else {
            return Err(PyValueError::new_err("on_signal takes a Signal"));
        };
        let decision = self.on_signal_of(py, &signal, &sizing.policy, instance_id, now_ms)?;
        let intent = match decision.intent {
            Some(intent) => Some(event_to_py(py, &Event::OrderIntent(intent))?),
            None => None,
        };
        let events = decision
            .events
            .iter()
            .map(|event| event_to_py(py, event))
            .collect::<PyResult<Vec<_>>>()?;
        Ok((intent, PyTuple::new(py, events)?, decision.is_duplicate))
    }

    /// The breakers on a tick of `symbol`, already observed (`decide::on_tick`); `day`: the trading
    /// day of `now_ms` (the valuation's, asked once).
    fn tick_breakers<'py>(
        &mut self,
        py: Python<'py>,
        symbol: &str,
        day: String,
        instance_id: &str,
        now_ms: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = self.tick_breakers_of(py, symbol, day, instance_id, now_ms)?;
        let events = events
            .iter()
            .map(|event| event_to_py(py, event))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, events)
    }

    /// The breaker trips an applied fill or reject leads to (`decide::follow_ups`); `day`: the
    /// trading day of the event's time.
    fn follow_ups<'py>(
        &mut self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        day: String,
        instance_id: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let found = self.follow_ups_of(py, &event_from_py(event)?, day, instance_id)?;
        let events = found
            .iter()
            .map(|event| event_to_py(py, event))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, events)
    }

    /// Unrealised P&L of every open position at its latest mid, in its quote currency (exact
    /// `Decimal`s, by symbol; the limits in force give the contract sizes).
    fn unrealized_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let amounts = decide::unrealized_now(&self.state, &self.gate_limits)
            .map_err(|_| PyOverflowError::new_err(Overflow.to_string()))?;
        let out = PyDict::new(py);
        for (symbol, amount) in amounts {
            out.set_item(symbol, to_py(py, amount)?)?;
        }
        Ok(out)
    }

    /// Build one risk event, the next in sequence, with its stable id (`decide::RiskEvents`).
    #[allow(clippy::too_many_arguments)]
    fn build_risk_event<'py>(
        &mut self,
        py: Python<'py>,
        instance_id: &str,
        kind: &str,
        severity: &str,
        detail: String,
        now_ms: i64,
        trading_state: &str,
        symbol: &str,
        check: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bad = |what: &str| PyValueError::new_err(format!("not a {what}"));
        let severity = Severity::from_name(severity).ok_or_else(|| bad("severity"))?;
        let trading_state =
            TradingState::from_name(trading_state).ok_or_else(|| bad("trading state"))?;
        let mut risk = self.risk_events(instance_id);
        let event = risk.risk(kind, severity, detail, now_ms, trading_state, symbol, check);
        self.risk_sequence = risk.sequence;
        event_to_py(py, &Event::RiskEvent(event))
    }

    /// Remember that a protective close of `symbol` was denied at `now_ms` (retried a second later).
    fn note_stop_denied(&mut self, py: Python<'_>, symbol: &str, now_ms: i64) -> PyResult<()> {
        self.state.note_stop_denied(symbol, now_ms);
        self.stop_denied_at_ms.bind(py).set_item(symbol, now_ms)
    }

    /// Let go of what no later event or decision reads; return how many orders were let go.
    ///
    /// That is: the orders that ended and were created before `before_ms`, their fills' bookings,
    /// and the signals decided before it. Positions, books, realised P&L and working orders are
    /// kept whatever their age; the journal keeps everything.
    fn retire(&mut self, py: Python<'_>, before_ms: i64) -> PyResult<usize> {
        self.sync_rows(py)?;
        let (retired, signals) = self.state.retire(before_ms);
        let (orders, bookings) = (self.orders.bind(py), self.bookings.bind(py));
        for order in &retired {
            orders.del_item(&*order.client_order_id)?;
            for fill_id in &order.fill_ids {
                if bookings.contains(fill_id)? {
                    bookings.del_item(fill_id)?;
                }
            }
        }
        let decided = self.decided_signals.bind(py);
        for signal_id in &signals {
            decided.del_item(&**signal_id)?;
        }
        Ok(retired.len())
    }

    /// `events` (a group of broker events, before it is journaled) with each `Fill` record carrying
    /// what its execution does to the position (`booking.rs`); a symbol's only fill of the group is
    /// kept booked ahead, taken by the apply of that very event while no fill was booked since.
    fn booked(&mut self, events: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let py = events.py();
        let given = events.try_iter()?.collect::<PyResult<Vec<_>>>()?;
        let fill = contracts(py)?.fill.bind(py);
        if !given.iter().any(|event| event.get_type().is(fill)) {
            return Ok(PyList::new(py, given)?.unbind());
        }
        let converted = given
            .iter()
            .map(event_from_py)
            .collect::<PyResult<Vec<_>>>()?;
        let booked = self.book_group(py, converted)?;
        let out = PyList::empty(py);
        for (event, original) in booked.iter().zip(&given) {
            if matches!(event, Event::Fill(_)) {
                out.append(event_to_py(py, event)?)?;
            } else {
                out.append(original)?;
            }
        }
        Ok(out.unbind())
    }

    // ---- queries ------------------------------------------------------------------------------

    /// The working orders `event` cancels (a halt or a flatten: all of them, or its symbol's), in
    /// the order first stored.
    fn cancellations_for<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let kinds = contracts(py)?;
        let cancels = if event.get_type().is(kinds.risk_event.bind(py)) {
            self.state.cancellations_for(&event_from_py(event)?)
        } else {
            Vec::new()
        };
        let orders = PyList::empty(py);
        for cid in cancels {
            if let Some(order) = self.state.orders.shared(&cid) {
                orders.append(PyOrder {
                    order: Arc::clone(order),
                })?;
            }
        }
        Ok(orders)
    }

    /// Return the orders the broker may still fill.
    fn working_orders<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.sync_rows(py)?;
        let orders = self.orders.bind(py);
        let working = PyList::empty(py);
        for order in self.state.working_orders() {
            if let Some(kept) = orders.get_item(&*order.client_order_id)? {
                working.append(kept)?;
            }
        }
        Ok(working)
    }

    /// Return a reconciliation window's start and its orders, in time order.
    ///
    /// The window starts at the earlier of `since_ms` and the oldest order not yet terminal (so
    /// a working order's late fill is still compared).
    fn orders_in_window<'py>(
        &mut self,
        py: Python<'py>,
        since_ms: i64,
    ) -> PyResult<(i64, Bound<'py, PyDict>)> {
        self.sync_rows(py)?;
        let (start_ms, in_window) = self.state.orders_in_window(since_ms);
        let orders = self.orders.bind(py);
        let window = PyDict::new(py);
        for order in in_window {
            if let Some(kept) = orders.get_item(&*order.client_order_id)? {
                window.set_item(&*order.client_order_id, kept)?;
            }
        }
        Ok((start_ms, window))
    }

    /// Return where a reconciliation's window starts: `since_ms`, or the oldest order not yet terminal.
    fn window_start(&self, since_ms: i64) -> i64 {
        self.state.window_start(since_ms)
    }

    /// Return an order's status (None: not kept), without building the order.
    fn status_of(&self, py: Python<'_>, client_order_id: &str) -> PyResult<Option<Py<PyAny>>> {
        self.state
            .orders
            .get(client_order_id)
            .map(|order| status_member(py, order.status))
            .transpose()
    }

    /// Return whether a signal was decided (and not let go).
    fn is_decided(&self, signal_id: &str) -> bool {
        self.state.is_decided(signal_id)
    }

    /// A protective stop on `tick` (`stops.rs`): `(events, intents)`, the contract's structs, or
    /// None when the tick crosses no level; `clock.now_ms()` is asked only once one is crossed.
    fn protective_stop<'py>(
        &mut self,
        py: Python<'py>,
        tick: &Bound<'py, PyAny>,
        clock: &Bound<'py, PyAny>,
        instance_id: &str,
    ) -> PyResult<Option<(Bound<'py, PyTuple>, Bound<'py, PyTuple>)>> {
        let levels = levels_of(self.limits.bind(py))?;
        let symbol = tick.getattr(intern!(py, "symbol"))?;
        let symbol = symbol.cast::<PyString>()?.to_str()?;
        if levels.pips(symbol) == (0.0, 0.0) {
            return Ok(None); // no stop set (the default): the tick is not read further
        }
        // Only the fields a stop reads (its prices, and its time and sequence for the close's ids).
        let tick = Tick {
            symbol: symbol.to_owned(),
            time_ms: tick.getattr(intern!(py, "time_ms"))?.extract()?,
            seq: tick.getattr(intern!(py, "seq"))?.extract()?,
            bid: tick.getattr(intern!(py, "bid"))?.extract()?,
            ask: tick.getattr(intern!(py, "ask"))?.extract()?,
            last: 0.0,
            volume: 0.0,
            flags: 0,
            source: String::new(),
        };
        let overflow = |_| PyOverflowError::new_err(Overflow.to_string());
        let Some(crossed) = stops::crossing(&self.state, &levels, &tick).map_err(overflow)? else {
            return Ok(None);
        };
        let now_ms: i64 = clock.call_method0(intern!(py, "now_ms"))?.extract()?;
        let mut risk = self.risk_events(instance_id);
        let outcome =
            self.with_answers(py, &tick.symbol, now_ms, None, |state, limits, answers| {
                stops::close(state, limits, answers, &mut risk, &tick, &crossed, now_ms)
            })?;
        self.risk_sequence = risk.sequence;
        let (events, intents) = outcome_to_py(py, outcome)?;
        Ok(Some((events, intents)))
    }

    /// An operator's command (`stops::on_control`): `(events, intents, is_duplicate)`, the
    /// contract's structs, or for `set_limit` and `status` (the shell decides them) the words
    /// naming who issued it.
    fn on_control<'py>(
        &mut self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
        instance_id: &str,
        now_ms: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Event::ControlCommand(command) = event_from_py(command)? else {
            return Err(PyValueError::new_err("on_control takes a ControlCommand"));
        };
        let mut risk = self.risk_events(instance_id);
        let control = self.with_answers(
            py,
            &command.symbol,
            now_ms,
            None,
            |state, limits, answers| {
                stops::on_control(state, limits, answers, &mut risk, &command, now_ms)
            },
        )?;
        self.risk_sequence = risk.sequence;
        match control {
            stops::Answer::Shell { who } => Ok(PyString::new(py, &who).into_any()),
            stops::Answer::Decided(control) => {
                let (events, intents) = outcome_to_py(py, control.outcome)?;
                Ok((events, intents, control.is_duplicate)
                    .into_pyobject(py)?
                    .into_any())
            }
        }
    }

    // ---- the day's P&L (`day_loss.rs`), kept in `memo` ------------------------------------------

    /// What `daily_pnl(memo, limits, now_ms)` (not None) `> floor` would answer; `fill`: the fill
    /// booked just now (the only change since the last question), the day valued at its time.
    #[pyo3(signature = (memo, limits, now_ms, floor, fill=None))]
    fn day_is_above(
        &self,
        memo: &Bound<'_, PyDayValuation>,
        limits: &Bound<'_, PyAny>,
        now_ms: i64,
        floor: &Bound<'_, PyAny>,
        fill: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let floor = crate::to_wide(floor)?;
        let fill = match fill.map(event_from_py).transpose()? {
            Some(Event::OrderFilled(fill)) => Some(fill),
            Some(_) => return Err(PyValueError::new_err("day_is_above takes an OrderFilled")),
            None => None,
        };
        let mut valuation = memo.borrow_mut();
        self.ask_day(limits, |on| match &fill {
            Some(fill) => valuation.valuation.is_above_after(on, fill, &floor),
            None => valuation.valuation.is_above(on, now_ms, &floor),
        })
    }

    /// The trading day's P&L of `now_ms` in the account currency, exact (None: a currency has no rate).
    fn daily_pnl(
        &self,
        memo: &Bound<'_, PyDayValuation>,
        limits: &Bound<'_, PyAny>,
        now_ms: i64,
    ) -> PyResult<Option<Py<PyAny>>> {
        let mut valuation = memo.borrow_mut();
        let pnl = self.ask_day(limits, |on| valuation.valuation.daily_pnl(on, now_ms))?;
        pnl.map(|amount| crate::wide_to_py(limits.py(), &amount))
            .transpose()
    }
}

impl PyEngineState {
    /// Apply by exact type (contract messages are never subclassed); a Python error is raised as it is.
    /// One pass of the gate over the state's values, asking the kernel what it decides.
    fn gate(
        &mut self,
        py: Python<'_>,
        order: &gate::Proposed<'_>,
        now_ms: i64,
        operator: bool,
    ) -> PyResult<gate_py::PyDenial> {
        let found =
            self.with_answers(py, order.symbol, now_ms, None, |state, limits, answers| {
                let view = state.view();
                if operator {
                    gate::operator_denial(order, &view, limits, answers, now_ms)
                } else {
                    gate::first_denial(order, &view, limits, answers, now_ms)
                }
            })?;
        Ok(gate_py::py_denial(found))
    }

    /// Run `decide` over the state with the kernel's answers (the calendar, the conversion routes,
    /// kept per P&L revision), the state's own day (`day_loss.rs`) and `symbol`'s flash-crash move;
    /// raise what they raised.
    /// `asked`: the trading day already asked, and the fill booked just now (the day is valued after it).
    fn with_answers<'py, T>(
        &mut self,
        py: Python<'py>,
        symbol: &str,
        now_ms: i64,
        asked: Option<(String, Option<&OrderFilled>)>,
        decide: impl FnOnce(
            &engine_state::EngineState,
            &gate::Limits,
            &mut gate::Answers<'_>,
        ) -> Result<T, Overflow>,
    ) -> PyResult<T> {
        let limits = self.limits.bind(py);
        let revision = self.state.pnl_revision;
        let known = if self.routes.0 == revision {
            std::mem::take(&mut self.routes.1)
        } else {
            Routes::new()
        };
        let raised = gate_py::Raised::default();
        let (day, fill) = match asked {
            Some((day, fill)) => (Some(day), fill),
            None => (None, None),
        };
        let calendar = limits.getattr(intern!(py, "market"))?;
        let table = table_of(&self.market_table, &calendar);
        let market = gate_py::PyMarket {
            market: calendar,
            day,
            raised: &raised,
            table,
        };
        let converted = Arc::clone(&self.gate_limits);
        let rates = gate_py::quote_rates(limits.clone(), &self.state.quotes, known, &raised);
        let mut day = StateDay {
            valuation: &mut self.day,
            on: day_loss::Inputs {
                state: &self.state,
                limits: &converted,
                market: &market,
                rates: &rates,
            },
            now_ms,
            fill,
            failed: None,
        };
        let mut answers = gate::Answers {
            market: &market,
            rates: &rates,
            day: &mut day,
            move_pct: self.state.move_pct(symbol),
        };
        let found = decide(&self.state, &converted, &mut answers)
            .map_err(|_| PyOverflowError::new_err(Overflow.to_string()))?;
        let failed = day.failed.take();
        let known = rates.known.into_inner();
        self.routes = (revision, known);
        raised.check()?;
        unvalued(failed)?;
        Ok(found)
    }

    /// Ask the day's valuation over the state, `limits` (a `RiskLimits`: its instruments table,
    /// its calendar) and the routes at the state's quotes; raise what it or the calendar raised.
    fn ask_day<T>(
        &self,
        limits: &Bound<'_, PyAny>,
        ask: impl FnOnce(&day_loss::Inputs<'_>) -> Result<T, Unvalued>,
    ) -> PyResult<T> {
        let py = limits.py();
        let raised = gate_py::Raised::default();
        let calendar = limits.getattr(intern!(py, "market"))?;
        let market = gate_py::PyMarket {
            table: table_of(&self.market_table, &calendar),
            market: calendar,
            day: None,
            raised: &raised,
        };
        let converted = gate_py::limits_of(limits)?;
        let rates =
            gate_py::quote_rates(limits.clone(), &self.state.quotes, Routes::new(), &raised);
        let answer = ask(&day_loss::Inputs {
            state: &self.state,
            limits: &converted,
            market: &market,
            rates: &rates,
        });
        raised.check()?;
        answer.map_err(unvalued_error)
    }

    /// The risk event builder, numbering from the face's sequence (the caller writes it back).
    fn risk_events(&self, instance_id: &str) -> decide::RiskEvents {
        decide::RiskEvents {
            instance_id: instance_id.to_owned(),
            sequence: self.risk_sequence,
        }
    }

    /// Apply a state-changing event in the core (`EngineState::apply`), then bring the Python
    /// readers' containers in step with what it changed, from the event's core value alone.
    /// `original`: the contract struct it was converted from, when there is one.
    fn dispatch(
        &mut self,
        py: Python<'_>,
        original: Option<&Bound<'_, PyAny>>,
        converted: &Event,
    ) -> PyResult<Result<bool, Refused>> {
        let is_fill = matches!(converted, Event::OrderFilled(_));
        let ahead = match &converted {
            Event::OrderFilled(filled) => self.ahead.remove(&filled.fill_id).filter(|ahead| {
                ahead.offer.fill == *filled && ahead.books_revision == self.state.books_revision
            }),
            _ => None,
        };
        let (order_before, rejects_before) = match &converted {
            _ if self.deferred.is_some() => (None, self.state.consecutive_rejects),
            Event::OrderAccepted(_)
            | Event::OrderRejected(_)
            | Event::OrderFilled(_)
            | Event::OrderCanceled(_) => {
                let cid = order_header(converted).map_or("", |h| h.client_order_id.as_str());
                let symbol = self.state.orders.get(cid).map(|o| o.symbol.clone());
                let pending = symbol
                    .as_ref()
                    .and_then(|symbol| self.state.pending.get(&**symbol).copied());
                (Some((symbol, pending)), self.state.consecutive_rejects)
            }
            _ => (None, self.state.consecutive_rejects),
        };
        let raised = gate_py::Raised::default();
        let calendar = self.limits.bind(py).getattr(intern!(py, "market"))?;
        let context = PyContext {
            limits: Arc::clone(&self.gate_limits),
            market: gate_py::PyMarket {
                table: table_of(&self.market_table, &calendar),
                market: calendar,
                day: None,
                raised: &raised,
            },
        };
        let outcome = self.state.apply(
            converted,
            &context,
            ahead.as_ref().map(|kept| engine_state::Ahead {
                book: &kept.offer.book,
                realized: kept.offer.booking.realized,
            }),
        );
        raised.check()?;
        let change = match outcome {
            Ok(change) => change,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(deferred) = self.deferred.as_mut() {
            let changed = !matches!(change, Change::Unchanged);
            if let Change::Answered {
                defect: Some(defect),
                ..
            } = &change
            {
                self.defects.bind(py).append(defect)?;
            }
            deferred.rejects |= self.state.consecutive_rejects != rejects_before;
            deferred.note(&self.state, converted, change, ahead);
            return Ok(Ok(changed));
        }
        match change {
            Change::Unchanged => return Ok(Ok(false)),
            Change::Submitted { newly_decided } => {
                let header = order_header(converted).expect("a submission's header");
                if newly_decided {
                    self.decided_signals
                        .bind(py)
                        .set_item(&header.signal_id, header.event_at_ms)?;
                }
                let cid = &header.client_order_id;
                self.mirror_order(&PyString::new(py, cid), cid)?;
                self.mirror_pending(py, &header.symbol)?;
                let times = self.order_times_ms.bind(py);
                if let Some(at_ms) = self.state.order_times_ms.back() {
                    times.call_method1(intern!(py, "append"), (*at_ms,))?;
                }
                while times.len()? > self.state.order_times_ms.len() {
                    times.call_method0(intern!(py, "popleft"))?;
                }
            }
            Change::Answered {
                booking,
                realized,
                defect,
            } => {
                let cid = order_header(converted).map_or("", |h| h.client_order_id.as_str());
                let cid_object = PyString::new(py, cid);
                let (symbol, pending_before) = order_before.unwrap_or_default();
                let symbol = symbol.unwrap_or_default();
                if is_fill {
                    let kept = match (ahead, booking) {
                        (Some(ahead), _) => self.py_booking(py, ahead.offer.booking)?,
                        (None, Some(booking)) => self.py_booking(py, *booking)?,
                        (None, None) => py.None(),
                    };
                    if let Event::OrderFilled(filled) = &converted {
                        self.bookings.bind(py).set_item(&filled.fill_id, kept)?;
                    }
                    if let Some(defect) = defect {
                        self.defects.bind(py).append(defect)?;
                    }
                    if let Some((day, currency, total)) = realized {
                        self.mirror_realized(py, &day, &currency, total)?;
                    }
                    self.mirror_book(py, &symbol)?;
                }
                self.mirror_order(&cid_object, cid)?;
                if self.state.pending.get(&*symbol).copied() != pending_before {
                    self.mirror_pending(py, &symbol)?;
                }
                if self.state.consecutive_rejects != rejects_before {
                    self.view.bind(py).setattr(
                        intern!(py, "consecutive_rejects"),
                        self.state.consecutive_rejects,
                    )?;
                }
            }
            Change::Denied { newly_decided } => {
                if let (true, Some(header)) = (newly_decided, order_header(converted)) {
                    self.decided_signals
                        .bind(py)
                        .set_item(&header.signal_id, header.event_at_ms)?;
                }
            }
            Change::Rollover { marks } => {
                let mirror = PyDict::new(py);
                for (symbol, amount) in marks {
                    mirror.set_item(symbol, to_py(py, amount)?)?;
                }
                self.day_marks = mirror.unbind();
            }
            Change::TradingState => {
                let recorded = match original {
                    Some(original) => original.clone(),
                    None => event_to_py(py, converted)?,
                };
                let view = self.view.bind(py);
                view.setattr(
                    intern!(py, "trading_state"),
                    recorded.getattr(intern!(py, "trading_state"))?,
                )?;
                view.setattr(
                    intern!(py, "consecutive_rejects"),
                    self.state.consecutive_rejects,
                )?;
            }
            Change::SymbolHalted { is_halted } => {
                let Event::RiskEvent(risk) = &converted else {
                    return Ok(Ok(true));
                };
                let symbol = &risk.symbol;
                let halted = self.halted_symbols.bind(py);
                if is_halted {
                    halted.add(symbol)?;
                } else {
                    halted.discard(symbol)?;
                }
            }
            Change::Command => {
                if let Event::ControlCommand(command) = &converted {
                    self.applied_commands.bind(py).add(&command.command_id)?;
                }
            }
            Change::Nothing => {}
        }
        Ok(Ok(true))
    }

    /// Keep a trading day's realised total in one currency under the day's mirror.
    fn mirror_realized(
        &self,
        py: Python<'_>,
        day: &str,
        currency: &str,
        total: Dec,
    ) -> PyResult<()> {
        let by_day = self.realized_by_day.bind(py);
        let by_currency = match by_day.get_item(day)? {
            Some(known) => known.cast_into::<PyDict>()?,
            None => {
                let fresh = PyDict::new(py);
                by_day.set_item(day, &fresh)?;
                fresh
            }
        };
        by_currency.set_item(currency, to_py(py, total)?)
    }

    /// `booking::booked` over this state and the limits in force (a fill booked before: its booking
    /// as kept); the fills it offers are kept booked ahead (the latest offers only).
    fn book_group(&mut self, py: Python<'_>, events: Vec<Event>) -> PyResult<Vec<Event>> {
        let bookings = self.bookings.bind(py);
        let deferred = self.deferred.as_deref();
        let earlier = |fill_id: &str| -> Option<Booking> {
            if let Some(kept) = deferred.and_then(|deferred| deferred.booking(fill_id)) {
                return kept.clone();
            }
            let kept = bookings.get_item(fill_id).ok()??;
            let kept = kept.cast::<PyBooking>().ok()?.get();
            let amount = |value: &Py<PyAny>| to_dec(value.bind(py)).ok();
            Some(Booking {
                position_before: amount(&kept.position_before)?,
                position_after: amount(&kept.position_after)?,
                entry_value_after: amount(&kept.entry_value_after)?,
                realized: amount(&kept.realized)?,
                round_trip_id: kept.round_trip_id.clone(),
                opens_round_trip_id: kept.opens_round_trip_id.clone(),
            })
        };
        let (events, offers) = booking::booked(&self.state, &self.gate_limits, events, &earlier)
            .map_err(|bad| match bad {
                booking::Unbooked::Overflow => PyOverflowError::new_err(Overflow.to_string()),
                other => PyValueError::new_err(other.to_string()),
            })?;
        for offer in offers {
            if self.ahead.len() > 64 {
                self.ahead.clear();
            }
            self.ahead.insert(
                offer.fill.fill_id.clone(),
                Ahead {
                    offer,
                    books_revision: self.state.books_revision,
                },
            );
        }
        Ok(events)
    }

    fn py_booking(&mut self, py: Python<'_>, booking: Booking) -> PyResult<Py<PyAny>> {
        let before = self.decimal(py, booking.position_before)?;
        let after = self.decimal(py, booking.position_after)?;
        booking_of(py, booking, before, after)
    }

    /// Keep the core's order `cid` under `key` (the event's own id object: no string made).
    fn mirror_order(&self, key: &Bound<'_, PyAny>, cid: &str) -> PyResult<()> {
        let py = key.py();
        if let Some(order) = self.state.orders.shared(cid) {
            let kept = Bound::new(
                py,
                PyOrder {
                    order: Arc::clone(order),
                },
            )?;
            self.orders.bind(py).set_item(key, kept)?;
        }
        Ok(())
    }

    /// The `Decimal` of `amount` (one made before when it was the same coefficient and exponent).
    fn decimal(&mut self, py: Python<'_>, amount: Dec) -> PyResult<Py<PyAny>> {
        if let Some(known) = self.decimals.get(&amount) {
            return Ok(known.clone_ref(py));
        }
        let made = to_py(py, amount)?;
        if self.decimals.len() >= 4_096 {
            self.decimals.clear();
        }
        self.decimals.insert(amount, made.clone_ref(py));
        Ok(made)
    }

    fn mirror_pending(&mut self, py: Python<'_>, symbol: &str) -> PyResult<()> {
        if let Some(lots) = self.state.pending.get(symbol).copied() {
            let lots = self.decimal(py, lots)?;
            self.pending.bind(py).set_item(symbol, lots)?;
        }
        Ok(())
    }

    fn mirror_book(&mut self, py: Python<'_>, symbol: &str) -> PyResult<()> {
        let Some(lots) = self.state.books.get(symbol).map(|book| book.lots) else {
            return Ok(());
        };
        let lots = self.decimal(py, lots)?;
        let book = &self.state.books[symbol];
        let books = self.books.bind(py);
        let kept = match books.get_item(symbol)? {
            Some(kept) => kept.cast_into::<PyBook>()?,
            None => {
                let fresh = Bound::new(py, PyBook::wrap(crate::positions::Book::new()))?;
                books.set_item(symbol, &fresh)?;
                fresh
            }
        };
        {
            let mut held = kept.borrow_mut();
            held.book.take(book);
            held.book.revision = book.revision;
            held.lots = Some(lots.clone_ref(py));
        }
        self.positions.bind(py).set_item(symbol, lots)
    }

    /// From now on (a replay), keep what changes from the Python readers' containers until `flush`.
    fn defer(&mut self, py: Python<'_>) -> PyResult<()> {
        self.sync_rows(py)?;
        if self.deferred.is_none() {
            self.deferred = Some(Box::new(Deferred::new(&self.state)));
        }
        Ok(())
    }

    /// Bring the Python readers' containers in step with the core after `defer`: each changed key
    /// written once, from the core's values, where writing it at each event would have put it; the
    /// orders and the decided signals when one of them is first read (`Rows`, `sync_rows`).
    fn flush(&mut self, py: Python<'_>) -> PyResult<()> {
        let Some(deferred) = self.deferred.take() else {
            return Ok(());
        };
        self.rows = Some(deferred.rows);
        let mut pending: Vec<engine_state::Text> = deferred.sent_symbols.clone();
        for symbol in self.state.pending.keys() {
            first_of(&mut pending, symbol);
        }
        for symbol in &pending {
            self.mirror_pending(py, symbol)?;
        }
        if deferred.order_times {
            let times = self.order_times_ms.bind(py);
            times.call_method0(intern!(py, "clear"))?;
            let kept: Vec<i64> = self.state.order_times_ms.iter().copied().collect();
            times.call_method1(intern!(py, "extend"), (kept,))?;
        }
        for symbol in &deferred.filled_symbols {
            self.mirror_book(py, symbol)?;
        }
        for (fill_id, kept) in deferred.bookings {
            let kept = match kept {
                Some(booking) => self.py_booking(py, booking)?,
                None => py.None(),
            };
            self.bookings.bind(py).set_item(fill_id, kept)?;
        }
        for (day, currency) in &deferred.realized {
            let total = self.state.realized_by_day[day][currency];
            self.mirror_realized(py, day, currency, total)?;
        }
        let view = self.view.bind(py);
        if deferred.trading_state {
            view.setattr(intern!(py, "trading_state"), &self.state.trading_state)?;
        }
        if deferred.trading_state || deferred.rejects {
            view.setattr(
                intern!(py, "consecutive_rejects"),
                self.state.consecutive_rejects,
            )?;
        }
        let halted = self.halted_symbols.bind(py);
        for symbol in &deferred.halts {
            if self.state.halted_symbols.contains(symbol) {
                halted.add(symbol)?;
            } else {
                halted.discard(symbol)?;
            }
        }
        let applied = self.applied_commands.bind(py);
        for command_id in &deferred.commands {
            applied.add(command_id)?;
        }
        if let Some(marks) = deferred.marks {
            let mirror = PyDict::new(py);
            for (symbol, amount) in marks {
                mirror.set_item(symbol, to_py(py, amount)?)?;
            }
            self.day_marks = mirror.unbind();
        }
        Ok(())
    }

    /// Write the orders and decided signals a replay changed to their containers (`Rows`).
    fn sync_rows(&mut self, py: Python<'_>) -> PyResult<()> {
        let Some(rows) = self.rows.take() else {
            return Ok(());
        };
        let orders = self.orders.bind(py);
        for (place, order) in self.state.orders.slots().iter().enumerate() {
            let Some(order) = order else { continue };
            let was = rows.orders_at_start.get(place).and_then(Option::as_ref);
            if !was.is_some_and(|was| Arc::ptr_eq(was, order)) {
                let kept = PyOrder {
                    order: Arc::clone(order),
                };
                orders.set_item(&*order.client_order_id, kept)?;
            }
        }
        let decided = self.decided_signals.bind(py);
        for (signal_id, at_ms) in self.state.decided_since(rows.decided_from) {
            decided.set_item(&**signal_id, *at_ms)?;
        }
        Ok(())
    }
}

/// Book `fill` of `order` on `book` (a buy adds lots, a sell takes them): the rule the state books fills with.
#[pyfunction]
pub fn book_fill(
    py: Python<'_>,
    mut book: PyRefMut<'_, PyBook>,
    order: &PyOrder,
    fill: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    let fill_lots = dec_of_float(fill.getattr(intern!(py, "fill_lots"))?.extract()?)?;
    let price = dec_of_float(fill.getattr(intern!(py, "fill_price"))?.extract()?)?;
    let fill_id = text(&fill.getattr(intern!(py, "fill_id"))?)?;
    let before = book.lots(py)?;
    let booking = engine_state::book_fill(&mut book.book, &order.order, fill_lots, price, &fill_id);
    book.lots = None;
    let booking = booking.map_err(|_| PyOverflowError::new_err(Overflow.to_string()))?;
    let after = book.lots(py)?;
    booking_of(py, booking, before, after)
}

/// A booking as Python reads it (`Decimal`s), the positions before and after given as made.
fn booking_of(
    py: Python<'_>,
    booking: Booking,
    before: Py<PyAny>,
    after: Py<PyAny>,
) -> PyResult<Py<PyAny>> {
    Ok(Bound::new(
        py,
        PyBooking {
            position_before: before,
            position_after: after,
            entry_value_after: to_py(py, booking.entry_value_after)?,
            realized: to_py(py, booking.realized)?,
            round_trip_id: booking.round_trip_id,
            opens_round_trip_id: booking.opens_round_trip_id,
        },
    )?
    .into_any()
    .unbind())
}

/// Why a day could not be valued, as the error raised.
fn unvalued_error(Unvalued(why): Unvalued) -> PyErr {
    PyOverflowError::new_err(format!("the day's P&L cannot be valued: {why}"))
}

/// Raise why a day could not be valued, if it could not.
fn unvalued(failed: Option<Unvalued>) -> PyResult<()> {
    failed.map_or(Ok(()), |why| Err(unvalued_error(why)))
}

/// The caches of one valuation of an engine state's day (`day_loss.rs`): the state's own gate
/// keeps one, and each `execution.core.valuation.Valuation` another.
#[pyclass(name = "DayValuation", module = "tickwave_core")]
#[derive(Default)]
pub struct PyDayValuation {
    valuation: DayValuation,
}

#[pymethods]
impl PyDayValuation {
    #[new]
    fn new() -> Self {
        PyDayValuation::default()
    }
}

/// Register the engine state's classes and functions.
pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOrder>()?;
    m.add_class::<PyEngineState>()?;
    m.add_class::<PyDayValuation>()?;
    m.add_function(wrap_pyfunction!(moved, m)?)?;
    m.add_function(wrap_pyfunction!(book_fill, m)?)?;
    m.add("RATE_WINDOW_MS", engine_state::RATE_WINDOW_MS)?;
    m.add("RETIRE_MARGIN_MS", engine_state::RETIRE_MARGIN_MS)?;
    Ok(())
}

/// An outcome's events and intents as tuples of the contract's structs.
fn outcome_to_py(
    py: Python<'_>,
    outcome: replay::Outcome,
) -> PyResult<(Bound<'_, PyTuple>, Bound<'_, PyTuple>)> {
    let events = outcome
        .events
        .iter()
        .map(|event| event_to_py(py, event))
        .collect::<PyResult<Vec<_>>>()?;
    let intents = outcome
        .intents
        .into_iter()
        .map(|intent| event_to_py(py, &Event::OrderIntent(intent)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((PyTuple::new(py, events)?, PyTuple::new(py, intents)?))
}

// The limits whose stop levels were last converted (limits are replaced, never changed: identity tells).
static LAST_LEVELS: Mutex<Option<(Py<PyAny>, Arc<stops::Levels>)>> = Mutex::new(None);

/// The stop levels of a `RiskLimits` (`stop_pips` and each instrument's `pip_size`), converted once
/// per limits object; a replay's timeline builds its engine's levels with it too.
pub(crate) fn levels_of(limits: &Bound<'_, PyAny>) -> PyResult<Arc<stops::Levels>> {
    let py = limits.py();
    if let Ok(last) = LAST_LEVELS.lock() {
        if let Some((object, levels)) = last.as_ref() {
            if object.bind(py).is(limits) {
                return Ok(Arc::clone(levels));
            }
        }
    }
    let mut pip_sizes = HashMap::new();
    for item in limits
        .getattr("instruments")?
        .call_method0("items")?
        .try_iter()?
    {
        let (symbol, spec): (String, Bound<'_, PyAny>) = item?.extract()?;
        pip_sizes.insert(symbol, spec.getattr("pip_size")?.extract()?);
    }
    let levels = Arc::new(stops::Levels {
        default: (
            limits.getattr("stop_loss_pips")?.extract()?,
            limits.getattr("take_profit_pips")?.extract()?,
        ),
        by_symbol: limits
            .getattr("stop_pips_by_symbol")?
            .call_method0("items")?
            .try_iter()?
            .map(|item| item?.extract::<(String, (f64, f64))>())
            .collect::<PyResult<_>>()?,
        pip_sizes,
    });
    if let Ok(mut last) = LAST_LEVELS.lock() {
        *last = Some((limits.clone().unbind(), Arc::clone(&levels)));
    }
    Ok(levels)
}

// ---------------------------------------------------------------------------------------------
// The engine as the replay loop drives it
// ---------------------------------------------------------------------------------------------

/// The engine (`execution.core.engine.Engine`) as `replay.rs`'s loop drives it: its decisions in the
/// core over this face's state (`decide.rs`, `booking.rs`, `EngineState::apply`, `cancellations_for`).
/// Borrows the state only for one call at a time, never while Python runs that may read it back (the
/// calendar, the facade's copies kept in step). The first Python error is kept, every later call answers nothing, and [`ReplayEngine::raised`] gives it.
pub(crate) struct ReplayEngine<'py> {
    core: Bound<'py, PyEngineState>,
    facade: Bound<'py, PyAny>,
    valuation: Bound<'py, PyAny>,
    policy: crate::sizing::Policy,
    instance_id: String,
    // The latest tick kept per symbol, in the order first kept: the view's copies are written once,
    // at the end (`synced`), not at every tick.
    last_ticks: Vec<(String, Tick)>,
    raised: Option<PyErr>,
}

/// Whether applying `event` may change the state (the types `dispatch` converts): an order event (one
/// the audit chain links), a risk event, a command.
fn changes_state(event: &Event) -> bool {
    event.is_chained() || matches!(event, Event::RiskEvent(_) | Event::ControlCommand(_))
}

impl<'py> ReplayEngine<'py> {
    /// Drive `engine` (an `execution.core.engine.Engine`).
    pub(crate) fn new(engine: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = engine.py();
        let facade = engine.getattr(intern!(py, "state"))?;
        let core = facade
            .getattr(intern!(py, "_core"))?
            .cast_into::<PyEngineState>()?;
        let sizing = engine
            .getattr(intern!(py, "sizing"))?
            .getattr(intern!(py, "rules"))?;
        let policy = sizing.cast::<PySizing>()?.get().policy;
        let events = engine.getattr(intern!(py, "events"))?;
        core.borrow_mut().defer(py)?;
        Ok(ReplayEngine {
            core,
            valuation: engine.getattr(intern!(py, "valuation"))?,
            instance_id: text(&events.getattr(intern!(py, "instance_id"))?)?,
            facade,
            policy,
            last_ticks: Vec::new(),
            raised: None,
        })
    }

    /// Room in the state for a timeline's `signals` (`EngineState::reserve`).
    pub(crate) fn reserve(&mut self, signals: usize) {
        self.core.borrow_mut().state.reserve(signals);
    }

    /// The first Python error a call raised (every later call answered nothing).
    pub(crate) fn raised(&mut self) -> Option<PyErr> {
        self.raised.take()
    }

    /// `found`, or `otherwise` with its error kept.
    fn kept<T>(&mut self, found: PyResult<T>, otherwise: T) -> T {
        found.unwrap_or_else(|error| {
            self.raised.get_or_insert(error);
            otherwise
        })
    }

    fn limits(&self) -> Bound<'py, PyAny> {
        self.core.borrow().limits.bind(self.core.py()).clone()
    }

    /// Answer the calendar of the limits in force from its table over `[start_ms, end_ms)` (made
    /// by `MarketCalendar.table`), where the table answers; a calendar without one is asked as it is.
    pub(crate) fn use_market_table(&mut self, start_ms: i64, end_ms: i64) -> PyResult<()> {
        let py = self.core.py();
        let calendar = self.limits().getattr(intern!(py, "market"))?;
        if !calendar.hasattr(intern!(py, "table"))? {
            return Ok(());
        }
        let made = calendar.call_method1(intern!(py, "table"), (start_ms, end_ms))?;
        let table = made
            .cast::<crate::market_py::PyMarketTable>()?
            .get()
            .table
            .clone();
        self.core.borrow_mut().market_table = Some((calendar.unbind(), Arc::new(table)));
        Ok(())
    }

    /// Bring the facade's copies the replay did not keep in step up to date (its containers, the
    /// view's latest ticks, the revisions, the day's marks) and let go of the calendar's table.
    pub(crate) fn synced(&mut self) -> PyResult<()> {
        let py = self.core.py();
        let mut core = self.core.borrow_mut();
        core.market_table = None;
        core.flush(py)?;
        let last_ticks = core.last_ticks.bind(py);
        for (symbol, tick) in self.last_ticks.drain(..) {
            last_ticks.set_item(symbol, event_to_py(py, &Event::Tick(tick))?)?;
        }
        let facade = &self.facade;
        let known: i64 = facade.getattr(intern!(py, "books_revision"))?.extract()?;
        if core.state.books_revision != known {
            facade.setattr(intern!(py, "books_revision"), core.state.books_revision)?;
            facade.setattr(intern!(py, "marked_day"), &core.state.marked_day)?;
            facade.setattr(intern!(py, "day_marks"), core.day_marks.clone_ref(py))?;
        }
        facade.setattr(intern!(py, "pnl_revision"), core.state.pnl_revision)
    }

    /// The trading day of `at_ms` as the valuation keys it (its ISO text): the calendar's table's, or the valuation's.
    fn trading_day(&self, at_ms: i64) -> PyResult<String> {
        let py = self.core.py();
        {
            let core = self.core.borrow();
            let calendar = core.limits.bind(py).getattr(intern!(py, "market"))?;
            let known = table_of(&core.market_table, &calendar).and_then(|t| t.trading_day(at_ms));
            if let Some(day) = known {
                return Ok(day);
            }
        }
        self.valuation
            .call_method1(intern!(py, "trading_day"), (self.limits(), at_ms))?
            .extract()
    }

    /// A protective stop on `tick` (`stops.rs`); a denied close is noted, retried a second later.
    fn stop(&mut self, tick: &Tick, now_ms: i64) -> PyResult<Outcome> {
        let py = self.core.py();
        let levels = levels_of(&self.limits())?;
        if levels.pips(&tick.symbol) == (0.0, 0.0) {
            return Ok(Outcome::default()); // no stop set (the default)
        }
        let mut core = self.core.borrow_mut();
        let mut risk = core.risk_events(&self.instance_id);
        let outcome =
            core.with_answers(py, &tick.symbol, now_ms, None, |state, limits, answers| {
                stops::protective_stop(
                    state,
                    limits,
                    &levels,
                    answers,
                    &mut risk,
                    tick,
                    &mut || now_ms,
                )
            })?;
        core.risk_sequence = risk.sequence;
        if outcome
            .events
            .iter()
            .any(|event| matches!(event, Event::OrderDenied(_)))
        {
            core.note_stop_denied(py, &tick.symbol, now_ms)?;
        }
        Ok(outcome)
    }

    /// An operator's command (`stops::on_control`); a replay sends only its closing flatten.
    fn control(&mut self, command: &ControlCommand, now_ms: i64) -> PyResult<Control> {
        let py = self.core.py();
        let mut core = self.core.borrow_mut();
        let mut risk = core.risk_events(&self.instance_id);
        let answer = core.with_answers(
            py,
            &command.symbol,
            now_ms,
            None,
            |state, limits, answers| {
                stops::on_control(state, limits, answers, &mut risk, command, now_ms)
            },
        )?;
        core.risk_sequence = risk.sequence;
        match answer {
            stops::Answer::Decided(control) => Ok(control),
            stops::Answer::Shell { .. } => Err(PyValueError::new_err(
                "a replay decides no set_limit or status command (the shell's)",
            )),
        }
    }

    fn decide_signal(&mut self, signal: &Signal, now_ms: i64) -> PyResult<Decision> {
        let py = self.core.py();
        self.core
            .borrow_mut()
            .on_signal_of(py, signal, &self.policy, &self.instance_id, now_ms)
    }

    fn tick(&mut self, tick: &Tick, now_ms: i64) -> PyResult<Vec<Event>> {
        let py = self.core.py();
        {
            let mut core = self.core.borrow_mut();
            let window_ms = core.gate_limits.flash_crash_window_ms;
            let quote = gate::Quote {
                time_ms: tick.time_ms,
                bid: tick.bid,
                ask: tick.ask,
            };
            if core.state.observe_tick(&tick.symbol, quote, window_ms) {
                match self
                    .last_ticks
                    .iter_mut()
                    .find(|(symbol, _)| *symbol == tick.symbol)
                {
                    Some(kept) => kept.1 = tick.clone(),
                    None => self.last_ticks.push((tick.symbol.clone(), tick.clone())),
                }
            }
        }
        let day = self.trading_day(now_ms)?;
        let events = self.core.borrow_mut().tick_breakers_of(
            py,
            &tick.symbol,
            day,
            &self.instance_id,
            now_ms,
        )?;
        Ok(events)
    }

    /// Apply in the core, keep the facade's copies in step (as `EngineState.apply` does), then the
    /// follow-ups of an applied fill or reject.
    fn applied(&mut self, event: &Event) -> PyResult<Vec<Event>> {
        let py = self.core.py();
        if !changes_state(event) {
            return Ok(Vec::new()); // applying it changes nothing (`dispatch`)
        }
        if !self.core.borrow_mut().apply_event(py, None, event)? {
            return Ok(Vec::new());
        }
        let at_ms = match event {
            Event::OrderFilled(filled) => filled.header.event_at_ms,
            Event::OrderRejected(rejected) => rejected.header.event_at_ms,
            _ => return Ok(Vec::new()),
        };
        let day = self.trading_day(at_ms)?;
        self.core
            .borrow_mut()
            .follow_ups_of(py, event, day, &self.instance_id)
    }
}

impl Drop for ReplayEngine<'_> {
    /// The calendar's table was for this replay only; the containers are brought in step with
    /// the core even when the replay ended in an error.
    fn drop(&mut self) {
        if let Ok(mut core) = self.core.try_borrow_mut() {
            core.market_table = None;
            if let Err(error) = core.flush(self.core.py()) {
                error.write_unraisable(self.core.py(), None);
            }
        }
    }
}

impl Engine for ReplayEngine<'_> {
    fn on_signal(&mut self, signal: &Signal, now_ms: i64) -> Decision {
        if self.raised.is_some() {
            return Decision::default();
        }
        let found = self.decide_signal(signal, now_ms);
        self.kept(found, Decision::default())
    }

    fn submission(&self, intent: &OrderIntent, venue: &str, now_ms: i64) -> OrderSubmitted {
        decide::submission(intent, venue, now_ms)
    }

    fn on_tick(&mut self, tick: &Tick, now_ms: i64) -> Vec<Event> {
        if self.raised.is_some() {
            return Vec::new();
        }
        let found = self.tick(tick, now_ms);
        self.kept(found, Vec::new())
    }

    fn protective_stop(&mut self, tick: &Tick, now_ms: i64) -> Outcome {
        if self.raised.is_some() {
            return Outcome::default();
        }
        let found = self.stop(tick, now_ms);
        self.kept(found, Outcome::default())
    }

    fn apply(&mut self, event: &Event, _now_ms: i64) -> Vec<Event> {
        if self.raised.is_some() {
            return Vec::new();
        }
        let found = self.applied(event);
        self.kept(found, Vec::new())
    }

    fn booked(&mut self, events: Vec<Event>) -> Vec<Event> {
        if self.raised.is_some() {
            return Vec::new();
        }
        let py = self.core.py();
        let found = self.core.borrow_mut().book_group(py, events);
        self.kept(found, Vec::new())
    }

    fn cancellations_for(&self, event: &Event) -> Vec<String> {
        self.core
            .borrow()
            .state
            .cancellations_for(event)
            .into_iter()
            .map(|client_order_id| client_order_id.to_string())
            .collect()
    }

    fn on_control(&mut self, command: &ControlCommand, now_ms: i64) -> Control {
        if self.raised.is_some() {
            return Control::default();
        }
        let found = self.control(command, now_ms);
        self.kept(found, Control::default())
    }
}

impl PyEngineState {
    /// `apply` of a contract struct: an event of a type that changes no state changes nothing;
    /// the others are converted once and applied (`apply_event`).
    fn apply_known(&mut self, event: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = event.py();
        // the containers in step first, were a replay's changes still kept back
        self.flush(py)?;
        self.sync_rows(py)?;
        let kinds = contracts(py)?;
        let kind = event.get_type();
        let changes_state = [
            &kinds.submitted,
            &kinds.accepted,
            &kinds.rejected,
            &kinds.filled,
            &kinds.canceled,
            &kinds.denied,
            &kinds.risk_event,
            &kinds.command,
        ]
        .iter()
        .any(|known| kind.is(known.bind(py)));
        if !changes_state {
            return Ok(true);
        }
        let converted = event_from_py(event)?;
        self.apply_event(py, Some(event), &converted)
    }

    /// Apply an event that may change the state (`dispatch`); an illegal order transition is a
    /// defect: logged, kept in `defects`, the order left as it was.
    fn apply_event(
        &mut self,
        py: Python<'_>,
        original: Option<&Bound<'_, PyAny>>,
        converted: &Event,
    ) -> PyResult<bool> {
        let name = crate::events::SCHEMA[converted.kind()].name;
        match self.dispatch(py, original, converted)? {
            Ok(changed) => Ok(changed),
            Err(Refused::Illegal(engine_state::IllegalTransition(message))) => {
                self.defects.bind(py).append(&message)?;
                LOGGER
                    .get_or_try_init(py, || {
                        Ok::<_, PyErr>(
                            py.import("logging")?
                                .call_method1("getLogger", ("execution.core.engine_state",))?
                                .unbind(),
                        )
                    })?
                    .call_method1(py, "error", ("defect: %s (event %s)", message, name))?;
                Ok(false)
            }
            Err(other) => Err(refused(py, other)?),
        }
    }

    /// Decide on `signal` (`decide::on_signal`), the risk events numbered from the face's sequence.
    fn on_signal_of(
        &mut self,
        py: Python<'_>,
        signal: &Signal,
        policy: &crate::sizing::Policy,
        instance_id: &str,
        now_ms: i64,
    ) -> PyResult<decide::Decision> {
        let mut risk = self.risk_events(instance_id);
        let decision = self.with_answers(
            py,
            &signal.symbol,
            now_ms,
            None,
            |state, limits, answers| {
                decide::on_signal(state, policy, limits, answers, &mut risk, signal, now_ms)
            },
        )?;
        self.risk_sequence = risk.sequence;
        Ok(decision)
    }

    /// The breakers on a tick of `symbol`, already observed (`decide::on_tick`); `day`: `now_ms`'s trading day.
    fn tick_breakers_of(
        &mut self,
        py: Python<'_>,
        symbol: &str,
        day: String,
        instance_id: &str,
        now_ms: i64,
    ) -> PyResult<Vec<Event>> {
        let mut risk = self.risk_events(instance_id);
        let events = self.with_answers(
            py,
            symbol,
            now_ms,
            Some((day, None)),
            |state, limits, answers| {
                decide::on_tick(state, limits, answers, &mut risk, symbol, now_ms)
            },
        )?;
        self.risk_sequence = risk.sequence;
        Ok(events)
    }

    /// The breaker trips applied `event` (a fill or a reject; `recorded`: its contract struct) leads to
    /// (`decide::follow_ups`); `day`: the trading day of its time.
    fn follow_ups_of(
        &mut self,
        py: Python<'_>,
        event: &Event,
        day: String,
        instance_id: &str,
    ) -> PyResult<Vec<Event>> {
        let (at_ms, fill) = match event {
            Event::OrderFilled(fill) => (fill.header.event_at_ms, Some(fill)),
            Event::OrderRejected(rejected) => (rejected.header.event_at_ms, None),
            _ => return Ok(Vec::new()),
        };
        let mut risk = self.risk_events(instance_id);
        let found = self.with_answers(
            py,
            "",
            at_ms,
            Some((day, fill)),
            |state, limits, answers| {
                Ok(decide::follow_ups(
                    state,
                    limits,
                    answers.day,
                    &mut risk,
                    event,
                ))
            },
        )?;
        self.risk_sequence = risk.sequence;
        Ok(found.into_iter().collect())
    }
}
