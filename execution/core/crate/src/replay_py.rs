//! The replay's Python face: the timeline converted from the shell's ticks and signals once, and the
//! journal converted back once (`replay.rs` runs between them with no Python per row).

use std::collections::BTreeMap;

use pyo3::exceptions::{PyIndexError, PyKeyError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::chain::GENESIS_HASH;
use crate::engine_state_py::ReplayEngine;
use crate::events::{chain_extend, Event, Signal, Tick};
use crate::events_py::{event_from_py, event_to_py};
use crate::paper_py::PyPaperVenue;
use crate::replay::{figures, FiguresError, Item, PaperVenue, Replay, TickChecks};
use crate::spike_py::PySpikeFilter;

/// A timeline in replay order (`execution.core.replay.timeline`'s), as core values.
#[pyclass(frozen, name = "ReplayTimeline", module = "tickwave_core")]
pub struct PyReplayTimeline {
    pub(crate) items: Vec<Item>,
}

#[pymethods]
impl PyReplayTimeline {
    /// `items`: `Tick`s and `Signal`s in replay order; `valid`: for each tick in order, whether it keeps the
    /// stateless rules (`tickwave.validation.check_ticks`' `passed`; None: every one). The spike filter runs
    /// in the loop.
    #[new]
    #[pyo3(signature = (items, valid=None))]
    fn new(items: &Bound<'_, PyAny>, valid: Option<Vec<bool>>) -> PyResult<Self> {
        let mut converted = Vec::with_capacity(items.len().unwrap_or(0));
        let mut ticks = 0;
        for item in items.try_iter()? {
            converted.push(match event_from_py(&item?)? {
                Event::Tick(tick) => {
                    let is_valid = match &valid {
                        None => true,
                        Some(flags) => *flags
                            .get(ticks)
                            .ok_or_else(|| PyValueError::new_err("fewer valid flags than ticks"))?,
                    };
                    ticks += 1;
                    Item::Tick { tick, is_valid }
                }
                Event::Signal(signal) => Item::Signal(signal),
                _ => return Err(PyTypeError::new_err("a timeline holds ticks and signals")),
            });
        }
        if valid.is_some_and(|flags| flags.len() != ticks) {
            return Err(PyValueError::new_err("one valid flag per tick"));
        }
        Ok(PyReplayTimeline { items: converted })
    }

    /// A timeline whose ticks come as columns (`tickwave.validation.QuoteBatch`'s, each native-endian bytes:
    /// `symbol_code` i32 indexing `symbols`, `time_ms` and `seq` i64, `bid`, `ask`, `last`, `volume` f64,
    /// `flags` i64; every tick from `source`), with no Python tick per row. `valid`: one byte per tick,
    /// whether it keeps the stateless rules (0: no). `signals`: the `Signal`s, converted once each. `order`:
    /// the items in replay order, native-endian i64 (`execution.core.replay.replay_order`'s): below the
    /// ticks' count a tick's row, from it on a signal's index plus that count.
    #[staticmethod]
    #[pyo3(signature = (symbols, columns, source, valid, signals, order))]
    fn of_columns(
        symbols: Vec<String>,
        columns: TickColumnBytes<'_>,
        source: &str,
        valid: &[u8],
        signals: &Bound<'_, PyAny>,
        order: &[u8],
    ) -> PyResult<Self> {
        let (codes, time_ms, seq, bid, ask, last, volume, flags) = columns;
        let codes = ne_column(codes, i32::from_ne_bytes)?;
        let time_ms = ne_column(time_ms, i64::from_ne_bytes)?;
        let seq = ne_column(seq, i64::from_ne_bytes)?;
        let floats = [bid, ask, last, volume].map(|column| ne_column(column, f64::from_ne_bytes));
        let [bid, ask, last, volume] = floats;
        let (bid, ask, last, volume) = (bid?, ask?, last?, volume?);
        let flags = ne_column(flags, i64::from_ne_bytes)?;
        let ticks = codes.len();
        let lengths = [
            time_ms.len(),
            seq.len(),
            bid.len(),
            ask.len(),
            last.len(),
            volume.len(),
        ];
        if lengths
            .iter()
            .chain([&flags.len(), &valid.len()])
            .any(|length| *length != ticks)
        {
            return Err(PyValueError::new_err("one value per tick in every column"));
        }
        let mut converted_signals = Vec::new();
        for signal in signals.try_iter()? {
            match event_from_py(&signal?)? {
                Event::Signal(signal) => converted_signals.push(signal),
                _ => return Err(PyTypeError::new_err("signals holds Signals")),
            }
        }
        let order = ne_column(order, i64::from_ne_bytes)?;
        if order.len() != ticks + converted_signals.len() {
            return Err(PyValueError::new_err(
                "the order names each tick and signal once",
            ));
        }
        let mut signals: Vec<Option<Signal>> = converted_signals.into_iter().map(Some).collect();
        let mut is_placed = vec![false; ticks];
        let mut items = Vec::with_capacity(order.len());
        for at in order {
            let at = usize::try_from(at)
                .map_err(|_| PyValueError::new_err("a negative place in the order"))?;
            if at < ticks {
                if std::mem::replace(&mut is_placed[at], true) {
                    return Err(PyValueError::new_err("the order names a tick twice"));
                }
                let symbol = usize::try_from(codes[at])
                    .ok()
                    .and_then(|code| symbols.get(code))
                    .ok_or_else(|| PyValueError::new_err("a symbol code outside the symbols"))?;
                let tick = Tick {
                    symbol: symbol.clone(),
                    time_ms: time_ms[at],
                    seq: seq[at],
                    bid: bid[at],
                    ask: ask[at],
                    last: last[at],
                    volume: volume[at],
                    flags: flags[at],
                    source: source.to_owned(),
                };
                items.push(Item::Tick {
                    tick,
                    is_valid: valid[at] != 0,
                });
            } else {
                let signal = signals
                    .get_mut(at - ticks)
                    .and_then(Option::take)
                    .ok_or_else(|| {
                        PyValueError::new_err("the order names a signal twice or none")
                    })?;
                items.push(Item::Signal(signal));
            }
        }
        Ok(PyReplayTimeline { items })
    }

    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// For each tick in order, whether it prices anything: the loop's checks ([`TickChecks`]) over the whole
    /// timeline, each symbol's spike filter starting as a new one with `spike`'s limits (its state unread).
    fn accepted(&self, spike: PyRef<'_, PySpikeFilter>) -> Vec<bool> {
        let mut checks = TickChecks::new(spike.filter.limits);
        self.items
            .iter()
            .filter_map(|item| match item {
                Item::Tick { tick, is_valid } => Some(checks.accepts(tick, *is_valid)),
                Item::Signal(_) => None,
            })
            .collect()
    }
}

/// The columns of `ReplayTimeline.of_columns`: symbol codes, times, sequence numbers, bids, asks, lasts,
/// volumes, flags.
type TickColumnBytes<'a> = (
    &'a [u8],
    &'a [u8],
    &'a [u8],
    &'a [u8],
    &'a [u8],
    &'a [u8],
    &'a [u8],
    &'a [u8],
);

