//! The engine's trading state and its one writer (no Python).
//!
//! What the journal rebuilds: the orders and their lifecycle, the signals and commands already
//! decided, the exposure of working orders, the filled positions and their FIFO books, the
//! realised P&L per trading day, the day's marks, the trading state and halts, the order rate's
//! window and the broker's rejects in a row; plus the reconciliation window's indexes and the
//! revisions a valuation keys its caches on. [`EngineState`] is the only code that changes it:
//! [`EngineState::apply`] per recorded event (which calls one method per kind),
//! [`EngineState::observe_tick`] per quote,
//! [`EngineState::note_stop_denied`] per protective close refused, [`EngineState::retire`] to let
//! go of what no later event reads.

use std::collections::VecDeque;

use crate::maps::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::broker::EXPIRED_PREFIX;
use crate::decide::{DAY_ROLLOVER, FLATTEN, SYMBOL_HALTED, SYMBOL_RESUMED, TRADING_STATE};
use crate::events::{Event, OrderFilled, RiskEvent};
use crate::gate::{Quote, Spec, View};
use crate::lifecycle::{self, CreationIndex, Status};
use crate::money::{Dec, Overflow};
use crate::positions::{Book, Booking};
use crate::risk::PriceWindow;

/// The order rate's window.
pub const RATE_WINDOW_MS: i64 = 1_000;
/// How far past the reconciliation's window ended orders stay in memory, and how far a signal's
/// creation time may run ahead of its decision's (two hosts' clocks).
pub const RETIRE_MARGIN_MS: i64 = 600_000;

/// Text an order shares with its moved copies (a copy costs a count, not an allocation).
pub type Text = Arc<str>;

/// What the execution process knows about one order.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub client_order_id: Text,
    pub signal_id: Text,
    pub symbol: Text,
    pub side: Text,
    pub quantity_lots: f64,
    pub model_id: Text,
    pub model_version: i64,
    pub created_at_ms: i64,
    pub status: Status,
    pub filled_lots: f64,
    pub broker_order_id: Text,
    pub fill_ids: Vec<String>,
}

impl Order {
    pub fn is_buy(&self) -> bool {
        &*self.side == "buy"
    }
}

/// An order asked to move along a path the lifecycle table does not allow (the message says which).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IllegalTransition(pub String);

/// Return a copy of `order` in `to` (a fill may repeat `partially_filled`); a broker order id or a
/// fill id given empty changes nothing.
pub fn moved(
    order: &Order,
    to: Status,
    filled_lots: Option<f64>,
    broker_order_id: &str,
    fill_id: &str,
) -> Result<Order, IllegalTransition> {
    if !lifecycle::is_allowed(order.status, to) {
        return Err(IllegalTransition(format!(
            "order {}: illegal transition {} -> {}",
            order.client_order_id,
            order.status.name(),
            to.name()
        )));
    }
    let mut next = order.clone();
    next.status = to;
    if let Some(lots) = filled_lots {
        next.filled_lots = lots;
    }
    if !broker_order_id.is_empty() {
        next.broker_order_id = broker_order_id.into();
    }
    if !fill_id.is_empty() {
        next.fill_ids.push(fill_id.to_owned());
    }
    Ok(next)
}

/// Book a fill of `order` (`fill_lots` at `price`) on `book`: the one rule for the engine's state and
/// the fill's record (a buy adds lots, a sell takes them).
pub fn book_fill(
    book: &mut Book,
    order: &Order,
    fill_lots: Dec,
    price: Dec,
    fill_id: &str,
) -> Result<Booking, Overflow> {
    let signed = if order.is_buy() {
        fill_lots
    } else {
        fill_lots.negated()
    };
    book.book(signed, price, fill_id)
}

/// A broker's answer about one order.
#[derive(Clone, Copy, Debug)]
pub enum Answer<'a> {
    Accepted {
        broker_order_id: &'a str,
    },
    Rejected,
    Filled {
        fill_id: &'a str,
        cumulative_lots: f64,
        fill_lots: Dec,
        is_final: bool,
        booked: Booked<'a>,
    },
    Canceled {
        is_expired: bool,
    },
}

/// How a fill is booked.
#[derive(Clone, Copy, Debug)]
pub enum Booked<'a> {
    /// On the symbol's book, at this price.
    At(Dec),
    /// Already, on a copy of the symbol's book while no fill was booked since: the book after the
    /// fill, taken as it is (the caller holds its booking).
    Ahead(&'a Book),
}

/// What a broker's answer did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// Nothing: the same execution reported twice.
    Unchanged,
    /// The order moved (and, for a fill, what the fill did to its symbol's position).
    Moved(Option<Box<Booking>>),
}

/// Why an answer could not be applied: a defect (the order is left as it was) or an amount beyond the exact range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Illegal(IllegalTransition),
    Overflow,
    NotFinite(String),
    /// A day rollover whose detail is not the marks' JSON.
    BadDetail(String),
}

impl From<Overflow> for Refused {
    fn from(_: Overflow) -> Refused {
        Refused::Overflow
    }
}

/// What the state asks of the kernel while it applies an event: the instruments in force and the
/// trading day of an instant (the calendar).
pub trait Context {
    fn instrument(&self, symbol: &str) -> Option<&Spec>;
    fn trading_day(&self, at_ms: i64) -> String;
}

/// A fill booked ahead of its apply on a copy of its symbol's book (see `Booked::Ahead`): the book
/// after it and the realised P&L of its booking, which the caller holds.
#[derive(Clone, Copy, Debug)]
pub struct Ahead<'a> {
    pub book: &'a Book,
    pub realized: Dec,
}

/// What one applied event changed, for a caller that keeps copies of the state in step.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Nothing: the same execution reported twice.
    Unchanged,
    /// An order journaled as sent; `newly_decided`: its signal was not decided before.
    Submitted {
        newly_decided: bool,
    },
    /// A broker's answer moved its order: for a fill booked here its booking, for a fill with a
    /// realised P&L its trading day, quote currency and that day's total in it (or, when the
    /// symbol has no instrument, the defect kept instead).
    Answered {
        booking: Option<Box<Booking>>,
        realized: Option<(String, String, Dec)>,
        defect: Option<String>,
    },
    /// A signal denied; `newly_decided` as for a submission.
    Denied {
        newly_decided: bool,
    },
    /// The day's marks, in the event's order.
    Rollover {
        marks: Vec<(String, Dec)>,
    },
    TradingState,
    SymbolHalted {
        is_halted: bool,
    },
    Command,
    /// An event that changes no state (a tick, a signal, an informational risk event, ...).
    Nothing,
}

