//! The paper venue's Python face (`tickwave_core.PaperVenue`): conversions only, the rules are `paper.rs`.
//!
//! The venue keeps the shell's ticks as they are and hands them back; its orders and fills are the core's
//! values (`events.rs`, `broker.rs`), and the events it answers with go out as `tickwave.contracts` structs,
//! amounts as `Decimal`s.

use crate::maps::{HashMap, HashMapExt};

use pyo3::exceptions::{PyKeyError, PyOverflowError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::broker::BrokerFill;
use crate::events::{Event, OrderSubmitted};
use crate::events_py::{event_from_py, event_to_py};
use crate::money::Overflow;
use crate::paper::{Quote, Spec, Submit, Venue, VenueError};
use crate::{to_dec, to_py};

type Kept = Py<PyAny>;

fn venue_error(error: VenueError) -> PyErr {
    match error {
        VenueError::UnknownOrder(what) | VenueError::UnknownSymbol(what) => {
            PyKeyError::new_err(what)
        }
        VenueError::Overflow => PyOverflowError::new_err(Overflow.to_string()),
        VenueError::Price(text) => PyValueError::new_err(format!("not a finite price: {text}")),
    }
}

/// The paper venue's orders, quotes and account (see `paper.rs`).
#[pyclass(name = "PaperVenue", module = "tickwave_core")]
pub struct PyPaperVenue {
    pub(crate) venue: Venue<OrderSubmitted, BrokerFill, Kept>,
}

fn events_to_py<'py>(py: Python<'py>, events: &[Event]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for event in events {
        list.append(event_to_py(py, event)?)?;
    }
    Ok(list)
}

#[pymethods]
impl PyPaperVenue {
    /// `instruments`: symbol -> (contract size as a `Decimal`, base currency, quote currency).
    #[new]
    fn new(
        latency_ms: i64,
        slippage_bps: f64,
        keeps_account: bool,
        account_currency: &str,
        initial_cash: &Bound<'_, PyAny>,
        instruments: HashMap<String, (Bound<'_, PyAny>, String, String)>,
    ) -> PyResult<Self> {
        let mut specs = HashMap::with_capacity(instruments.len());
        for (symbol, (contract_size, base, quote)) in instruments {
            let contract_size = to_dec(&contract_size)?;
            specs.insert(
                symbol,
                Spec {
                    contract_size,
                    base,
                    quote,
                },
            );
        }
        let venue = Venue::new(
            latency_ms,
            slippage_bps,
            keeps_account,
            account_currency,
            to_dec(initial_cash)?,
            specs,
        )
        .map_err(|bad| PyValueError::new_err(bad.0))?;
        Ok(PyPaperVenue { venue })
    }

    #[getter]
    fn latency_ms(&self) -> i64 {
        self.venue.latency_ms
    }

    /// Orders received, let go or not.
    #[getter]
    fn received(&self) -> i64 {
        self.venue.received
    }

    /// Keep a tick's quote (one older than its symbol's newest is ignored).
    fn on_tick(&mut self, tick: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = tick.py();
        let symbol = tick.getattr(intern!(py, "symbol"))?;
        let quote = Quote {
            time_ms: tick.getattr(intern!(py, "time_ms"))?.extract()?,
            bid: tick.getattr(intern!(py, "bid"))?.extract()?,
            ask: tick.getattr(intern!(py, "ask"))?.extract()?,
        };
        self.venue.on_tick(
            symbol.cast::<pyo3::types::PyString>()?.to_str()?,
            quote,
            tick.clone().unbind(),
        );
        Ok(())
    }

    fn has_quote(&self, symbol: &str) -> bool {
        self.venue.has_quote(symbol)
    }

    /// The tick in effect at `at_ms` (the last stamped at or before it; the earliest kept if all are later).
    fn quote_at(&self, py: Python<'_>, symbol: &str, at_ms: i64) -> Option<Kept> {
        self.venue
            .quote_at(symbol, at_ms)
            .map(|(_, tick)| tick.clone_ref(py))
    }

    /// The newest tick per symbol.
    fn latest_quotes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let quotes = PyDict::new(py);
        for (symbol, (_, tick)) in self.venue.latest_quotes() {
            quotes.set_item(symbol, tick.clone_ref(py))?;
        }
        Ok(quotes)
    }

    fn knows(&self, client_order_id: &str) -> bool {
        self.venue.knows(client_order_id)
    }

    /// Record an order read back from the ledger (its `OrderSubmitted`); a repeat changes nothing (False).
    fn submitted(&mut self, event: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Event::OrderSubmitted(submitted) = event_from_py(event)? else {
            return Err(PyValueError::new_err("not an OrderSubmitted"));
        };
        let header = &submitted.header;
        let (cid, at_ms, symbol) = (
            header.client_order_id.clone(),
            header.event_at_ms,
            header.symbol.clone(),
        );
        let is_buy = submitted.side == crate::events::Side::Buy;
        Ok(self
            .venue
            .submitted(&cid, at_ms, &symbol, is_buy, submitted))
    }