/// A column of native-endian values of `N` bytes each.
fn ne_column<T, const N: usize>(bytes: &[u8], read: fn([u8; N]) -> T) -> PyResult<Vec<T>> {
    if !bytes.len().is_multiple_of(N) {
        return Err(PyValueError::new_err(format!(
            "a column of {N}-byte values"
        )));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|chunk| read(chunk.try_into().expect("chunks of N bytes")))
        .collect())
}

/// A fill's figures as the Python facade unpacks them (`ReplayJournal.figures`).
type FillFigure = (
    String,
    String,
    String,
    &'static str,
    Py<PyAny>,
    Py<PyAny>,
    Py<PyAny>,
    bool,
);

/// A replay's journal as core values: converted to `tickwave.contracts` structs once, linked with no Python.
#[pyclass(frozen, name = "ReplayJournal", module = "tickwave_core")]
pub struct PyReplayJournal {
    pub(crate) events: Vec<Event>,
}

#[pymethods]
impl PyReplayJournal {
    /// A journal of the given `tickwave.contracts` events (what the replay loop returns is built in the core).
    #[new]
    fn new(messages: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut events = Vec::new();
        for message in messages.try_iter()? {
            events.push(event_from_py(&message?)?);
        }
        Ok(PyReplayJournal { events })
    }

