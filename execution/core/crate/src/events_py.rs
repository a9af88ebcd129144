//! The events' Python face: `tickwave.contracts` structs to and from `events.rs` values, their
//! wire bytes and their audit chain. Conversions only; the encoding is `events.rs`.
//!
//! Closed by default: a value the Rust type cannot hold exactly (an int beyond 64 bits, a float
//! field holding an int, a `Literal` field holding another text, a `Decimal` that is not finite or
//! wider than 77 digits, a struct of another type) is refused with an error, never written in
//! other bytes than msgspec's.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use crate::events::{
    kind, Command, ControlCommand, Direction, Event, Fill, OrderAccepted, OrderCanceled,
    OrderDenied, OrderFilled, OrderHeader, OrderIntent, OrderRejected, OrderSubmitted, OrderType,
    RiskEvent, Severity, Side, Signal, Tick, TradingState, SCHEMA,
};
use crate::money::Dec;
use crate::to_py;

/// What the conversions need from Python, looked up once.
struct Contracts {
    types: Vec<Py<PyType>>, // in SCHEMA's order
    unset: Py<PyAny>,
    decimal: Py<PyType>,
    astuple: Py<PyAny>,
}

static CONTRACTS: PyOnceLock<Contracts> = PyOnceLock::new();

fn contracts(py: Python<'_>) -> PyResult<&Contracts> {
    CONTRACTS.get_or_try_init(py, || {
        let module = py.import("tickwave.contracts")?;
        let mut types = Vec::with_capacity(SCHEMA.len());
        for schema in SCHEMA.iter() {
            types.push(module.getattr(schema.name)?.cast_into::<PyType>()?.unbind());
        }
        let msgspec = py.import("msgspec")?;
        Ok::<_, PyErr>(Contracts {
            types,
            unset: msgspec.getattr("UNSET")?.unbind(),
            decimal: py
                .import("decimal")?
                .getattr("Decimal")?
                .cast_into::<PyType>()?
                .unbind(),
            astuple: py.import("msgspec.structs")?.getattr("astuple")?.unbind(),
        })
    })
}

/// A struct's field values in order, read as the Rust types hold them.
struct Fields<'a, 'py> {
    values: &'a [Bound<'py, PyAny>],
    names: &'static [&'static str],
    at: usize,
    contracts: &'a Contracts,
}

impl<'a, 'py> Fields<'a, 'py> {
    fn next(&mut self) -> (&'a Bound<'py, PyAny>, &'static str) {
        let at = self.at;
        self.at += 1;
        (&self.values[at], self.names[at])
    }

    fn wrong(name: &str, what: &str, value: &Bound<'py, PyAny>) -> PyErr {
        let shown = value
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        PyTypeError::new_err(format!("{name} must be {what}, got {shown}"))
    }

    fn text_of(value: &Bound<'py, PyAny>, name: &str) -> PyResult<String> {
        match value.cast_exact::<PyString>() {
            Ok(text) => Ok(text.to_str()?.to_owned()),
            Err(_) => Err(Self::wrong(name, "a str", value)),
        }
    }

    fn text(&mut self) -> PyResult<String> {
        let (value, name) = self.next();
        Self::text_of(value, name)
    }

    fn float_of(value: &Bound<'py, PyAny>, name: &str) -> PyResult<f64> {
        match value.cast_exact::<PyFloat>() {
            Ok(number) => Ok(number.value()),
            Err(_) => Err(Self::wrong(name, "a float", value)),
        }
    }

    fn float(&mut self) -> PyResult<f64> {
        let (value, name) = self.next();
        Self::float_of(value, name)
    }

    fn int_of(value: &Bound<'py, PyAny>, name: &str) -> PyResult<i64> {
        match value.cast_exact::<PyInt>() {
            Ok(number) => number.extract(), // OverflowError beyond 64 bits
            Err(_) => Err(Self::wrong(name, "an int", value)),
        }
    }

    fn int(&mut self) -> PyResult<i64> {
        let (value, name) = self.next();
        Self::int_of(value, name)
    }