/// The orders by client order id, in the order first stored (a replaced order keeps its place).
///
/// Each order is shared (`Arc`): a reader holding one keeps it as it was when read, as a frozen
/// record, without a copy.
#[derive(Clone, Debug, Default)]
pub struct Orders {
    slots: Vec<Option<Arc<Order>>>,
    places: HashMap<Text, usize>,
}

impl Orders {
    pub fn get(&self, client_order_id: &str) -> Option<&Order> {
        self.places
            .get(client_order_id)
            .and_then(|&place| self.slots[place].as_deref())
    }

    /// The order, shared.
    pub fn shared(&self, client_order_id: &str) -> Option<&Arc<Order>> {
        self.places
            .get(client_order_id)
            .and_then(|&place| self.slots[place].as_ref())
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The orders in the order first stored.
    pub fn values(&self) -> impl Iterator<Item = &Order> {
        self.slots.iter().flatten().map(|order| &**order)
    }

    /// Each place's order in the order first stored (a let-go one: None). A moved order is
    /// another `Arc` in its place, so a copy of this slice tells later which orders moved since.
    pub fn slots(&self) -> &[Option<Arc<Order>>] {
        &self.slots
    }

    fn put(&mut self, order: Order) {
        match self.places.get(&order.client_order_id) {
            Some(&place) => self.slots[place] = Some(Arc::new(order)),
            None => {
                self.places
                    .insert(order.client_order_id.clone(), self.slots.len());
                self.slots.push(Some(Arc::new(order)));
            }
        }
    }

    fn remove(&mut self, client_order_id: &str) -> Option<Arc<Order>> {
        let place = self.places.remove(client_order_id)?;
        let order = self.slots[place].take();
        if self.slots.len() > 64 && self.places.len() * 2 < self.slots.len() {
            self.compact();
        }
        order
    }

    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        for (place, order) in self.slots.iter().flatten().enumerate() {
            self.places.insert(order.client_order_id.clone(), place);
        }
    }
}

/// What the engine knows; changed only by its own methods.
#[derive(Clone, Debug)]
pub struct EngineState {
    pub orders: Orders,
    /// Signal id -> decided at (ms), in journal order (the first decision kept).
    decided: VecDeque<(Text, i64)>,
    // Ids a producer chooses: the standard keyed hash (`maps.rs`).
    decided_ids: std::collections::HashSet<Text>,
    pub applied_commands: std::collections::HashSet<String>,
    pub books: HashMap<String, Book>,
    /// Signed lots of working orders not yet filled, per symbol.
    pub pending: HashMap<String, Dec>,
    /// The signed filled position per symbol (the book's lots).
    pub positions: HashMap<String, Dec>,
    /// The orders of the last second (their submission times, in order).
    pub order_times_ms: VecDeque<i64>,
    pub consecutive_rejects: i64,
    pub trading_state: String,
    pub halted_symbols: HashSet<String>,
    /// Realised P&L per trading day and quote currency (exact).
    pub realized_by_day: HashMap<String, HashMap<String, Dec>>,
    /// Unrealised P&L of each position (quote currency) at the start of `marked_day`.
    pub day_marks: HashMap<String, Dec>,
    pub marked_day: String,
    /// The latest quote per symbol (a late tick does not replace a newer one).
    pub quotes: HashMap<String, Quote>,
    /// Each symbol's mids over the flash-crash window (every tick, late ones too).
    pub windows: HashMap<String, PriceWindow>,
    pub stop_denied_at_ms: HashMap<String, i64>,
    pub defects: Vec<String>,
    pub retired_before_ms: i64,
    pub retired_orders: i64,
    pub retired_signals: i64,
    /// Bumped by every change the day's P&L depends on (the latest ticks, the books, the marks).
    pub pnl_revision: i64,
    /// Bumped by those that are not ticks (a fill booked, the day's marks).
    pub books_revision: i64,
    created: CreationIndex,
    open_ids: HashSet<Text>,
    /// Floats' exact decimals (a cache, not state).
    pub exact: Exact,
}

impl Default for EngineState {
    fn default() -> EngineState {
        EngineState::new()
    }
}

impl EngineState {
    pub fn new() -> EngineState {
        EngineState {
            orders: Orders::default(),
            decided: VecDeque::new(),
            decided_ids: std::collections::HashSet::new(),
            applied_commands: std::collections::HashSet::new(),
            books: HashMap::new(),
            pending: HashMap::new(),
            positions: HashMap::new(),
            order_times_ms: VecDeque::new(),
            consecutive_rejects: 0,
            trading_state: "ACTIVE".to_owned(),
            halted_symbols: HashSet::new(),
            realized_by_day: HashMap::new(),
            day_marks: HashMap::new(),
            marked_day: String::new(),
            quotes: HashMap::new(),
            windows: HashMap::new(),
            stop_denied_at_ms: HashMap::new(),
            defects: Vec::new(),
            retired_before_ms: 0,
            retired_orders: 0,
            retired_signals: 0,
            pnl_revision: 0,
            books_revision: 0,
            created: CreationIndex::new(),
            open_ids: HashSet::new(),
            exact: Exact::default(),
        }
    }

    /// Room for `signals` more signals decided and as many orders, made at once (a replay knows how
    /// many it brings): no table grows and rehashes on the way.
    pub fn reserve(&mut self, signals: usize) {
        self.decided.reserve(signals);
        self.decided_ids.reserve(signals);
        self.orders.slots.reserve(signals);
        self.orders.places.reserve(signals);
        self.created.reserve(signals);
    }

    // -------------------------------------------------------------------------------------
    // The writers
    // -------------------------------------------------------------------------------------

    /// An order journaled as sent: the signal is decided, the order stored, its lots pending,
    /// its time in the rate window. Return the order as stored.
    pub fn submitted(&mut self, order: Order) -> Result<(), Refused> {
        let lots = self.exact.of(order.quantity_lots)?;
        self.decide(Arc::clone(&order.signal_id), order.created_at_ms);
        let (symbol, is_buy, at_ms) = (order.symbol.clone(), order.is_buy(), order.created_at_ms);
        self.put(order);
        self.add_pending(&symbol, is_buy, lots)?;
        let times = &mut self.order_times_ms;
        times.push_back(at_ms);
        while times.front().is_some_and(|&t| t <= at_ms - RATE_WINDOW_MS) {
            times.pop_front();
        }
        Ok(())
    }

    /// A signal denied: decided.
    pub fn denied(&mut self, signal_id: &str, at_ms: i64) {
        if !self.decided_ids.contains(signal_id) {
            self.decide(signal_id.into(), at_ms);
        }
    }

    /// An operator's command applied.
    pub fn command(&mut self, command_id: &str) {
        self.applied_commands.insert(command_id.to_owned());
    }