    fn __len__(&self) -> usize {
        self.events.len()
    }

    /// The events as `tickwave.contracts` structs, in journal order.
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for event in &self.events {
            list.append(event_to_py(py, event)?)?;
        }
        Ok(list)
    }

    /// The event at `index` (negative: from the end), built only when read: a lazy sequence of the journal.
    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        let length = self.events.len() as isize;
        let at = if index < 0 { index + length } else { index };
        if !(0..length).contains(&at) {
            return Err(PyIndexError::new_err("journal index out of range"));
        }
        event_to_py(py, &self.events[at as usize])
    }

    /// The events whose wire tag is one of `tags` (`"order_filled.v1"`), in journal order: only those built.
    fn of_tags<'py>(&self, py: Python<'py>, tags: Vec<String>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for event in self
            .events
            .iter()
            .filter(|event| tags.iter().any(|tag| tag == event.tag()))
        {
            list.append(event_to_py(py, event)?)?;
        }
        Ok(list)
    }

    /// The orders sent and the denials per check (a dict in the checks' order): `figures`' first two parts,
    /// without booking the fills (what a result reads when it reads no fill).
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<(usize, Bound<'py, PyDict>)> {
        let mut orders = 0;
        let mut denials: BTreeMap<&str, usize> = BTreeMap::new();
        for event in &self.events {
            match event {
                Event::OrderSubmitted(_) => orders += 1,
                Event::OrderDenied(denied) => *denials.entry(&denied.check).or_insert(0) += 1,
                _ => {}
            }
        }
        let counted = PyDict::new(py);
        for (check, count) in denials {
            counted.set_item(check, count)?;
        }
        Ok((orders, counted))
    }

    /// What a replay's result reads of the journal, in one pass (`replay.rs`'s `figures`): the orders sent,
    /// the denials per check (a dict in the checks' order) and each fill as `(client_order_id, fill_id,
    /// symbol, side, lots, price, moved, opens_round_trip)`, the amounts `Decimal`s, `moved` the realised
    /// P&L in price x lots.
    fn figures<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(usize, Bound<'py, PyDict>, Vec<FillFigure>)> {
        self.figures_of(py, &self.events)
    }

    /// The audit chain over the order events from its genesis: `(head, length)`.
    fn chain(&self) -> (String, i64) {
        chain_extend(GENESIS_HASH, 0, &self.events)
    }
}

impl PyReplayJournal {
    /// `figures` over `events` (the journal's, or those of it a reader reads).
    fn figures_of<'py>(
        &self,
        py: Python<'py>,
        events: &[Event],
    ) -> PyResult<(usize, Bound<'py, PyDict>, Vec<FillFigure>)> {
        let figures = figures(events).map_err(|error| match error {
            FiguresError::UnknownOrder(id) => PyKeyError::new_err(id),
            FiguresError::NotADecimal(bad) => PyValueError::new_err(format!(
                "a fill's lots and price must be finite, got {}",
                bad.0
            )),
            FiguresError::Overflow(overflow) => PyOverflowError::new_err(overflow.to_string()),
        })?;
        let denials = PyDict::new(py);
        for (check, count) in &figures.denials {
            denials.set_item(check, count)?;
        }
        let mut fills = Vec::with_capacity(figures.fills.len());
        for fill in &figures.fills {
            let Event::OrderFilled(filled) = &events[fill.at] else {
                unreachable!("a fill's figures come from its OrderFilled")
            };
            fills.push((
                filled.header.client_order_id.clone(),
                filled.fill_id.clone(),
                filled.header.symbol.clone(),
                fill.side.name(),
                crate::to_py(py, fill.lots)?,
                crate::to_py(py, fill.price)?,
                crate::to_py(py, fill.moved)?,
                fill.opens_round_trip,
            ));
        }
        Ok((figures.orders, denials, fills))
    }
}

