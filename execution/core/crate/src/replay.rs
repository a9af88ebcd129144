//! The replay loop: a whole timeline of ticks and signals through the engine and the paper venue, with
//! no Python per row, the journal kept in memory and the audit chain linked over it.
//!
//! The order of effects is the execution service's (`execution/service.py`) as a replay drives it (the
//! files path of `execution/backtest.py`, with `fill_due`), exactly:
//!
//! - before each item, the paper orders due strictly before its time are filled, each due time in turn:
//!   the clock moves to it and the venue is polled; then the clock moves to the item's time;
//! - a signal (`handle_signals`): the engine decides; a duplicate leaves no trace; without an order the
//!   signal is journaled, then its events recorded; with one, the signal, the intent and the engine's
//!   `OrderSubmitted` are journaled together and the submission applied (`_journal_order`), then the
//!   venue takes the intent and its answers are recorded (`_send`);
//! - a tick (`handle_decoded_tick`, then `handle_tick`): checked as the service checks it ([`TickChecks`]):
//!   one the stateless rules refused (`check_decoded`'s, worked out for the whole timeline before the loop)
//!   never reaches its symbol's spike filter; one the spike filter refuses changes nothing either; both
//!   have moved the clock, and the poll after the item runs as after any other; an accepted one: the venue
//!   keeps its quote, the engine's tick events are recorded, and a protective stop's events recorded and
//!   its orders journaled, all of them, before any is sent;
//! - after each item, the venue is polled when an order is due at or before the clock;
//! - an operator's command (`handle_control`, the backtest's closing `flatten`): journaled and applied, each
//!   of its events recorded on its own, then its orders journaled, all of them, and sent;
//! - recording a group (`_record_all`): the engine books its fills (`booked`), the group is journaled,
//!   then each event applied in order; the follow-ups of the whole group (each event's, then the
//!   cancellations its halts cause at the venue) are recorded after it, as a group of their own.
//!
//! What the service does besides that records nothing in a replay, so it is not run here: the journal's
//! space (memory never runs short), retirement (a replay keeps every order), the audit bus (a replay
//! publishes nothing) and the reconciliation, once a replayed day and after a venue rejection. Its
//! journal and its venue are fed the same answers in the same call, so it finds no difference to record:
//! a poll with nothing due returns nothing, and the comparison adopts nothing and reports nothing
//! (`tests/unit/execution/test_backtest.py` holds a replay's journal free of reconciliation events).
//!
//! The engine's decisions are called through [`Engine`], which the engine's own functions implement.

use std::collections::BTreeMap;

use crate::maps::{HashMap, HashMapExt};

use crate::broker::BrokerFill;
use crate::chain::GENESIS_HASH;
use crate::events::{
    chain_extend, ControlCommand, Event, OrderIntent, OrderSubmitted, Side, Signal, Tick,
};
use crate::money::{Dec, NotADecimal, Overflow};
use crate::paper::{Quote, Venue, VenueError};
use crate::positions::Book;
use crate::spike::{self, SpikeFilter};

/// The venue each `OrderSubmitted` of a replay names.
pub const VENUE: &str = "paper";

/// What the engine decided about one signal: the order to send, or the events to record (a denial).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    pub intent: Option<OrderIntent>,
    pub events: Vec<Event>,
    pub is_duplicate: bool,
}

/// What a protective stop did on a tick: events to record and orders to send.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub intents: Vec<OrderIntent>,
}

/// The engine's decisions, as the replay calls them (each at the replay clock's `now_ms`).
pub trait Engine {
    /// Size and gate a signal. With an intent, `events` are not recorded (the service's rule).
    fn on_signal(&mut self, signal: &Signal, now_ms: i64) -> Decision;
    /// The event that records `intent` as sent to `venue`.
    fn submission(&self, intent: &OrderIntent, venue: &str, now_ms: i64) -> OrderSubmitted;
    /// Observe the quote, then the tick breakers: the events to record.
    fn on_tick(&mut self, tick: &Tick, now_ms: i64) -> Vec<Event>;
    /// Close a position whose price crossed its stop.
    fn protective_stop(&mut self, tick: &Tick, now_ms: i64) -> Outcome;
    /// Apply a recorded event (the state change); return its follow-ups (breaker trips) to record.
    fn apply(&mut self, event: &Event, now_ms: i64) -> Vec<Event>;
    /// The group with each `Fill` record carrying the engine's booking.
    fn booked(&mut self, events: Vec<Event>) -> Vec<Event>;
    /// The client order ids of the working orders a halt cancels (none for any other event).
    fn cancellations_for(&self, event: &Event) -> Vec<String>;
    /// An operator's command (the backtest's closing `flatten`): its events and orders; a repeat yields nothing.
    fn on_control(&mut self, command: &ControlCommand, now_ms: i64) -> Control;
}

