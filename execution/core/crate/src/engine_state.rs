//! The engine's trading state and its one writer (no Python).
//!
//! What the journal rebuilds: the orders and their lifecycle, the signals and commands already
//! decided, the exposure of working orders, the filled positions and their FIFO books, the
//! realised P&L per trading day, the day's marks, the trading state and halts, the order rate's
//! window and the broker's rejects in a row; plus the reconciliation window's indexes and the
//! revisions a valuation keys its caches on. [`EngineState`] is the only code that changes it:
//! one method per recorded event, [`EngineState::observe_tick`] per quote,
//! [`EngineState::note_stop_denied`] per protective close refused, [`EngineState::retire`] to let
//! go of what no later event reads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::gate::{Quote, View};
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
}

impl From<Overflow> for Refused {
    fn from(_: Overflow) -> Refused {
        Refused::Overflow
    }
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
    decided_ids: HashSet<Text>,
    pub applied_commands: HashSet<String>,
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
            decided_ids: HashSet::new(),
            applied_commands: HashSet::new(),
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
/// float's bits, an exact amount. Text from outside keeps the standard keyed hash.
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
pub type NumberMap<K, V> = HashMap<K, V, BuildHasherDefault<NumberHasher>>;

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
}