/// What `replay_engine` returns: the journal, the chain's `(head, length)`, the venue's positions
/// (`Decimal` lots by symbol, the flat ones left out), its latest mid per symbol and the replay clock.
type Replayed<'py> = (
    PyReplayJournal,
    (String, i64),
    Bound<'py, PyDict>,
    Bound<'py, PyDict>,
    i64,
);

/// Replay `timeline` through `engine` (an `execution.core.engine.Engine` whose clock is `clock`) and a
/// paper venue on `venue`'s terms, each symbol's spike filter with `spike`'s limits, from `start_ms`
/// after the events `journaled` before (the service's start); then every order waiting filled, and with
/// `flatten_at(now_ms)` (a `ControlCommand`), the positions left closed by it and filled. `replay.rs`'s
/// loop, with no Python per row but the engine's pieces still in Python.
#[pyfunction]
#[pyo3(signature = (timeline, engine, clock, venue, spike, journaled, start_ms, flatten_at=None))]
#[allow(clippy::too_many_arguments)]
pub fn replay_engine<'py>(
    py: Python<'py>,
    timeline: &PyReplayTimeline,
    engine: &Bound<'py, PyAny>,
    clock: &Bound<'py, PyAny>,
    venue: PyRef<'py, PyPaperVenue>,
    spike: PyRef<'py, PySpikeFilter>,
    journaled: &PyReplayJournal,
    start_ms: i64,
    flatten_at: Option<Bound<'py, PyAny>>,
) -> PyResult<Replayed<'py>> {
    let mut paper: PaperVenue = venue.venue.with_same_terms().forgetting_ended();
    drop(venue);
    let mut driven = ReplayEngine::new(engine)?;
    let signals = timeline
        .items
        .iter()
        .filter(|item| matches!(item, Item::Signal(_)));
    driven.reserve(signals.count());
    let times = timeline.items.iter().map(Item::time_ms);
    if let (Some(first), Some(last)) = (times.clone().min(), times.max()) {
        // a day past the last row: what comes due after it, the closing flatten
        driven.use_market_table(first.min(start_ms), last.max(start_ms) + 86_400_000)?;
    }
    let limits = spike.filter.limits;
    drop(spike);
    let venue_error = |error| PyValueError::new_err(format!("the paper venue refused: {error:?}"));
    let mut replay = Replay::new(&mut driven, &mut paper, start_ms, limits)
        .journaled_before(journaled.events.clone());
    replay.run(&timeline.items).map_err(venue_error)?;
    replay.fill_due(None).map_err(venue_error)?;
    if let Some(flatten_at) = flatten_at {
        if replay.has_positions() {
            let command = flatten_at.call1((replay.now_ms(),))?;
            let Event::ControlCommand(command) = event_from_py(&command)? else {
                return Err(PyTypeError::new_err(
                    "flatten_at must return a ControlCommand",
                ));
            };
            replay.control(&command).map_err(venue_error)?;
        }
    }
    let replayed = replay.finish().map_err(venue_error)?;
    if let Some(error) = driven.raised() {
        return Err(error);
    }
    driven.synced()?;
    clock.call_method1("set", (replayed.now_ms,))?;
    let positions = PyDict::new(py);
    for (symbol, lots) in paper.positions() {
        positions.set_item(symbol, crate::to_py(py, lots)?)?;
    }
    let mids = PyDict::new(py);
    for (symbol, (quote, ())) in paper.latest_quotes() {
        mids.set_item(symbol, quote.mid())?;
    }
    Ok((
        PyReplayJournal {
            events: replayed.events,
        },
        (replayed.chain_head, replayed.chain_length),
        positions,
        mids,
        replayed.now_ms,
    ))
}