/// What an operator's command leads to: events to record, orders to send; a repeat of one applied: nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Control {
    pub outcome: Outcome,
    pub is_duplicate: bool,
}

/// One row of a timeline: a tick (with whether it keeps the stateless rules, `check_decoded`'s) or a signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Tick { tick: Tick, is_valid: bool },
    Signal(Signal),
}

/// The checks a tick passes before it prices anything, in the execution service's order (`TickChecks`):
/// the stateless rules first (their answer given), then its symbol's spike filter, created on the
/// symbol's first valid tick; a tick the rules refused never reaches the filter, so it moves no reference.
#[derive(Clone, Debug)]
pub struct TickChecks {
    limits: spike::Limits,
    filters: HashMap<String, SpikeFilter>,
    /// Ticks not used for prices, by either check.
    pub rejected: u64,
}

impl TickChecks {
    /// No filter yet; each symbol's starts with `limits` (the settings' `streams.spike_*`).
    pub fn new(limits: spike::Limits) -> Self {
        TickChecks {
            limits,
            filters: HashMap::new(),
            rejected: 0,
        }
    }

    /// Whether `tick` prices anything: `is_valid` (the stateless rules' answer), then the spike filter.
    pub fn accepts(&mut self, tick: &Tick, is_valid: bool) -> bool {
        if !is_valid {
            self.rejected += 1;
            return false;
        }
        let filter = match self.filters.get_mut(&tick.symbol) {
            Some(filter) => filter,
            None => self
                .filters
                .entry(tick.symbol.clone())
                .or_insert_with(|| SpikeFilter::new(self.limits)),
        };
        if filter.check(tick.time_ms, tick.bid, tick.ask).is_some() {
            self.rejected += 1;
            return false;
        }
        true
    }
}

impl Item {
    /// When the item is replayed: a tick's `time_ms`, a signal's `created_at_ms`.
    pub fn time_ms(&self) -> i64 {
        match self {
            Item::Tick { tick, .. } => tick.time_ms,
            Item::Signal(signal) => signal.created_at_ms,
        }
    }
}

/// The paper venue of a replay: the core's order records, no tick kept beside its quote.
pub type PaperVenue = Venue<OrderSubmitted, BrokerFill, ()>;

/// A replay under way: the engine, the venue, the clock and the journal.
pub struct Replay<'a, E: Engine> {
    engine: &'a mut E,
    venue: &'a mut PaperVenue,
    now_ms: i64,
    journal: Vec<Event>,
    checks: TickChecks,
}

/// What a replay did: every journaled event in order, and the audit chain over its order events.
#[derive(Debug, PartialEq)]
pub struct Replayed {
    pub events: Vec<Event>,
    pub chain_head: String,
    pub chain_length: i64,
    pub rejected_ticks: u64,
    pub now_ms: i64,
}

impl<'a, E: Engine> Replay<'a, E> {
    /// Start at `start_ms` with an empty journal; each symbol's spike filter starts with `spike`.
    pub fn new(
        engine: &'a mut E,
        venue: &'a mut PaperVenue,
        start_ms: i64,
        spike: spike::Limits,
    ) -> Self {
        Replay {
            engine,
            venue,
            now_ms: start_ms,
            journal: Vec::new(),
            checks: TickChecks::new(spike),
        }
    }

    /// Start the journal with `events`, journaled before the replay (the service's start): linked with the rest.
    pub fn journaled_before(mut self, events: Vec<Event>) -> Self {
        self.journal = events;
        self
    }

    /// Whether the venue holds a position (the backtest's closing flatten is sent only then).
    pub fn has_positions(&self) -> bool {
        self.venue.positions().next().is_some()
    }

    /// The replay clock.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Replay `timeline` (in replay order: by time, a tick before a signal at the same ms).
    pub fn run(&mut self, timeline: &[Item]) -> Result<(), VenueError> {
        for item in timeline {
            let at_ms = item.time_ms();
            if self
                .venue
                .next_due_ms()
                .is_some_and(|due_ms| due_ms < at_ms)
            {
                self.fill_due(Some(at_ms))?;
            }
            self.now_ms = self.now_ms.max(at_ms);
            match item {
                Item::Signal(signal) => self.handle_signal(signal)?,
                Item::Tick { tick, is_valid } => {
                    if self.checks.accepts(tick, *is_valid) {
                        self.handle_tick(tick)?;
                    }
                }
            }
            if self
                .venue
                .next_due_ms()
                .is_some_and(|due_ms| due_ms <= self.now_ms)
            {
                self.poll()?;
            }
        }
        Ok(())
    }