    /// A broker's answer about order `client_order_id`.
    pub fn answered(
        &mut self,
        client_order_id: &str,
        answer: Answer<'_>,
    ) -> Result<Applied, Refused> {
        let order = match self.orders.get(client_order_id) {
            Some(order) => order,
            None => {
                let kind = match answer {
                    Answer::Accepted { .. } => "OrderAccepted",
                    Answer::Rejected => "OrderRejected",
                    Answer::Filled { .. } => "OrderFilled",
                    Answer::Canceled { .. } => "OrderCanceled",
                };
                return Err(Refused::Illegal(IllegalTransition(format!(
                    "order {client_order_id}: {kind} for an unknown order"
                ))));
            }
        };
        match answer {
            Answer::Filled {
                fill_id,
                cumulative_lots,
                fill_lots,
                is_final,
                booked,
            } => {
                if order.fill_ids.iter().any(|id| id == fill_id) {
                    return Ok(Applied::Unchanged);
                }
                let status = if is_final {
                    Status::Filled
                } else {
                    Status::PartiallyFilled
                };
                let next = moved(order, status, Some(cumulative_lots), "", fill_id)
                    .map_err(Refused::Illegal)?;
                let (symbol, is_buy) = (next.symbol.clone(), next.is_buy());
                let book = slot(&mut self.books, &symbol);
                let booking = match booked {
                    Booked::Ahead(ahead) => {
                        book.take(ahead);
                        None
                    }
                    Booked::At(price) => {
                        Some(Box::new(book_fill(book, &next, fill_lots, price, fill_id)?))
                    }
                };
                let lots = book.lots;
                self.put(next);
                self.pnl_revision += 1;
                self.books_revision += 1;
                *slot(&mut self.positions, &symbol) = lots;
                self.add_pending(&symbol, is_buy, fill_lots.negated())?;
                self.consecutive_rejects = 0;
                Ok(Applied::Moved(booking))
            }
            Answer::Accepted { broker_order_id } => {
                let next = moved(order, Status::Accepted, None, broker_order_id, "")
                    .map_err(Refused::Illegal)?;
                self.put(next);
                self.consecutive_rejects = 0;
                Ok(Applied::Moved(None))
            }
            Answer::Rejected => {
                let next =
                    moved(order, Status::Rejected, None, "", "").map_err(Refused::Illegal)?;
                self.put(next.clone());
                self.release_rest(&next)?;
                self.consecutive_rejects += 1;
                Ok(Applied::Moved(None))
            }
            Answer::Canceled { is_expired } => {
                let to = if is_expired {
                    Status::Expired
                } else {
                    Status::Canceled
                };
                let next = moved(order, to, None, "", "").map_err(Refused::Illegal)?;
                self.put(next.clone());
                self.release_rest(&next)?;
                Ok(Applied::Moved(None))
            }
        }
    }

    /// Apply one recorded event: the one writer every event goes through. `ahead`: a fill's booking
    /// made ahead of it (used only by the `OrderFilled` it was made for). An illegal transition is
    /// refused, kept in `defects` and changes nothing else.
    pub fn apply(
        &mut self,
        event: &Event,
        context: &dyn Context,
        ahead: Option<Ahead<'_>>,
    ) -> Result<Change, Refused> {
        let outcome = self.dispatch(event, context, ahead);
        if let Err(Refused::Illegal(IllegalTransition(message))) = &outcome {
            self.note_defect(message.clone());
        }
        outcome
    }

    fn dispatch(
        &mut self,
        event: &Event,
        context: &dyn Context,
        ahead: Option<Ahead<'_>>,
    ) -> Result<Change, Refused> {
        match event {
            Event::OrderSubmitted(submitted) => {
                let header = &submitted.header;
                let newly_decided = !self.is_decided(&header.signal_id);
                self.submitted(Order {
                    client_order_id: header.client_order_id.as_str().into(),
                    signal_id: header.signal_id.as_str().into(),
                    symbol: header.symbol.as_str().into(),
                    side: submitted.side.name().into(),
                    quantity_lots: submitted.quantity_lots,
                    model_id: header.model_id.as_str().into(),
                    model_version: header.model_version,
                    created_at_ms: header.event_at_ms,
                    status: Status::Submitted,
                    filled_lots: 0.0,
                    broker_order_id: "".into(),
                    fill_ids: Vec::new(),
                })?;
                Ok(Change::Submitted { newly_decided })
            }
            Event::OrderAccepted(accepted) => self.moved_by(
                &accepted.header.client_order_id,
                Answer::Accepted {
                    broker_order_id: &accepted.broker_order_id,
                },
            ),
            Event::OrderRejected(rejected) => {
                self.moved_by(&rejected.header.client_order_id, Answer::Rejected)
            }
            Event::OrderCanceled(canceled) => self.moved_by(
                &canceled.header.client_order_id,
                Answer::Canceled {
                    is_expired: canceled.reason.starts_with(EXPIRED_PREFIX),
                },
            ),
            Event::OrderFilled(filled) => self.apply_fill(filled, context, ahead),
            Event::OrderDenied(denied) => {
                let newly_decided = !self.is_decided(&denied.header.signal_id);
                self.denied(&denied.header.signal_id, denied.header.event_at_ms);
                Ok(Change::Denied { newly_decided })
            }
            Event::RiskEvent(risk) => self.apply_risk(risk),
            Event::ControlCommand(command) => {
                self.command(&command.command_id);
                Ok(Change::Command)
            }
            Event::Tick(_) | Event::Signal(_) | Event::OrderIntent(_) | Event::Fill(_) => {
                Ok(Change::Nothing)
            }
        }
    }

    fn moved_by(&mut self, client_order_id: &str, answer: Answer<'_>) -> Result<Change, Refused> {
        Ok(match self.answered(client_order_id, answer)? {
            Applied::Unchanged => Change::Unchanged,
            Applied::Moved(_) => Change::Answered {
                booking: None,
                realized: None,
                defect: None,
            },
        })
    }