    fn boolean(&mut self) -> PyResult<bool> {
        let (value, name) = self.next();
        match value.cast_exact::<PyBool>() {
            Ok(flag) => Ok(flag.is_true()),
            Err(_) => Err(Self::wrong(name, "a bool", value)),
        }
    }

    fn choice<T>(&mut self, read: fn(&str) -> Option<T>) -> PyResult<T> {
        let (value, name) = self.next();
        let text = Self::text_of(value, name)?;
        read(&text).ok_or_else(|| PyValueError::new_err(format!("{name}: {text:?} is not allowed")))
    }

    fn optional_float(&mut self) -> PyResult<Option<f64>> {
        let (value, name) = self.next();
        if value.is_none() {
            return Ok(None);
        }
        Self::float_of(value, name).map(Some)
    }

    fn optional_int(&mut self) -> PyResult<Option<i64>> {
        let (value, name) = self.next();
        if value.is_none() {
            return Ok(None);
        }
        Self::int_of(value, name).map(Some)
    }

    fn is_unset(&self) -> bool {
        self.values[self.at].is(self.contracts.unset.bind(self.values[self.at].py()))
    }

    fn unset_text(&mut self) -> PyResult<Option<String>> {
        if self.is_unset() {
            self.at += 1;
            return Ok(None);
        }
        self.text().map(Some)
    }

    fn decimal_of(&self, value: &Bound<'py, PyAny>, name: &str) -> PyResult<Dec> {
        if !value.get_type().is(self.contracts.decimal.bind(value.py())) {
            return Err(Self::wrong(name, "a Decimal", value));
        }
        let text = value.str()?;
        let text = text.to_str()?;
        let amount = Dec::parse(text).map_err(|bad| {
            PyValueError::new_err(format!("{name} must be a finite decimal, got {:?}", bad.0))
        })?;
        // A negative zero or a text Dec writes otherwise would encode in other bytes: refused.
        if amount.to_string() != text {
            return Err(PyValueError::new_err(format!(
                "{name}: {text} is not written as the core writes {amount}"
            )));
        }
        Ok(amount)
    }

    /// A `Decimal | UNSET` field (`None` allowed when `nullable`): None unset, Some(None) null.
    fn unset_decimal(&mut self, nullable: bool) -> PyResult<Option<Option<Dec>>> {
        if self.is_unset() {
            self.at += 1;
            return Ok(None);
        }
        let (value, name) = self.next();
        if nullable && value.is_none() {
            return Ok(Some(None));
        }
        self.decimal_of(value, name)
            .map(|amount| Some(Some(amount)))
    }

    fn header(&mut self) -> PyResult<OrderHeader> {
        Ok(OrderHeader {
            client_order_id: self.text()?,
            signal_id: self.text()?,
            symbol: self.text()?,
            model_id: self.text()?,
            model_version: self.int()?,
            event_at_ms: self.int()?,
        })
    }

    fn texts(&mut self) -> PyResult<Vec<String>> {
        let (value, name) = self.next();
        let items: Vec<Bound<'py, PyAny>> = if let Ok(tuple) = value.cast_exact::<PyTuple>() {
            tuple.iter().collect()
        } else if let Ok(list) = value.cast_exact::<PyList>() {
            list.iter().collect()
        } else {
            return Err(Self::wrong(name, "a tuple of str", value));
        };
        items.iter().map(|item| Self::text_of(item, name)).collect()
    }

    fn text_pairs(&mut self) -> PyResult<Vec<(String, String)>> {
        let (value, name) = self.next();
        let Ok(dict) = value.cast_exact::<PyDict>() else {
            return Err(Self::wrong(name, "a dict of str", value));
        };
        dict.iter()
            .map(|(key, item)| Ok((Self::text_of(&key, name)?, Self::text_of(&item, name)?)))
            .collect()
    }
}