    /// Poll the venue at each due time before `before_ms` (None: every order waiting).
    pub fn fill_due(&mut self, before_ms: Option<i64>) -> Result<(), VenueError> {
        while let Some(due_ms) = self.venue.next_due_ms() {
            if before_ms.is_some_and(|before_ms| due_ms >= before_ms) {
                break;
            }
            self.now_ms = self.now_ms.max(due_ms);
            self.poll()?;
        }
        Ok(())
    }

    /// Journal, book and apply events that happened together, then their follow-ups (`_record_all`).
    pub fn record_all(&mut self, events: Vec<Event>) -> Result<(), VenueError> {
        let group = self.engine.booked(events);
        if group.is_empty() {
            return Ok(());
        }
        let first = self.journal.len();
        self.journal.extend(group);
        let mut follow_ups = Vec::new();
        for event in &self.journal[first..] {
            follow_ups.extend(self.engine.apply(event, self.now_ms));
        }
        for event in &self.journal[first..] {
            let Event::RiskEvent(risk) = event else {
                continue;
            };
            let reason = format!("canceled by {}: {}", risk.kind, risk.detail);
            for client_order_id in self.engine.cancellations_for(event) {
                if let Some(canceled) = self.venue.cancel(&client_order_id, &reason, self.now_ms)? {
                    follow_ups.push(canceled);
                }
            }
        }
        if !follow_ups.is_empty() {
            self.record_all(follow_ups)?;
        }
        Ok(())
    }

    /// Apply an operator's command now (`handle_control`): the command journaled and applied, each of its
    /// events recorded on its own, then its orders journaled, all of them, and sent.
    pub fn control(&mut self, command: &ControlCommand) -> Result<(), VenueError> {
        let control = self.engine.on_control(command, self.now_ms);
        if control.is_duplicate {
            return Ok(());
        }
        self.journal.push(Event::ControlCommand(command.clone()));
        if let Some(command) = self.journal.last() {
            self.engine.apply(command, self.now_ms); // its follow-ups dropped, as the service does
        }
        for event in control.outcome.events {
            self.record_all(vec![event])?;
        }
        for intent in &control.outcome.intents {
            self.journal_order(intent, None);
        }
        self.send(control.outcome.intents)
    }

    /// Fill every order still waiting, then return the journal and its chain head.
    pub fn finish(mut self) -> Result<Replayed, VenueError> {
        self.fill_due(None)?;
        let (chain_head, chain_length) = chain_extend(GENESIS_HASH, 0, &self.journal);
        Ok(Replayed {
            events: self.journal,
            chain_head,
            chain_length,
            rejected_ticks: self.checks.rejected,
            now_ms: self.now_ms,
        })
    }

    fn poll(&mut self) -> Result<(), VenueError> {
        let events = self.venue.poll(self.now_ms)?;
        self.record_all(events)
    }

    fn handle_signal(&mut self, signal: &Signal) -> Result<(), VenueError> {
        let decision = self.engine.on_signal(signal, self.now_ms);
        if decision.is_duplicate {
            return Ok(());
        }
        match decision.intent {
            None => {
                self.journal.push(Event::Signal(signal.clone()));
                self.record_all(decision.events)
            }
            Some(intent) => {
                self.journal_order(&intent, Some(signal));
                self.send(vec![intent])
            }
        }
    }

    fn handle_tick(&mut self, tick: &Tick) -> Result<(), VenueError> {
        let quote = Quote {
            time_ms: tick.time_ms,
            bid: tick.bid,
            ask: tick.ask,
        };
        self.venue.on_tick(&tick.symbol, quote, ());
        let events = self.engine.on_tick(tick, self.now_ms);
        if !events.is_empty() {
            self.record_all(events)?;
        }
        let stop = self.engine.protective_stop(tick, self.now_ms);
        if !stop.events.is_empty() || !stop.intents.is_empty() {
            self.record_all(stop.events)?;
            for intent in &stop.intents {
                self.journal_order(intent, None);
            }
            self.send(stop.intents)?;
        }
        Ok(())
    }

    /// Journal the signal (if any), the intent and its submission together; apply the submission.
    fn journal_order(&mut self, intent: &OrderIntent, received: Option<&Signal>) {
        let submitted = self.engine.submission(intent, VENUE, self.now_ms);
        if let Some(signal) = received {
            self.journal.push(Event::Signal(signal.clone()));
        }
        self.journal.push(Event::OrderIntent(intent.clone()));
        self.journal.push(Event::OrderSubmitted(submitted));
        // The service drops its follow-ups: a submission trips no breaker.
        if let Some(submitted) = self.journal.last() {
            self.engine.apply(submitted, self.now_ms);
        }
    }