    /// A fill: booked on its symbol's book (or taken as booked ahead), its realised P&L x the
    /// contract size added to its trading day in its quote currency.
    fn apply_fill(
        &mut self,
        filled: &OrderFilled,
        context: &dyn Context,
        ahead: Option<Ahead<'_>>,
    ) -> Result<Change, Refused> {
        let cid = &filled.header.client_order_id;
        let fill_lots = self.exact.of(filled.fill_lots)?;
        let booked = match ahead {
            Some(ahead) => Booked::Ahead(ahead.book),
            None => Booked::At(self.exact.of(filled.fill_price)?),
        };
        let booking = match self.answered(
            cid,
            Answer::Filled {
                fill_id: &filled.fill_id,
                cumulative_lots: filled.cumulative_lots,
                fill_lots,
                is_final: filled.is_final,
                booked,
            },
        )? {
            Applied::Unchanged => return Ok(Change::Unchanged),
            Applied::Moved(booking) => booking,
        };
        let realized = match (&booking, ahead) {
            (Some(booking), _) => booking.realized,
            (None, Some(ahead)) => ahead.realized,
            (None, None) => Dec::ZERO,
        };
        let (mut day_total, mut defect) = (None, None);
        if !realized.is_zero() {
            let symbol = self
                .orders
                .get(cid)
                .map(|o| o.symbol.clone())
                .unwrap_or_default();
            match context.instrument(&symbol) {
                None => {
                    let words = format!(
                        "no instrument spec for {symbol}: realised P&L {realized} not booked"
                    );
                    self.note_defect(words.clone());
                    defect = Some(words);
                }
                Some(spec) => {
                    let day = context.trading_day(filled.header.event_at_ms);
                    let contract_size = Dec::from_float(spec.contract_size)
                        .map_err(|bad| Refused::NotFinite(bad.0.to_string()))?;
                    let amount = realized.checked_mul(contract_size)?;
                    let total = self.add_realized(&day, &spec.quote, amount)?;
                    day_total = Some((day, spec.quote.clone(), total));
                }
            }
        }
        Ok(Change::Answered {
            booking,
            realized: day_total,
            defect,
        })
    }

    fn apply_risk(&mut self, risk: &RiskEvent) -> Result<Change, Refused> {
        Ok(match risk.kind.as_str() {
            DAY_ROLLOVER => {
                let (day, marks) = rollover_marks(&risk.detail)
                    .ok_or_else(|| Refused::BadDetail(risk.detail.clone()))?;
                self.mark_day(&day, marks.iter().cloned().collect());
                Change::Rollover { marks }
            }
            TRADING_STATE => {
                self.set_trading_state(risk.trading_state.name());
                Change::TradingState
            }
            SYMBOL_HALTED | SYMBOL_RESUMED => {
                let is_halted = risk.kind == SYMBOL_HALTED;
                self.set_symbol_halted(&risk.symbol, is_halted);
                Change::SymbolHalted { is_halted }
            }
            _ => Change::Nothing,
        })
    }

    /// The client order ids of the working orders `event` cancels: a halt of trading or a flatten
    /// of all, every one; a symbol's halt or flatten, that symbol's; any other event, none.
    pub fn cancellations_for(&self, event: &Event) -> Vec<Text> {
        let Event::RiskEvent(risk) = event else {
            return Vec::new();
        };
        let kind = risk.kind.as_str();
        let all = (kind == TRADING_STATE && risk.trading_state.name() == "HALTED")
            || (kind == FLATTEN && risk.symbol.is_empty());
        let of_symbol = kind == SYMBOL_HALTED || (kind == FLATTEN && !risk.symbol.is_empty());
        if !all && !of_symbol {
            return Vec::new();
        }
        self.working_orders()
            .filter(|order| all || *order.symbol == *risk.symbol)
            .map(|order| Arc::clone(&order.client_order_id))
            .collect()
    }

    /// Add a fill's realised P&L (already x contract size, quote currency) to trading day `day`.
    pub fn add_realized(
        &mut self,
        day: &str,
        currency: &str,
        amount: Dec,
    ) -> Result<Dec, Overflow> {
        let by_currency = self.realized_by_day.entry(day.to_owned()).or_default();
        let total = by_currency
            .get(currency)
            .copied()
            .unwrap_or(Dec::ZERO)
            .checked_add(amount)?;
        by_currency.insert(currency.to_owned(), total);
        Ok(total)
    }

    /// Mark the start of trading day `day`: each position's unrealised P&L then.
    pub fn mark_day(&mut self, day: &str, marks: HashMap<String, Dec>) {
        self.marked_day = day.to_owned();
        self.day_marks = marks;
        self.pnl_revision += 1;
        self.books_revision += 1;
    }

    /// Move trading to `state` (an ACTIVE resets the rejects in a row).
    pub fn set_trading_state(&mut self, state: &str) {
        self.trading_state = state.to_owned();
        if state == "ACTIVE" {
            self.consecutive_rejects = 0;
        }
    }

    /// Halt (or resume) one symbol.
    pub fn set_symbol_halted(&mut self, symbol: &str, is_halted: bool) {
        if is_halted {
            self.halted_symbols.insert(symbol.to_owned());
        } else {
            self.halted_symbols.remove(symbol);
        }
    }

    /// A quote: return true when it is the symbol's latest (a late tick does not replace a newer one).
    /// `window_ms`: the flash-crash window of a symbol seen for the first time.
    pub fn observe_tick(&mut self, symbol: &str, quote: Quote, window_ms: i64) -> bool {
        slot_with(&mut self.windows, symbol, || PriceWindow::new(window_ms))
            .update(quote.time_ms, quote.mid());
        match self.quotes.get_mut(symbol) {
            Some(latest) if quote.time_ms < latest.time_ms => false,
            Some(latest) => {
                *latest = quote;
                self.pnl_revision += 1;
                true
            }
            None => {
                self.quotes.insert(symbol.to_owned(), quote);
                self.pnl_revision += 1;
                true
            }
        }
    }

    /// Remember that a protective close of `symbol` was denied at `now_ms`.
    pub fn note_stop_denied(&mut self, symbol: &str, now_ms: i64) {
        self.stop_denied_at_ms.insert(symbol.to_owned(), now_ms);
    }

    /// Keep a defect (an impossible event met).
    pub fn note_defect(&mut self, defect: String) {
        self.defects.push(defect);
    }

    /// Let go of the ended orders created before `before_ms` and the signals decided before it;
    /// return the orders and the signal ids let go (the orders' fills' bookings go with them).
    /// Positions, books, realised P&L and working orders are kept whatever their age.
    pub fn retire(&mut self, before_ms: i64) -> (Vec<Arc<Order>>, Vec<Text>) {
        if before_ms <= self.retired_before_ms {
            return (Vec::new(), Vec::new());
        }
        self.retired_before_ms = before_ms;
        let orders = &self.orders;
        let ids = self
            .created
            .retire(before_ms, |cid| {
                Ok::<bool, ()>(orders.get(cid).is_some_and(|o| o.status.is_terminal()))
            })
            .unwrap_or_default();
        let retired: Vec<Arc<Order>> = ids
            .iter()
            .filter_map(|cid| self.orders.remove(cid))
            .collect();
        let mut signals = Vec::new();
        while self.decided.front().is_some_and(|(_, at)| *at < before_ms) {
            let (signal_id, _) = self.decided.pop_front().expect("a front");
            self.decided_ids.remove(&signal_id);
            signals.push(signal_id);
        }
        self.retired_orders += retired.len() as i64;
        self.retired_signals += signals.len() as i64;
        (retired, signals)
    }