    /// Take an `OrderIntent` at `now_ms` (`ledger_problem`: why the ledger cannot record it, then refused);
    /// return `(what the ledger records, what the venue answers)`.
    fn submit<'py>(
        &mut self,
        intent: &Bound<'py, PyAny>,
        now_ms: i64,
        ledger_problem: Option<&str>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        let py = intent.py();
        let Event::OrderIntent(intent) = event_from_py(intent)? else {
            return Err(PyValueError::new_err("not an OrderIntent"));
        };
        let done = self
            .venue
            .submit(&intent, now_ms, ledger_problem)
            .map_err(venue_error)?;
        let (ledger, answers) = (PyList::empty(py), PyList::empty(py));
        match &done {
            Submit::Repeat(submitted) | Submit::Acted { submitted, .. } => {
                ledger.append(event_to_py(py, &Event::OrderSubmitted(submitted.clone()))?)?;
            }
            Submit::Refused(_) => {}
        }
        for answer in done.answers() {
            let answer_py = event_to_py(py, answer)?;
            if !matches!(answer, Event::Fill(_)) && !matches!(done, Submit::Refused(_)) {
                ledger.append(&answer_py)?;
            }
            answers.append(answer_py)?;
        }
        Ok((ledger, answers))
    }

    /// Fill the orders due at `now_ms`: each one's `OrderFilled` then its `Fill`.
    fn poll<'py>(&mut self, py: Python<'py>, now_ms: i64) -> PyResult<Bound<'py, PyList>> {
        let events = self.venue.poll(now_ms).map_err(venue_error)?;
        events_to_py(py, &events)
    }

    /// The `OrderCanceled` of an order still waiting for its fill (None: unknown or ended); nothing changes yet.
    fn cancellation<'py>(
        &self,
        py: Python<'py>,
        client_order_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.venue
            .cancellation(client_order_id, reason, now_ms)
            .map(|event| event_to_py(py, &event))
            .transpose()
    }

    fn accepted(
        &mut self,
        client_order_id: &str,
        broker_order_id: &str,
        at_ms: i64,
    ) -> PyResult<()> {
        self.venue
            .accepted(client_order_id, broker_order_id, at_ms)
            .map_err(venue_error)
    }

    fn rejected(&mut self, client_order_id: &str, reason: &str) -> PyResult<()> {
        self.venue
            .rejected(client_order_id, reason)
            .map_err(venue_error)
    }

    fn canceled(&mut self, client_order_id: &str, reason: &str) -> PyResult<()> {
        self.venue
            .canceled(client_order_id, reason)
            .map_err(venue_error)
    }

    /// Record a fill read back from the ledger and settle it.
    fn filled(
        &mut self,
        client_order_id: &str,
        fill_id: &str,
        lots: f64,
        price: f64,
        filled_at_ms: i64,
        is_final: bool,
    ) -> PyResult<()> {
        self.venue
            .refilled(
                client_order_id,
                fill_id,
                lots,
                price,
                filled_at_ms,
                is_final,
            )
            .map_err(venue_error)
    }

    /// The working orders due at `now_ms` whose symbol has quoted, by due time then acceptance.
    fn due(&self, now_ms: i64) -> Vec<String> {
        self.venue.due(now_ms)
    }

    fn next_due_ms(&self) -> Option<i64> {
        self.venue.next_due_ms()
    }

    /// `(submitted event, status, broker order id, fills, reason)` of an order, None if unknown; each fill
    /// `(fill_id, price, lots, filled_at_ms, deal_id, commission)`: `BrokerFill`'s fields in order.
    fn order<'py>(
        &self,
        py: Python<'py>,
        client_order_id: &str,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let Some(order) = self.venue.order(client_order_id) else {
            return Ok(None);
        };
        let mut fills = Vec::with_capacity(order.fills.len());
        for fill in &order.fills {
            fills.push(
                (
                    fill.fill_id.as_str(),
                    fill.price,
                    fill.lots,
                    fill.filled_at_ms,
                    fill.deal_id.as_str(),
                    fill.commission,
                )
                    .into_pyobject(py)?,
            );
        }
        let submitted = event_to_py(py, &Event::OrderSubmitted(order.submitted.clone()))?;
        Ok(Some(PyTuple::new(
            py,
            [
                submitted,
                order.status.name().into_pyobject(py)?.into_any(),
                order.broker_order_id.as_str().into_pyobject(py)?.into_any(),
                PyTuple::new(py, fills)?.into_any(),
                order.reason.as_str().into_pyobject(py)?.into_any(),
            ],
        )?))
    }

    /// The order's status (a wire name), None if unknown.
    fn status(&self, client_order_id: &str) -> Option<&'static str> {
        self.venue
            .order(client_order_id)
            .map(|order| order.status.name())
    }

    /// The ids created at or after `since_ms` in time order, then the older working ones (all when None).
    #[pyo3(signature = (since_ms=None))]
    fn ids_since(&self, since_ms: Option<i64>) -> Vec<String> {
        self.venue.ids_since(since_ms)
    }

    /// Let go of the ended orders created before `before_ms`; return how many.
    fn retire(&mut self, before_ms: i64) -> usize {
        self.venue.retire(before_ms)
    }

    /// The net position per symbol (lots, `Decimal`), flat ones left out.
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let positions = PyDict::new(py);
        for (symbol, lots) in self.venue.positions() {
            positions.set_item(symbol, to_py(py, lots)?)?;
        }
        Ok(positions)
    }

    /// The net position per symbol, flat ones too (a copy).
    #[getter]
    fn lots<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        amounts(py, &self.venue.lots)
    }

    /// The cash per currency (a copy).
    #[getter]
    fn cash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        amounts(py, &self.venue.cash)
    }

    /// The realised P&L per currency (a copy).
    #[getter]
    fn realized<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        amounts(py, &self.venue.realized)
    }
}

fn amounts<'py>(
    py: Python<'py>,
    amounts: &std::collections::BTreeMap<String, crate::money::Dec>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, amount) in amounts {
        dict.set_item(key, to_py(py, *amount)?)?;
    }
    Ok(dict)
}