    /// Hand each journaled order to the venue and record its answers.
    fn send(&mut self, intents: Vec<OrderIntent>) -> Result<(), VenueError> {
        for intent in intents {
            let done = self.venue.submit(&intent, self.now_ms, None)?;
            self.record_all(done.into_answers())?;
        }
        Ok(())
    }
}

/// What one fill of a journal did to its symbol's first-in first-out book (`positions.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct FillMove {
    /// The `OrderFilled`'s index in the journal.
    pub at: usize,
    pub side: Side,
    pub lots: Dec,
    pub price: Dec,
    /// The realised P&L in price x lots (times the contract size: the quote currency's).
    pub moved: Dec,
    /// Whether it opened a round trip: from flat, or through zero.
    pub opens_round_trip: bool,
}

/// What a replay's result reads of its journal, in one pass with no Python per event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// The orders sent (`OrderSubmitted`s).
    pub orders: usize,
    /// The denials per check, in the checks' order of text.
    pub denials: BTreeMap<String, usize>,
    /// Each fill, in journal order, booked on its symbol's book.
    pub fills: Vec<FillMove>,
}

/// Why a journal's figures cannot be read.
#[derive(Clone, Debug, PartialEq)]
pub enum FiguresError {
    /// A fill of an order the journal never submitted.
    UnknownOrder(String),
    /// A fill's lots or price not finite.
    NotADecimal(NotADecimal),
    Overflow(Overflow),
}

impl From<Overflow> for FiguresError {
    fn from(overflow: Overflow) -> Self {
        FiguresError::Overflow(overflow)
    }
}

impl From<NotADecimal> for FiguresError {
    fn from(bad: NotADecimal) -> Self {
        FiguresError::NotADecimal(bad)
    }
}