    // -------------------------------------------------------------------------------------
    // Queries
    // -------------------------------------------------------------------------------------

    /// Whether a signal was decided (and not let go).
    pub fn is_decided(&self, signal_id: &str) -> bool {
        self.decided_ids.contains(signal_id)
    }

    /// How many signals are kept decided (`decided_since`'s start for what comes next).
    pub fn decided_len(&self) -> usize {
        self.decided.len()
    }

    /// The signals decided (id, at ms) from the `from`-th kept on, in journal order.
    pub fn decided_since(&self, from: usize) -> impl Iterator<Item = &(Text, i64)> {
        self.decided.iter().skip(from)
    }

    /// The signals decided, in journal order.
    pub fn decided_signals(&self) -> impl Iterator<Item = &str> {
        self.decided.iter().map(|(id, _)| &**id)
    }

    /// The orders the broker may still fill, in the order first stored.
    pub fn working_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values().filter(|o| o.status.is_working())
    }

    /// Where a reconciliation's window starts: `since_ms`, or the oldest order not yet terminal.
    pub fn window_start(&self, since_ms: i64) -> i64 {
        self.open_ids
            .iter()
            .filter_map(|cid| self.orders.get(cid))
            .map(|o| o.created_at_ms)
            .fold(since_ms, i64::min)
    }

    /// A reconciliation window's start and its orders, in time order.
    pub fn orders_in_window(&self, since_ms: i64) -> (i64, Vec<&Order>) {
        let start_ms = self.window_start(since_ms);
        let orders = self
            .created
            .since(start_ms)
            .filter_map(|cid| self.orders.get(cid))
            .collect();
        (start_ms, orders)
    }

    /// The high-low move of `symbol`'s mid over its flash-crash window, in percent (0: none seen).
    pub fn move_pct(&self, symbol: &str) -> f64 {
        self.windows.get(symbol).map_or(0.0, PriceWindow::move_pct)
    }

    /// What the gate's checks read of the state.
    pub fn view(&self) -> View<'_> {
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

    /// The signed position as if every working order filled.
    pub fn exposure_lots(&self, symbol: &str) -> Result<Dec, Overflow> {
        let held = self.positions.get(symbol).copied().unwrap_or(Dec::ZERO);
        held.checked_add(self.pending.get(symbol).copied().unwrap_or(Dec::ZERO))
    }

    // -------------------------------------------------------------------------------------
    // Helpers
    // -------------------------------------------------------------------------------------

    fn decide(&mut self, signal_id: Text, at_ms: i64) {
        if self.decided_ids.insert(Arc::clone(&signal_id)) {
            self.decided.push_back((signal_id, at_ms));
        }
    }

    /// Store an order (new or moved) and keep the reconciliation indexes in step.
    fn put(&mut self, order: Order) {
        let cid = Arc::clone(&order.client_order_id);
        match self.orders.get(&cid).map(|o| o.created_at_ms) {
            Some(created) if created == order.created_at_ms => {}
            Some(created) => {
                self.created.remove(created, &cid);
                self.created.add(order.created_at_ms, &cid);
            }
            None => self.created.add(order.created_at_ms, &cid),
        }
        if order.status.is_terminal() {
            self.open_ids.remove(&cid);
        } else {
            self.open_ids.insert(cid);
        }
        self.orders.put(order);
    }

    fn add_pending(&mut self, symbol: &str, is_buy: bool, lots: Dec) -> Result<(), Overflow> {
        let signed = if is_buy { lots } else { lots.negated() };
        let now = self.pending.get(symbol).copied().unwrap_or(Dec::ZERO);
        self.pending
            .insert(symbol.to_owned(), now.checked_add(signed)?);
        Ok(())
    }

    /// An order ended without filling the rest: it no longer counts towards exposure.
    fn release_rest(&mut self, order: &Order) -> Result<(), Refused> {
        let quantity = self.exact.of(order.quantity_lots)?;
        let rest = quantity.checked_sub(self.exact.of(order.filled_lots)?)?;
        if rest.is_positive() {
            self.add_pending(&order.symbol, order.is_buy(), rest.negated())?;
        }
        Ok(())
    }
}

/// The value kept under `key`, made by `make` on first use.
fn slot_with<'a, V>(
    map: &'a mut HashMap<String, V>,
    key: &str,
    make: impl FnOnce() -> V,
) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), make());
    }
    map.get_mut(key).expect("just made")
}

/// The value kept under `key`, made (default) on first use without allocating the key again after.
fn slot<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str) -> &'a mut V {
    slot_with(map, key, V::default)
}

/// A quick hash (FxHash's multiply and rotate) for the bounded caches' keys, which are numbers: a
/// float's bits, an exact amount. Text keeps `maps.rs`'s maps.
#[derive(Clone, Copy, Debug, Default)]
pub struct NumberHasher {
    hash: u64,
}

impl NumberHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for NumberHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.add(word);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A map keyed by numbers, hashed with [`NumberHasher`] (for bounded caches).
pub type NumberMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<NumberHasher>>;

/// Floats' exact decimals (their shortest text), remembered: a cache, not state (lots and prices repeat).
#[derive(Clone, Debug, Default)]
pub struct Exact {
    known: NumberMap<u64, Dec>,
}

impl Exact {
    /// The exact decimal of `value`; NaN and infinities refused.
    pub fn of(&mut self, value: f64) -> Result<Dec, Refused> {
        if let Some(known) = self.known.get(&value.to_bits()) {
            return Ok(*known);
        }
        let exact = Dec::from_float(value).map_err(|bad| Refused::NotFinite(bad.0))?;
        if self.known.len() >= 4_096 {
            self.known.clear();
        }
        self.known.insert(value.to_bits(), exact);
        Ok(exact)
    }
}

/// The trading day and the marks (in their order) of a day rollover's detail, the JSON
/// `decide::rollover_detail` writes (`json.dumps` of `{"trading_day": .., "marks": {symbol: text}}`);
/// None for anything else.
pub fn rollover_marks(detail: &str) -> Option<(String, Vec<(String, Dec)>)> {
    let mut json = Json {
        text: detail.as_bytes(),
        at: 0,
    };
    let (mut day, mut marks) = (None, None);
    json.expect(b'{')?;
    loop {
        let key = json.string()?;
        json.expect(b':')?;
        match key.as_str() {
            "trading_day" => day = Some(json.string()?),
            "marks" => {
                let mut kept = Vec::new();
                json.expect(b'{')?;
                if !json.eat(b'}') {
                    loop {
                        let symbol = json.string()?;
                        json.expect(b':')?;
                        let amount = Dec::parse(&json.string()?).ok()?;
                        kept.push((symbol, amount));
                        if json.eat(b'}') {
                            break;
                        }
                        json.expect(b',')?;
                    }
                }
                marks = Some(kept);
            }
            _ => return None,
        }
        if json.eat(b'}') {
            break;
        }
        json.expect(b',')?;
    }
    json.skip_space();
    (json.at == json.text.len()).then_some(())?;
    Some((day?, marks?))
}