/// Read a `tickwave.contracts` struct into its Rust value.
pub(crate) fn event_from_py(message: &Bound<'_, PyAny>) -> PyResult<Event> {
    let py = message.py();
    let contracts = contracts(py)?;
    let message_type = message.get_type();
    let Some(found) = contracts
        .types
        .iter()
        .position(|t| message_type.is(t.bind(py)))
    else {
        return Err(PyTypeError::new_err(format!(
            "not an event the core encodes: {}",
            message_type.name()?
        )));
    };
    let tuple = contracts.astuple.bind(py).call1((message,))?;
    let tuple = tuple.cast_into::<PyTuple>()?;
    let mut f = Fields {
        values: tuple.as_slice(),
        names: SCHEMA[found].fields,
        at: 0,
        contracts,
    };
    if f.values.len() != f.names.len() {
        return Err(PyTypeError::new_err(format!(
            "{} has {} fields, the core's {}",
            SCHEMA[found].name,
            f.values.len(),
            f.names.len()
        )));
    }
    Ok(match found {
        kind::TICK => Event::Tick(Tick {
            symbol: f.text()?,
            time_ms: f.int()?,
            seq: f.int()?,
            bid: f.float()?,
            ask: f.float()?,
            last: f.float()?,
            volume: f.float()?,
            flags: f.int()?,
            source: f.text()?,
        }),
        kind::SIGNAL => Event::Signal(Signal {
            signal_id: f.text()?,
            symbol: f.text()?,
            timeframe: f.text()?,
            bar_start_ms: f.int()?,
            direction: f.choice(Direction::from_name)?,
            strength: f.float()?,
            confidence: f.float()?,
            model_id: f.text()?,
            model_version: f.int()?,
            created_at_ms: f.int()?,
            members: f.texts()?,
        }),
        kind::ORDER_INTENT => Event::OrderIntent(OrderIntent {
            client_order_id: f.text()?,
            signal_id: f.text()?,
            symbol: f.text()?,
            side: f.choice(Side::from_name)?,
            quantity_lots: f.float()?,
            order_type: f.choice(OrderType::from_name)?,
            model_id: f.text()?,
            model_version: f.int()?,
            created_at_ms: f.int()?,
            limit_price: f.optional_float()?,
        }),
        kind::ORDER_SUBMITTED => Event::OrderSubmitted(OrderSubmitted {
            header: f.header()?,
            side: f.choice(Side::from_name)?,
            quantity_lots: f.float()?,
            order_type: f.choice(OrderType::from_name)?,
            limit_price: f.optional_float()?,
            venue: f.unset_text()?,
        }),
        kind::ORDER_ACCEPTED => Event::OrderAccepted(OrderAccepted {
            header: f.header()?,
            broker_order_id: f.text()?,
        }),
        kind::ORDER_REJECTED => Event::OrderRejected(OrderRejected {
            header: f.header()?,
            reason: f.text()?,
            broker_code: f.optional_int()?,
        }),
        kind::ORDER_FILLED => Event::OrderFilled(OrderFilled {
            header: f.header()?,
            fill_id: f.text()?,
            fill_price: f.float()?,
            fill_lots: f.float()?,
            cumulative_lots: f.float()?,
            is_final: f.boolean()?,
        }),
        kind::ORDER_CANCELED => Event::OrderCanceled(OrderCanceled {
            header: f.header()?,
            reason: f.text()?,
        }),
        kind::ORDER_DENIED => Event::OrderDenied(OrderDenied {
            header: f.header()?,
            reason: f.text()?,
            check: f.text()?,
        }),
        kind::FILL => Event::Fill(Box::new(Fill {
            fill_id: f.text()?,
            client_order_id: f.text()?,
            signal_id: f.text()?,
            symbol: f.text()?,
            side: f.choice(Side::from_name)?,
            price: f.float()?,
            quantity_lots: f.float()?,
            commission: f.float()?,
            filled_at_ms: f.int()?,
            model_id: f.text()?,
            model_version: f.int()?,
            broker_deal_id: f.text()?,
            position_before_lots: f.unset_decimal(false)?.flatten(),
            position_after_lots: f.unset_decimal(false)?.flatten(),
            entry_value_after: f.unset_decimal(false)?.flatten(),
            realized_pnl_quote: f.unset_decimal(false)?.flatten(),
            realized_pnl_account: f.unset_decimal(true)?,
            round_trip_id: f.unset_text()?,
            opens_round_trip_id: f.unset_text()?,
        })),
        kind::RISK_EVENT => Event::RiskEvent(RiskEvent {
            risk_event_id: f.text()?,
            kind: f.text()?,
            severity: f.choice(Severity::from_name)?,
            trading_state: f.choice(TradingState::from_name)?,
            detail: f.text()?,
            occurred_at_ms: f.int()?,
            symbol: f.text()?,
            check: f.text()?,
        }),
        _ => Event::ControlCommand(ControlCommand {
            command_id: f.text()?,
            command: f.choice(Command::from_name)?,
            issued_by: f.text()?,
            issued_at_ms: f.int()?,
            reason: f.text()?,
            symbol: f.text()?,
            params: f.text_pairs()?,
        }),
    })
}