/// The figures of `events` (a journal, live or replayed): the engine's first-in first-out books
/// (`Book::book`) over its fills, each signed by its order's side, the lots and price as their
/// shortest decimal text (`tickwave.money.to_decimal`).
pub fn figures(events: &[Event]) -> Result<Figures, FiguresError> {
    let mut sides: HashMap<&str, Side> = HashMap::new();
    let mut books: HashMap<&str, Book> = HashMap::new();
    let mut figures = Figures::default();
    for (at, event) in events.iter().enumerate() {
        match event {
            Event::OrderSubmitted(submitted) => {
                figures.orders += 1;
                sides.insert(&submitted.header.client_order_id, submitted.side);
            }
            Event::OrderDenied(denied) => {
                *figures.denials.entry(denied.check.clone()).or_insert(0) += 1;
            }
            Event::OrderFilled(filled) => {
                let header = &filled.header;
                let side = *sides
                    .get(header.client_order_id.as_str())
                    .ok_or_else(|| FiguresError::UnknownOrder(header.client_order_id.clone()))?;
                let (lots, price) = (
                    Dec::from_float(filled.fill_lots)?,
                    Dec::from_float(filled.fill_price)?,
                );
                let signed = if side == Side::Buy {
                    lots
                } else {
                    lots.negated()
                };
                let booking = books.entry(&header.symbol).or_default().book(
                    signed,
                    price,
                    &filled.fill_id,
                )?;
                figures.fills.push(FillMove {
                    at,
                    side,
                    lots,
                    price,
                    moved: booking.realized,
                    opens_round_trip: !booking.opens_round_trip_id.is_empty(),
                });
            }
            _ => {}
        }
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;
    use crate::chain::link_hash;
    use crate::events::{
        Direction, OrderDenied, OrderHeader, OrderType, RiskEvent, Severity, Side, TradingState,
    };
    use crate::money::d;

    /// A scripted engine: long buys 0.1 lot, short sells, flat is denied; a bid below `halt_below` halts
    /// (once); a fill past `fills_before_breaker` trips a breaker follow-up; every call is logged.
    #[derive(Default)]
    struct Scripted {
        decided: HashSet<String>,
        working: BTreeSet<String>,
        halt_below: f64,
        is_halted: bool,
        fills: usize,
        fills_before_breaker: usize,
        calls: Vec<String>,
        is_quiet: bool, // no call logged (the timing below)
    }

    impl Scripted {
        fn log(&mut self, call: impl FnOnce() -> String) {
            if !self.is_quiet {
                self.calls.push(call());
            }
        }
    }

    fn risk(kind: &str, detail: &str, at_ms: i64) -> Event {
        Event::RiskEvent(RiskEvent {
            risk_event_id: format!("{kind}-{at_ms}"),
            kind: kind.to_owned(),
            severity: Severity::Critical,
            trading_state: TradingState::Halted,
            detail: detail.to_owned(),
            occurred_at_ms: at_ms,
            symbol: String::new(),
            check: kind.to_owned(),
        })
    }

    impl Engine for Scripted {
        fn on_signal(&mut self, signal: &Signal, now_ms: i64) -> Decision {
            self.calls
                .push(format!("signal {} @{now_ms}", signal.signal_id));
            if !self.decided.insert(signal.signal_id.clone()) {
                return Decision {
                    is_duplicate: true,
                    ..Decision::default()
                };
            }
            let header = OrderHeader {
                client_order_id: format!("tw-{}", signal.signal_id),
                signal_id: signal.signal_id.clone(),
                symbol: signal.symbol.clone(),
                model_id: signal.model_id.clone(),
                model_version: signal.model_version,
                event_at_ms: now_ms,
            };
            let side = match signal.direction {
                Direction::Long => Side::Buy,
                Direction::Short => Side::Sell,
                Direction::Flat => {
                    return Decision {
                        events: vec![Event::OrderDenied(OrderDenied {
                            header,
                            reason: "flat".to_owned(),
                            check: "sizing".to_owned(),
                        })],
                        ..Decision::default()
                    }
                }
            };
            Decision {
                intent: Some(OrderIntent {
                    client_order_id: header.client_order_id,
                    signal_id: header.signal_id,
                    symbol: header.symbol,
                    side,
                    quantity_lots: 0.1,
                    order_type: OrderType::Market,
                    model_id: header.model_id,
                    model_version: header.model_version,
                    created_at_ms: now_ms,
                    limit_price: None,
                }),
                ..Decision::default()
            }
        }

        fn submission(&self, intent: &OrderIntent, venue: &str, now_ms: i64) -> OrderSubmitted {
            let mut submitted = crate::paper::submission(intent, now_ms);
            submitted.venue = Some(venue.to_owned());
            submitted
        }

        fn on_tick(&mut self, tick: &Tick, now_ms: i64) -> Vec<Event> {
            self.log(|| format!("tick @{now_ms}"));
            if tick.bid < self.halt_below && !self.is_halted {
                self.is_halted = true;
                return vec![risk("trading_state", "HALTED: the price fell", now_ms)];
            }
            Vec::new()
        }

        fn protective_stop(&mut self, _tick: &Tick, _now_ms: i64) -> Outcome {
            Outcome::default()
        }

        fn apply(&mut self, event: &Event, now_ms: i64) -> Vec<Event> {
            self.log(|| format!("apply {} @{now_ms}", event.tag()));
            match event {
                Event::OrderSubmitted(e) => {
                    self.working.insert(e.header.client_order_id.clone());
                }
                Event::OrderFilled(e) => {
                    self.working.remove(&e.header.client_order_id);
                    self.fills += 1;
                    if self.fills == self.fills_before_breaker {
                        return vec![risk("fill_breaker", "too many fills", now_ms)];
                    }
                }
                Event::OrderCanceled(e) => {
                    self.working.remove(&e.header.client_order_id);
                }
                _ => {}
            }
            Vec::new()
        }

        fn booked(&mut self, events: Vec<Event>) -> Vec<Event> {
            events
                .into_iter()
                .map(|event| match event {
                    Event::Fill(mut fill) => {
                        fill.realized_pnl_quote = Some(d("0"));
                        Event::Fill(fill)
                    }
                    other => other,
                })
                .collect()
        }

        fn on_control(&mut self, command: &ControlCommand, now_ms: i64) -> Control {
            self.log(|| format!("control {} @{now_ms}", command.command_id));
            if !self.decided.insert(command.command_id.clone()) {
                return Control {
                    is_duplicate: true,
                    ..Control::default()
                };
            }
            let decision = self.on_signal(
                &Signal {
                    signal_id: format!("flatten-{}", command.command_id),
                    symbol: "EURUSD".to_owned(),
                    timeframe: "1m".to_owned(),
                    bar_start_ms: 0,
                    direction: Direction::Short,
                    strength: 1.0,
                    confidence: 1.0,
                    model_id: "operator".to_owned(),
                    model_version: 0,
                    created_at_ms: now_ms,
                    members: Vec::new(),
                },
                now_ms,
            );
            let mut intent = decision.intent.expect("a short is an order");
            intent.model_id = "operator:backtest".to_owned();
            Control {
                outcome: Outcome {
                    events: vec![
                        risk("flatten", "closes EURUSD", now_ms),
                        risk("flatten_done", "asked", now_ms),
                    ],
                    intents: vec![intent],
                },
                is_duplicate: false,
            }
        }

        fn cancellations_for(&self, event: &Event) -> Vec<String> {
            match event {
                Event::RiskEvent(risk) if risk.kind == "trading_state" => {
                    self.working.iter().cloned().collect()
                }
                _ => Vec::new(),
            }
        }
    }

    fn tick(time_ms: i64, bid: f64) -> Item {
        Item::Tick {
            tick: Tick {
                symbol: "EURUSD".to_owned(),
                time_ms,
                seq: time_ms,
                bid,
                ask: bid + 0.0002,
                last: bid,
                volume: 1.0,
                flags: 0,
                source: "test".to_owned(),
            },
            is_valid: true,
        }
    }

    fn signal(id: &str, created_at_ms: i64, direction: Direction) -> Item {
        Item::Signal(Signal {
            signal_id: id.to_owned(),
            symbol: "EURUSD".to_owned(),
            timeframe: "1m".to_owned(),
            bar_start_ms: 0,
            direction,
            strength: 1.0,
            confidence: 1.0,
            model_id: "m".to_owned(),
            model_version: 1,
            created_at_ms,
            members: Vec::new(),
        })
    }

    /// The spike filter of the tests' timelines: a move within 100 % of the reference is a price.
    const WIDE: spike::Limits = spike::Limits {
        threshold_bps: 10_000.0,
        alpha: 0.05,
        confirm_after: 5,
        confirm_ms: 10_000,
        tolerance_bps: 100.0,
        max_factor: 2.0,
    };

    fn replay(engine: &mut Scripted, latency_ms: i64, timeline: &[Item]) -> Replayed {
        let mut venue = crate::paper::tests::venue(latency_ms, 0.0);
        let mut replay = Replay::new(engine, &mut venue, timeline[0].time_ms(), WIDE);
        replay.run(timeline).unwrap();
        replay.finish().unwrap()
    }

    /// Each journaled event as `tag@time`.
    fn shown(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|event| {
                let at_ms = match event {
                    Event::OrderAccepted(e) => e.header.event_at_ms,
                    Event::OrderFilled(e) => e.header.event_at_ms,
                    Event::OrderCanceled(e) => e.header.event_at_ms,
                    Event::OrderSubmitted(e) => e.header.event_at_ms,
                    Event::Fill(f) => f.filled_at_ms,
                    Event::RiskEvent(r) => r.occurred_at_ms,
                    Event::Signal(s) => s.created_at_ms,
                    _ => -1,
                };
                format!("{}@{at_ms}", event.tag().trim_end_matches(".v1"))
            })
            .collect()
    }

    #[test]
    fn an_order_due_before_an_item_fills_at_its_due_time_before_it_and_one_due_at_it_after_it() {
        let mut engine = Scripted::default();
        let timeline = [
            tick(0, 1.1),
            signal("a", 10, Direction::Long),
            signal("b", 20, Direction::Short),
            tick(60, 1.2),
            signal("c", 120, Direction::Flat), // a falls due at 110, before it; b at 120, its own time
        ];
        let done = replay(&mut engine, 100, &timeline);
        assert_eq!(
            shown(&done.events)[8..],
            [
                "order_filled@110", // a: at its due time, at the quote then
                "fill@110",
                "signal@120", // then c
                "order_denied@-1",
                "order_filled@120", // b: due at c's own time, after it
                "fill@120",
            ]
        );
        let Event::OrderFilled(a) = &done.events[8] else {
            panic!()
        };
        assert_eq!(
            a.fill_price, 1.2002,
            "the ask in effect at 110 (the tick at 60)"
        );
        assert!(engine
            .calls
            .contains(&"apply order_filled.v1 @110".to_owned()));
    }

    #[test]
    fn a_follow_up_is_recorded_after_the_whole_group_that_caused_it() {
        let mut engine = Scripted {
            fills_before_breaker: 1,
            ..Scripted::default()
        };
        let timeline = [tick(0, 1.1), signal("a", 10, Direction::Long)];
        let done = replay(&mut engine, 0, &timeline);
        assert_eq!(
            shown(&done.events)[3..],
            [
                "order_accepted@10",
                "order_filled@10",
                "fill@10", // the fill's record, journaled with it, before the breaker it tripped
                "risk_event@10",
            ]
        );
        let Event::Fill(fill) = &done.events[5] else {
            panic!()
        };
        assert_eq!(
            fill.realized_pnl_quote,
            Some(d("0")),
            "booked before journaled"
        );
        let applied: Vec<&str> = engine
            .calls
            .iter()
            .filter(|call| call.starts_with("apply"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            applied[2..],
            [
                "apply order_filled.v1 @10",
                "apply fill.v1 @10",
                "apply risk_event.v1 @10"
            ]
        );
    }

    #[test]
    fn a_halt_cancels_the_working_orders_after_its_group_and_they_never_fill() {
        let mut engine = Scripted {
            halt_below: 1.0,
            ..Scripted::default()
        };
        let timeline = [
            tick(0, 1.1),
            signal("a", 10, Direction::Long),
            signal("b", 20, Direction::Long),
            tick(50, 0.9),
            tick(5_000, 1.1),
        ];
        let done = replay(&mut engine, 1_000, &timeline);
        let shown = shown(&done.events);
        assert_eq!(
            shown[8..],
            ["risk_event@50", "order_canceled@50", "order_canceled@50"]
        );
        let Event::OrderCanceled(canceled) = &done.events[9] else {
            panic!()
        };
        assert_eq!(
            (
                canceled.header.client_order_id.as_str(),
                canceled.reason.as_str()
            ),
            ("tw-a", "canceled by trading_state: HALTED: the price fell")
        );
        assert!(!shown.iter().any(|event| event.starts_with("order_filled")));
    }

    #[test]
    fn the_chain_head_is_the_order_events_linked_one_by_one() {
        let mut engine = Scripted::default();
        let timeline = [
            tick(0, 1.1),
            signal("a", 10, Direction::Long),
            signal("a", 11, Direction::Long), // a duplicate: no trace
            signal("f", 12, Direction::Flat),
            tick(20, 1.2),
        ];
        let done = replay(&mut engine, 5, &timeline);
        let mut head = GENESIS_HASH.to_owned();
        let mut linked = 0;
        for event in &done.events {
            if matches!(
                event,
                Event::OrderSubmitted(_)
                    | Event::OrderAccepted(_)
                    | Event::OrderFilled(_)
                    | Event::OrderDenied(_)
            ) {
                head = link_hash(&head, &event.encode());
                linked += 1;
            }
        }
        assert_eq!(linked, 4);
        assert_eq!((done.chain_head, done.chain_length), (head, linked));
        assert_eq!(
            done.events
                .iter()
                .filter(|e| matches!(e, Event::Signal(_)))
                .count(),
            2
        );
    }

    #[test]
    fn a_tick_the_checks_refused_moves_the_clock_and_nothing_else() {
        let mut engine = Scripted::default();
        let Item::Tick { tick: bad, .. } = tick(150, 9.9) else {
            panic!()
        };
        let timeline = [
            tick(0, 1.1),
            signal("a", 10, Direction::Long),
            Item::Tick {
                tick: bad,
                is_valid: false,
            },
        ];
        let done = replay(&mut engine, 100, &timeline);
        let Event::OrderFilled(fill) = &done.events[4] else {
            panic!()
        };
        assert_eq!((fill.header.event_at_ms, fill.fill_price), (110, 1.1002));
        assert_eq!(done.rejected_ticks, 1);
        assert!(!engine.calls.contains(&"tick @150".to_owned()));
    }

    #[test]
    fn a_spike_the_filter_refuses_in_the_loop_prices_nothing_and_the_order_fills_at_the_quote_before_it(
    ) {
        let mut engine = Scripted::default();
        let timeline = [
            tick(0, 1.1),
            signal("a", 10, Direction::Long),
            tick(50, 3.0), // 17,000 bps above the reference: a spike, valid by the stateless rules
        ];
        let done = replay(&mut engine, 100, &timeline);
        let Event::OrderFilled(fill) = &done.events[4] else {
            panic!()
        };
        assert_eq!((fill.header.event_at_ms, fill.fill_price), (110, 1.1002));
        assert_eq!(done.rejected_ticks, 1);
        assert!(!engine.calls.contains(&"tick @50".to_owned()));
    }

    #[test]
    fn a_tick_the_rules_refused_never_reaches_the_spike_filter() {
        let mut checks = TickChecks::new(spike::Limits::default());
        let Item::Tick { tick: bad, .. } = tick(0, 9.9) else {
            panic!()
        };
        let Item::Tick { tick: good, .. } = tick(1, 1.1) else {
            panic!()
        };
        assert!(!checks.accepts(&bad, false));
        // Had the refused tick reached the filter, its mid would be the reference and this one a spike.
        assert!(checks.accepts(&good, true));
        let Item::Tick { tick: spike, .. } = tick(2, 9.9) else {
            panic!()
        };
        assert!(!checks.accepts(&spike, true), "the reference is 1.1");
        assert_eq!(checks.rejected, 2);
    }

    #[test]
    fn a_command_is_journaled_then_its_events_one_by_one_then_its_orders_sent() {
        let mut engine = Scripted::default();
        let timeline = [tick(0, 1.1), signal("a", 10, Direction::Long)];
        let mut venue = crate::paper::tests::venue(0, 0.0);
        let mut replay = Replay::new(&mut engine, &mut venue, 0, WIDE);
        replay.run(&timeline).unwrap();
        let command = ControlCommand {
            command_id: "backtest-end-10".to_owned(),
            command: crate::events::Command::Flatten,
            issued_by: "backtest".to_owned(),
            issued_at_ms: 10,
            reason: "the backtest ends".to_owned(),
            symbol: String::new(),
            params: Vec::new(),
        };
        replay.control(&command).unwrap();
        replay.control(&command).unwrap(); // applied once
        let done = replay.finish().unwrap();
        assert_eq!(
            shown(&done.events)[6..],
            [
                "control_command@-1",
                "risk_event@10",
                "risk_event@10",
                "order_intent@-1",
                "order_submitted@10",
                "order_accepted@10",
                "order_filled@10",
                "fill@10",
            ]
        );
        let applied = engine.calls.iter().filter(|call| call.starts_with("apply"));
        assert_eq!(
            applied.skip(4).take(3).collect::<Vec<_>>(),
            [
                "apply control_command.v1 @10",
                "apply risk_event.v1 @10",
                "apply risk_event.v1 @10"
            ]
        );
    }

    fn header(id: &str) -> OrderHeader {
        OrderHeader {
            client_order_id: id.to_owned(),
            signal_id: id.to_owned(),
            symbol: "EURUSD".to_owned(),
            model_id: "m".to_owned(),
            model_version: 1,
            event_at_ms: 0,
        }
    }

    fn order(id: &str, side: Side, lots: f64) -> Event {
        Event::OrderSubmitted(OrderSubmitted {
            header: header(id),
            side,
            quantity_lots: lots,
            order_type: OrderType::Market,
            limit_price: None,
            venue: None,
        })
    }

    fn filled(id: &str, lots: f64, price: f64) -> Event {
        Event::OrderFilled(crate::events::OrderFilled {
            header: header(id),
            fill_id: format!("f-{id}"),
            fill_price: price,
            fill_lots: lots,
            cumulative_lots: lots,
            is_final: true,
        })
    }

    fn denial(id: &str, check: &str) -> Event {
        Event::OrderDenied(OrderDenied {
            header: header(id),
            reason: String::new(),
            check: check.to_owned(),
        })
    }

    #[test]
    fn a_journal_s_figures_are_its_orders_denials_and_each_fill_s_move_on_its_book() {
        let events = [
            order("a", Side::Buy, 1.0),
            denial("x", "max_order_size"),
            filled("a", 1.0, 1.1),
            order("b", Side::Sell, 2.0),
            filled("b", 2.0, 1.2), // closes a at +0.1, then opens a short: through zero
            denial("y", "collar"),
            denial("z", "max_order_size"),
            order("c", Side::Buy, 0.5),
            filled("c", 0.5, 1.15), // half the short back at a gain of 0.025
        ];

        let figures = figures(&events).unwrap();

        assert_eq!(figures.orders, 3);
        assert_eq!(
            figures.denials.into_iter().collect::<Vec<_>>(),
            [("collar".to_owned(), 1), ("max_order_size".to_owned(), 2)]
        );
        let shown: Vec<(usize, Side, String, bool)> = figures
            .fills
            .iter()
            .map(|fill| {
                (
                    fill.at,
                    fill.side,
                    fill.moved.to_string(),
                    fill.opens_round_trip,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (2, Side::Buy, "0".to_owned(), true),
                (4, Side::Sell, "0.10".to_owned(), true), // 1.0 x 0.1, as Decimal writes it
                (8, Side::Buy, "0.025".to_owned(), false),
            ]
        );
        assert_eq!(
            super::figures(&[filled("d", 1.0, 1.1)]),
            Err(FiguresError::UnknownOrder("d".to_owned()))
        );
    }

    /// The loop's own cost per row with the scripted engine (`cargo test --release -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn the_loop_s_cost_per_row_at_200_000_rows() {
        let rows = 200_000;
        let directions = [Direction::Long, Direction::Short, Direction::Flat];
        let timeline: Vec<Item> = (0..rows)
            .map(|row| {
                let at_ms = row as i64 * 100;
                if row % 4 == 3 {
                    signal(&format!("s{row}"), at_ms, directions[row % 3])
                } else {
                    tick(at_ms, 1.1 + (row % 50) as f64 * 1e-4)
                }
            })
            .collect();
        let (mut best, mut chain_best) = (f64::MAX, f64::MAX);
        let (mut events, mut linked) = (0, 0);
        for _ in 0..5 {
            let mut engine = Scripted {
                is_quiet: true,
                ..Scripted::default()
            };
            let started = std::time::Instant::now();
            let done = replay(&mut engine, 50, &timeline);
            best = best.min(started.elapsed().as_secs_f64());
            let started = std::time::Instant::now();
            linked = chain_extend(GENESIS_HASH, 0, &done.events).1;
            chain_best = chain_best.min(started.elapsed().as_secs_f64());
            events = done.events.len();
        }
        println!(
            "{rows} rows, {events} events journaled ({linked} chained): {:.3} s, {:.0} ns a row, of which the chain {:.0} ns (min of 5)",
            best,
            best * 1e9 / rows as f64,
            chain_best * 1e9 / rows as f64
        );
    }
}