/// A reader of the JSON texts `json.dumps` writes: objects of strings only.
struct Json<'a> {
    text: &'a [u8],
    at: usize,
}

impl Json<'_> {
    fn skip_space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.text.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.text[self.at..]).ok()?;
            let mut chars = rest.chars();
            let c = chars.next()?;
            self.at += c.len_utf8();
            match c {
                '"' => return Some(out),
                '\\' => {
                    let escaped = self.text.get(self.at).copied()?;
                    self.at += 1;
                    out.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode()?,
                        _ => return None,
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.text.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    fn unicode(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) {
            (self.text.get(self.at..self.at + 2)? == b"\\u").then_some(())?;
            self.at += 2;
            let low = self.hex4()?;
            (0xDC00..0xE000).contains(&low).then_some(())?;
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        char::from_u32(high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(cid: &str, signal: &str, side: &str, lots: f64, at_ms: i64) -> Order {
        Order {
            client_order_id: cid.into(),
            signal_id: signal.into(),
            symbol: "EURUSD".into(),
            side: side.into(),
            quantity_lots: lots,
            model_id: "m".into(),
            model_version: 1,
            created_at_ms: at_ms,
            status: Status::Submitted,
            filled_lots: 0.0,
            broker_order_id: "".into(),
            fill_ids: Vec::new(),
        }
    }

    fn dec(text: &str) -> Dec {
        Dec::parse(text).unwrap()
    }

    fn fill<'a>(fill_id: &'a str, lots: &str, cumulative: f64, is_final: bool) -> Answer<'a> {
        Answer::Filled {
            fill_id,
            cumulative_lots: cumulative,
            fill_lots: dec(lots),
            is_final,
            booked: Booked::At(dec("1.1")),
        }
    }

    #[test]
    fn a_submission_decides_its_signal_and_counts_its_lots_as_pending() {
        let mut state = EngineState::new();
        state
            .submitted(order("c1", "s1", "sell", 0.5, 1_000))
            .unwrap();
        assert!(state.is_decided("s1"));
        assert_eq!(state.pending["EURUSD"], dec("-0.5"));
        assert_eq!(state.orders.get("c1").unwrap().status, Status::Submitted);
        assert_eq!(state.order_times_ms, VecDeque::from([1_000]));
        state
            .submitted(order("c2", "s2", "buy", 0.1, 2_000))
            .unwrap();
        assert_eq!(state.order_times_ms, VecDeque::from([2_000])); // a second later: the first left the window
    }

    #[test]
    fn fills_move_the_order_book_the_position_and_release_pending() {
        let mut state = EngineState::new();
        state.submitted(order("c1", "s1", "buy", 1.0, 0)).unwrap();
        assert_eq!(
            state.answered("c1", fill("f1", "0.4", 0.4, false)),
            Ok(Applied::Moved(Some(Box::new(Booking {
                position_before: Dec::ZERO,
                position_after: dec("0.4"),
                entry_value_after: dec("0.44"),
                realized: Dec::ZERO,
                round_trip_id: "f1".to_owned(),
                opens_round_trip_id: "f1".to_owned(),
            }))))
        );
        assert_eq!(
            state.answered("c1", fill("f1", "0.4", 0.4, false)),
            Ok(Applied::Unchanged)
        );
        state.answered("c1", fill("f2", "0.6", 1.0, true)).unwrap();
        let filled = state.orders.get("c1").unwrap();
        assert_eq!((filled.status, filled.filled_lots), (Status::Filled, 1.0));
        assert_eq!(filled.fill_ids, ["f1", "f2"]);
        assert_eq!(state.positions["EURUSD"], dec("1.0"));
        assert!(state.pending["EURUSD"].is_zero());
        assert_eq!((state.pnl_revision, state.books_revision), (2, 2));
    }

    #[test]
    fn an_illegal_answer_is_refused_and_changes_nothing() {
        let mut state = EngineState::new();
        state.submitted(order("c1", "s1", "buy", 1.0, 0)).unwrap();
        state.answered("c1", Answer::Rejected).unwrap();
        assert_eq!(state.consecutive_rejects, 1);
        assert!(state.pending["EURUSD"].is_zero()); // the rest released
        let refused = state.answered("c1", fill("f1", "1.0", 1.0, true));
        assert_eq!(
            refused,
            Err(Refused::Illegal(IllegalTransition(
                "order c1: illegal transition rejected -> filled".to_owned()
            )))
        );
        assert_eq!(state.orders.get("c1").unwrap().status, Status::Rejected);
        assert!(!state.books.contains_key("EURUSD"));
        assert!(matches!(
            state.answered("nope", Answer::Rejected),
            Err(Refused::Illegal(IllegalTransition(message))) if message == "order nope: OrderRejected for an unknown order"
        ));
    }

    #[test]
    fn a_cancel_expires_or_cancels_and_releases_only_the_unfilled_rest() {
        let mut state = EngineState::new();
        state.submitted(order("c1", "s1", "buy", 1.0, 0)).unwrap();
        state
            .answered("c1", fill("f1", "0.25", 0.25, false))
            .unwrap();
        state
            .answered("c1", Answer::Canceled { is_expired: true })
            .unwrap();
        assert_eq!(state.orders.get("c1").unwrap().status, Status::Expired);
        assert!(state.pending["EURUSD"].is_zero());
        assert_eq!(state.positions["EURUSD"], dec("0.25"));
    }

    #[test]
    fn the_window_starts_at_the_oldest_working_order_and_retire_keeps_it() {
        let mut state = EngineState::new();
        state
            .submitted(order("old", "s1", "buy", 1.0, 100))
            .unwrap();
        state
            .submitted(order("done", "s2", "buy", 1.0, 200))
            .unwrap();
        state.answered("done", Answer::Rejected).unwrap();
        state
            .submitted(order("new", "s3", "buy", 1.0, 5_000))
            .unwrap();
        assert_eq!(state.window_start(4_000), 100);
        let (start, orders) = state.orders_in_window(4_000);
        let ids: Vec<&str> = orders.iter().map(|o| &*o.client_order_id).collect();
        assert_eq!((start, ids), (100, vec!["old", "done", "new"]));
        let (retired, signals) = state.retire(1_000);
        assert_eq!(retired.len(), 1);
        assert_eq!(&*retired[0].client_order_id, "done");
        assert_eq!(signals, [Text::from("s1"), Text::from("s2")]);
        assert!(state.orders.get("old").is_some() && state.orders.get("done").is_none());
        assert_eq!(state.retire(900), (Vec::new(), Vec::new())); // not past the last retirement
        assert_eq!((state.retired_orders, state.retired_signals), (1, 2));
        let working: Vec<&str> = state
            .working_orders()
            .map(|o| &*o.client_order_id)
            .collect();
        assert_eq!(working, ["old", "new"]);
    }

    #[test]
    fn orders_keep_the_place_they_were_first_stored_in() {
        let mut orders = Orders::default();
        for n in 0..100 {
            orders.put(order(&format!("c{n}"), "s", "buy", 1.0, n));
        }
        for n in 0..80 {
            orders.remove(&format!("c{n}"));
        }
        let mut moved_order = order("c90", "s", "buy", 1.0, 90);
        moved_order.status = Status::Accepted;
        orders.put(moved_order);
        let ids: Vec<&str> = orders.values().map(|o| &*o.client_order_id).collect();
        assert_eq!(ids.len(), 20);
        assert_eq!((ids[0], ids[10], ids[19]), ("c80", "c90", "c99"));
        assert_eq!(orders.get("c90").unwrap().status, Status::Accepted);
    }

    #[test]
    fn a_late_tick_is_not_the_latest_and_halts_and_states_follow_their_events() {
        let mut state = EngineState::new();
        let at = |time_ms| Quote {
            bid: 1.0,
            ask: 1.0,
            time_ms,
        };
        assert!(state.observe_tick("EURUSD", at(10), 5_000));
        assert!(!state.observe_tick("EURUSD", at(9), 5_000));
        assert!(state.observe_tick("EURUSD", at(10), 5_000));
        assert_eq!(state.pnl_revision, 2);
        state.consecutive_rejects = 3;
        state.set_trading_state("HALTED");
        assert_eq!(state.consecutive_rejects, 3);
        state.set_trading_state("ACTIVE");
        assert_eq!(state.consecutive_rejects, 0);
        state.set_symbol_halted("XAUUSD", true);
        assert!(state.halted_symbols.contains("XAUUSD"));
        state.set_symbol_halted("XAUUSD", false);
        assert!(state.halted_symbols.is_empty());
        assert_eq!(
            state.add_realized("2024-01-02", "USD", dec("1.5")),
            Ok(dec("1.5"))
        );
        assert_eq!(
            state.add_realized("2024-01-02", "USD", dec("-0.25")),
            Ok(dec("1.25"))
        );
    }

    // ---- apply: the dispatch of a recorded event --------------------------------------------

    use crate::events::{
        OrderAccepted, OrderCanceled, OrderRejected, OrderSubmitted, OrderType, Severity, Side,
        TradingState,
    };
    use crate::fixtures::header;

    struct Kernel {
        instruments: HashMap<String, Spec>,
    }

    impl Context for Kernel {
        fn instrument(&self, symbol: &str) -> Option<&Spec> {
            self.instruments.get(symbol)
        }
        fn trading_day(&self, _at_ms: i64) -> String {
            "2023-11-15".to_owned()
        }
    }

    fn kernel() -> Kernel {
        let spec = Spec {
            contract_size: 100_000.0,
            base: "EUR".to_owned(),
            quote: "USD".to_owned(),
        };
        Kernel {
            instruments: HashMap::from_iter([("EURUSD".to_owned(), spec)]),
        }
    }

    fn submitted(n: usize, symbol: &str, side: Side) -> Event {
        Event::OrderSubmitted(OrderSubmitted {
            header: header(n, symbol),
            side,
            quantity_lots: 0.1,
            order_type: OrderType::Market,
            limit_price: None,
            venue: None,
        })
    }

    fn filled(n: usize, symbol: &str, price: f64) -> Event {
        Event::OrderFilled(OrderFilled {
            header: header(n, symbol),
            fill_id: format!("f{n}"),
            fill_price: price,
            fill_lots: 0.1,
            cumulative_lots: 0.1,
            is_final: true,
        })
    }

    fn risk(kind: &str, symbol: &str, trading_state: TradingState, detail: &str) -> Event {
        Event::RiskEvent(RiskEvent {
            risk_event_id: "r".to_owned(),
            kind: kind.to_owned(),
            severity: Severity::Critical,
            trading_state,
            detail: detail.to_owned(),
            occurred_at_ms: 1_000,
            symbol: symbol.to_owned(),
            check: String::new(),
        })
    }

    #[test]
    fn apply_when_round_trip_then_realised_pnl_booked_under_day_and_quote() {
        let (mut state, kernel) = (EngineState::new(), kernel());
        let change = state.apply(&submitted(1, "EURUSD", Side::Buy), &kernel, None);
        assert_eq!(
            change,
            Ok(Change::Submitted {
                newly_decided: true
            })
        );
        assert_eq!(state.pending["EURUSD"], dec("0.1"));
        state
            .apply(&filled(1, "EURUSD", 1.1), &kernel, None)
            .unwrap();
        state
            .apply(&submitted(2, "EURUSD", Side::Sell), &kernel, None)
            .unwrap();
        let Ok(Change::Answered {
            realized,
            defect,
            booking,
        }) = state.apply(&filled(2, "EURUSD", 1.1005), &kernel, None)
        else {
            panic!("the closing fill moves its order");
        };
        assert_eq!(defect, None);
        assert!(booking.is_some());
        let (day, currency, total) = realized.expect("a realised P&L");
        assert_eq!((day.as_str(), currency.as_str()), ("2023-11-15", "USD"));
        assert_eq!(
            total.cmp_value(dec("5")),
            std::cmp::Ordering::Equal,
            "{total}"
        );
        assert_eq!(state.positions["EURUSD"], Dec::ZERO);
        assert_eq!(state.orders.get("tw-2").unwrap().status, Status::Filled);
        // The same execution again changes nothing.
        assert_eq!(
            state.apply(&filled(2, "EURUSD", 1.1005), &kernel, None),
            Ok(Change::Unchanged)
        );
    }

    #[test]
    fn apply_when_no_instrument_then_realised_pnl_kept_as_defect() {
        let (mut state, kernel) = (EngineState::new(), kernel());
        for (n, side, price) in [(1, Side::Buy, 1.0), (2, Side::Sell, 1.5)] {
            state
                .apply(&submitted(n, "XAUUSD", side), &kernel, None)
                .unwrap();
            state
                .apply(&filled(n, "XAUUSD", price), &kernel, None)
                .unwrap();
        }
        assert!(state.realized_by_day.is_empty());
        assert_eq!(state.defects.len(), 1);
        assert!(state.defects[0].starts_with("no instrument spec for XAUUSD"));
    }

    #[test]
    fn apply_when_illegal_transition_then_refused_kept_as_defect_and_order_unchanged() {
        let (mut state, kernel) = (EngineState::new(), kernel());
        state
            .apply(&submitted(1, "EURUSD", Side::Buy), &kernel, None)
            .unwrap();
        let rejected = Event::OrderRejected(OrderRejected {
            header: header(1, "EURUSD"),
            reason: "no money".to_owned(),
            broker_code: None,
        });
        assert_eq!(state.apply(&rejected, &kernel, None).map(|_| ()), Ok(()));
        assert_eq!(state.consecutive_rejects, 1);
        let accepted = Event::OrderAccepted(OrderAccepted {
            header: header(1, "EURUSD"),
            broker_order_id: "b1".to_owned(),
        });
        let refused = state.apply(&accepted, &kernel, None);
        assert!(matches!(refused, Err(Refused::Illegal(_))), "{refused:?}");
        assert_eq!(state.orders.get("tw-1").unwrap().status, Status::Rejected);
        assert_eq!(state.defects.len(), 1);
        let unknown = Event::OrderAccepted(OrderAccepted {
            header: header(9, "EURUSD"),
            broker_order_id: "b9".to_owned(),
        });
        assert!(state.apply(&unknown, &kernel, None).is_err());
        assert_eq!(
            state.defects[1],
            "order tw-9: OrderAccepted for an unknown order"
        );
    }

    #[test]
    fn apply_when_canceled_with_expired_reason_then_expired() {
        let (mut state, kernel) = (EngineState::new(), kernel());
        for (n, reason, status) in [
            (1, "expired: ttl", Status::Expired),
            (2, "operator", Status::Canceled),
        ] {
            state
                .apply(&submitted(n, "EURUSD", Side::Buy), &kernel, None)
                .unwrap();
            let canceled = Event::OrderCanceled(OrderCanceled {
                header: header(n, "EURUSD"),
                reason: reason.to_owned(),
            });
            state.apply(&canceled, &kernel, None).unwrap();
            assert_eq!(state.orders.get(&format!("tw-{n}")).unwrap().status, status);
        }
        assert!(state.pending["EURUSD"].is_zero());
    }

    #[test]
    fn apply_when_risk_events_then_halts_states_and_marks_change() {
        let (mut state, kernel) = (EngineState::new(), kernel());
        let halted = risk(SYMBOL_HALTED, "EURUSD", TradingState::Active, "");
        assert_eq!(
            state.apply(&halted, &kernel, None),
            Ok(Change::SymbolHalted { is_halted: true })
        );
        assert!(state.halted_symbols.contains("EURUSD"));
        let resumed = risk(SYMBOL_RESUMED, "EURUSD", TradingState::Active, "");
        state.apply(&resumed, &kernel, None).unwrap();
        assert!(state.halted_symbols.is_empty());
        let halt = risk(TRADING_STATE, "", TradingState::Halted, "");
        assert_eq!(state.apply(&halt, &kernel, None), Ok(Change::TradingState));
        assert_eq!(state.trading_state, "HALTED");
        let detail =
            r#"{"trading_day": "2023-11-15", "marks": {"EURUSD": "-1.50", "GBPUSD": "2"}}"#;
        let rollover = risk(DAY_ROLLOVER, "", TradingState::Halted, detail);
        let marks = vec![
            ("EURUSD".to_owned(), dec("-1.50")),
            ("GBPUSD".to_owned(), dec("2")),
        ];
        assert_eq!(
            state.apply(&rollover, &kernel, None),
            Ok(Change::Rollover { marks })
        );
        assert_eq!(state.marked_day, "2023-11-15");
        let bad = risk(DAY_ROLLOVER, "", TradingState::Halted, "{\"marks\": {}}");
        assert!(matches!(
            state.apply(&bad, &kernel, None),
            Err(Refused::BadDetail(_))
        ));
    }

    #[test]
    fn rollover_marks_when_decide_wrote_them_then_read_back() {
        let marks = vec![
            ("EUR\"USD\u{e9}".to_owned(), dec("0.000012")),
            ("GBPUSD".to_owned(), dec("-3E+2")),
        ];
        let detail = crate::decide::rollover_detail("2024-02-29", &marks);
        assert_eq!(
            rollover_marks(&detail),
            Some(("2024-02-29".to_owned(), marks))
        );
        assert_eq!(
            rollover_marks(r#"{"trading_day": "d", "marks": {}}"#),
            Some(("d".to_owned(), Vec::new()))
        );
        for bad in [
            "",
            "{}",
            r#"{"trading_day": "d"}"#,
            r#"{"trading_day": "d", "marks": {"A": 1}}"#,
        ] {
            assert_eq!(rollover_marks(bad), None, "{bad}");
        }
    }

    #[test]
    fn cancellations_for_when_halts_and_flattens_then_working_orders_they_cover() {
        let (mut state, kernel) = (EngineState::new(), kernel());
        state
            .apply(&submitted(1, "EURUSD", Side::Buy), &kernel, None)
            .unwrap();
        state
            .apply(&submitted(2, "GBPUSD", Side::Buy), &kernel, None)
            .unwrap();
        state
            .apply(&submitted(3, "EURUSD", Side::Buy), &kernel, None)
            .unwrap();
        state
            .apply(&filled(3, "EURUSD", 1.1), &kernel, None)
            .unwrap();
        let ids = |event: &Event| -> Vec<String> {
            state
                .cancellations_for(event)
                .iter()
                .map(|id| id.to_string())
                .collect()
        };
        let all = vec!["tw-1".to_owned(), "tw-2".to_owned()];
        let eurusd = vec!["tw-1".to_owned()];
        let none: Vec<String> = Vec::new();
        assert_eq!(ids(&risk(TRADING_STATE, "", TradingState::Halted, "")), all);
        assert_eq!(
            ids(&risk(TRADING_STATE, "", TradingState::Reducing, "")),
            none
        );
        assert_eq!(ids(&risk(FLATTEN, "", TradingState::Active, "")), all);
        assert_eq!(
            ids(&risk(FLATTEN, "EURUSD", TradingState::Active, "")),
            eurusd
        );
        assert_eq!(
            ids(&risk(SYMBOL_HALTED, "EURUSD", TradingState::Active, "")),
            eurusd
        );
        assert_eq!(
            ids(&risk(SYMBOL_RESUMED, "EURUSD", TradingState::Active, "")),
            none
        );
        assert_eq!(ids(&submitted(4, "EURUSD", Side::Buy)), none);
    }
}