/// The field values of a struct being built, in order.
struct Values<'py> {
    py: Python<'py>,
    items: Vec<Bound<'py, PyAny>>,
    unset: &'py Bound<'py, PyAny>,
}

impl<'py> Values<'py> {
    fn put<T: IntoPyObject<'py>>(&mut self, value: T) -> PyResult<&mut Self> {
        self.items.push(value.into_bound_py_any(self.py)?);
        Ok(self)
    }
    fn unset_or<T: IntoPyObject<'py>>(&mut self, value: Option<T>) -> PyResult<&mut Self> {
        match value {
            Some(value) => self.put(value),
            None => {
                self.items.push(self.unset.clone());
                Ok(self)
            }
        }
    }
    fn amount(&mut self, value: Option<Option<Dec>>) -> PyResult<&mut Self> {
        match value {
            None => self.unset_or(None::<bool>),
            Some(None) => self.put(self.py.None()),
            Some(Some(amount)) => {
                let amount = to_py(self.py, amount)?;
                self.put(amount)
            }
        }
    }
    fn header(&mut self, h: &OrderHeader) -> PyResult<&mut Self> {
        self.put(&h.client_order_id)?
            .put(&h.signal_id)?
            .put(&h.symbol)?
            .put(&h.model_id)?
            .put(h.model_version)?
            .put(h.event_at_ms)
    }
}

use pyo3::conversion::IntoPyObjectExt;

/// Build the `tickwave.contracts` struct of a Rust event (its checks run as on any construction).
pub(crate) fn event_to_py<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyAny>> {
    let contracts = contracts(py)?;
    let unset = contracts.unset.bind(py);
    let mut v = Values {
        py,
        items: Vec::with_capacity(SCHEMA[event.kind()].fields.len()),
        unset,
    };
    match event {
        Event::Tick(t) => v
            .put(&t.symbol)?
            .put(t.time_ms)?
            .put(t.seq)?
            .put(t.bid)?
            .put(t.ask)?
            .put(t.last)?
            .put(t.volume)?
            .put(t.flags)?
            .put(&t.source)?,
        Event::Signal(s) => v
            .put(&s.signal_id)?
            .put(&s.symbol)?
            .put(&s.timeframe)?
            .put(s.bar_start_ms)?
            .put(s.direction.name())?
            .put(s.strength)?
            .put(s.confidence)?
            .put(&s.model_id)?
            .put(s.model_version)?
            .put(s.created_at_ms)?
            .put(PyTuple::new(py, &s.members)?)?,
        Event::OrderIntent(i) => v
            .put(&i.client_order_id)?
            .put(&i.signal_id)?
            .put(&i.symbol)?
            .put(i.side.name())?
            .put(i.quantity_lots)?
            .put(i.order_type.name())?
            .put(&i.model_id)?
            .put(i.model_version)?
            .put(i.created_at_ms)?
            .put(i.limit_price)?,
        Event::OrderSubmitted(e) => v
            .header(&e.header)?
            .put(e.side.name())?
            .put(e.quantity_lots)?
            .put(e.order_type.name())?
            .put(e.limit_price)?
            .unset_or(e.venue.as_deref())?,
        Event::OrderAccepted(e) => v.header(&e.header)?.put(&e.broker_order_id)?,
        Event::OrderRejected(e) => v.header(&e.header)?.put(&e.reason)?.put(e.broker_code)?,
        Event::OrderFilled(e) => v
            .header(&e.header)?
            .put(&e.fill_id)?
            .put(e.fill_price)?
            .put(e.fill_lots)?
            .put(e.cumulative_lots)?
            .put(e.is_final)?,
        Event::OrderCanceled(e) => v.header(&e.header)?.put(&e.reason)?,
        Event::OrderDenied(e) => v.header(&e.header)?.put(&e.reason)?.put(&e.check)?,
        Event::Fill(f) => v
            .put(&f.fill_id)?
            .put(&f.client_order_id)?
            .put(&f.signal_id)?
            .put(&f.symbol)?
            .put(f.side.name())?
            .put(f.price)?
            .put(f.quantity_lots)?
            .put(f.commission)?
            .put(f.filled_at_ms)?
            .put(&f.model_id)?
            .put(f.model_version)?
            .put(&f.broker_deal_id)?
            .amount(f.position_before_lots.map(Some))?
            .amount(f.position_after_lots.map(Some))?
            .amount(f.entry_value_after.map(Some))?
            .amount(f.realized_pnl_quote.map(Some))?
            .amount(f.realized_pnl_account)?
            .unset_or(f.round_trip_id.as_deref())?
            .unset_or(f.opens_round_trip_id.as_deref())?,
        Event::RiskEvent(r) => v
            .put(&r.risk_event_id)?
            .put(&r.kind)?
            .put(r.severity.name())?
            .put(r.trading_state.name())?
            .put(&r.detail)?
            .put(r.occurred_at_ms)?
            .put(&r.symbol)?
            .put(&r.check)?,
        Event::ControlCommand(c) => {
            let params = PyDict::new(py);
            for (key, value) in &c.params {
                params.set_item(key, value)?;
            }
            v.put(&c.command_id)?
                .put(c.command.name())?
                .put(&c.issued_by)?
                .put(c.issued_at_ms)?
                .put(&c.reason)?
                .put(&c.symbol)?
                .put(params)?
        }
    };
    let items = PyTuple::new(py, v.items)?;
    contracts.types[event.kind()].bind(py).call1(items)
}

/// Return the wire bytes of a `tickwave.contracts` event, written by the core: exactly
/// `tickwave.contracts.encode(message)` (TypeError / ValueError / OverflowError for a value the
/// core does not hold exactly).
#[pyfunction]
fn encode_event<'py>(message: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let event = event_from_py(message)?;
    let mut out = Vec::with_capacity(384);
    event.encode_into(&mut out);
    Ok(PyBytes::new(message.py(), &out))
}

/// Return the struct a `tickwave.contracts` event gives after a trip through the core's value.
#[pyfunction]
fn event_round_trip<'py>(message: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event = event_from_py(message)?;
    event_to_py(message.py(), &event)
}

/// Return each event type's `(struct name, tag, field names)`, as the core writes them.
#[pyfunction]
fn event_schema() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    SCHEMA
        .iter()
        .map(|schema| (schema.name, schema.tag, schema.fields.to_vec()))
        .collect()
}

/// Link the order events among `messages` after `head` (next seq `next_seq`), each over the
/// bytes the core writes for it; return `(new head, next seq)`.
#[pyfunction]
fn chain_events(head: &str, next_seq: i64, messages: &Bound<'_, PyAny>) -> PyResult<(String, i64)> {
    if !head.is_ascii() {
        return Err(PyValueError::new_err(
            "a chain's previous hash is ASCII hex",
        ));
    }
    let mut events = Vec::new();
    for message in messages.try_iter()? {
        events.push(event_from_py(&message?)?);
    }
    Ok(crate::events::chain_extend(head, next_seq, &events))
}

/// Register the events' functions.
pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_event, m)?)?;
    m.add_function(wrap_pyfunction!(event_round_trip, m)?)?;
    m.add_function(wrap_pyfunction!(event_schema, m)?)?;
    m.add_function(wrap_pyfunction!(chain_events, m)?)?;
    Ok(())
}
