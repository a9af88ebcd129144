//! The paper venue: a simulated broker's orders, quotes, fill prices and account, with no I/O.
//!
//! An order is accepted at once and falls due `latency_ms` later; it fills at the quote in effect at
//! that due time in market time (the symbol's last quote stamped at or before it), buys at the ask and
//! sells at the bid, each worsened by the slippage. The quotes of the last moments are kept per symbol
//! (10 s beyond the latency, at most 4,096), so a poll that comes late, having read later quotes, still
//! fills at the due time's price, as a replay of the same quotes does. Each fill settles into the net
//! position per symbol and, when the venue keeps an account, into FIFO books (`positions.rs`), the realised
//! P&L and the cash per currency, exactly.
//!
//! What the shell hands over and gets back untouched (the submitted event, the fill record, the tick)
//! are the type parameters `S`, `F` and `Q`: the venue keeps them beside its own figures.

use std::collections::{BTreeMap, VecDeque};

use crate::maps::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::broker::{accepted, canceled, fill_events, fill_id_for, rejected, BrokerFill, Identity};
use crate::events::{Event, OrderIntent, OrderSubmitted, OrderType, Side};
use crate::lifecycle::{CreationIndex, Status};
use crate::money::{Dec, NotADecimal, Overflow};
use crate::positions::Book;
use crate::rounding::Wide;

/// How long a symbol's quotes are kept behind its newest, beyond the latency.
pub const QUOTE_HISTORY_MS: i64 = 10_000;
/// The most quotes kept per symbol.
pub const QUOTE_HISTORY_MAX: usize = 4_096;
/// The significant digits of Python's default decimal context, in which the fill price is worked out.
const PRICE_DIGITS: usize = 28;

/// One quote: its time in market time, bid and ask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quote {
    pub time_ms: i64,
    pub bid: f64,
    pub ask: f64,
}

impl Quote {
    /// The mid price (`tickwave.contracts.core.mid_price`).
    pub fn mid(&self) -> f64 {
        (self.bid + self.ask) / 2.0
    }
}

/// A symbol's quotes, oldest first; the first kept is the one in effect at the history's horizon.
#[derive(Debug)]
pub struct QuoteHistory<Q> {
    entries: VecDeque<(Quote, Q)>,
}

impl<Q> Default for QuoteHistory<Q> {
    fn default() -> Self {
        QuoteHistory {
            entries: VecDeque::new(),
        }
    }
}

impl<Q> QuoteHistory<Q> {
    /// Keep `quote` unless it is older than the newest; forget what lies before the horizon `keep_ms` behind it.
    pub fn push(&mut self, quote: Quote, item: Q, keep_ms: i64) -> bool {
        if let Some((newest, _)) = self.entries.back() {
            if quote.time_ms < newest.time_ms {
                return false;
            }
        }
        self.entries.push_back((quote, item));
        let horizon_ms = quote.time_ms.saturating_sub(keep_ms);
        // The first kept stays the quote in effect at the horizon: dropped once the next is at or before it.
        while self.entries.len() > 1
            && (self.entries[1].0.time_ms <= horizon_ms || self.entries.len() > QUOTE_HISTORY_MAX)
        {
            self.entries.pop_front();
        }
        true
    }

    /// The quote in effect at `at_ms` (the last stamped at or before it); the earliest kept when all are later.
    pub fn at(&self, at_ms: i64) -> Option<&(Quote, Q)> {
        // Kept in time order (an older quote is refused): a binary search, whatever the host clock's offset.
        let after = self
            .entries
            .partition_point(|(quote, _)| quote.time_ms <= at_ms);
        self.entries.get(after.saturating_sub(1))
    }

    /// The newest quote.
    pub fn latest(&self) -> Option<&(Quote, Q)> {
        self.entries.back()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A decimal's digits without trailing zeros, and its exponent (the same value); a price (17 digits)
/// and a factor (28 digits, checked by `slippage_factors`) fit 128 bits, a wider amount is refused.
fn stripped(amount: Dec) -> Result<(u128, i32), NotADecimal> {
    let mut coefficient = amount
        .coefficient
        .magnitude_u128()
        .ok_or_else(|| NotADecimal(amount.to_string()))?;
    let mut exponent = amount.exponent;
    while coefficient != 0 && coefficient % 10 == 0 {
        coefficient /= 10;
        exponent += 1;
    }
    Ok((coefficient, exponent))
}

/// `price x factor` as Python computes `Decimal(repr(price)) * factor` and then `float()` of it.
///
/// The product is exact, then rounded to 28 significant digits, half even (Python's default
/// context: `rounding.rs`), then converted to the nearest float.
pub fn slipped_price(price: f64, factor: Dec) -> Result<f64, NotADecimal> {
    let price = Wide::from_dec(Dec::from_float(price)?);
    let text = price
        .multiply(&Wide::from_dec(factor), PRICE_DIGITS)
        .to_string();
    text.parse::<f64>().map_err(|_| NotADecimal(text))
}

/// The fill price's factors `1 + slippage` and `1 - slippage` for `slippage_bps` (exact).
///
/// Python works them out in its default context (28 digits); a slippage whose factor needs more digits
/// is refused rather than rounded.
pub fn slippage_factors(slippage_bps: f64) -> Result<(Dec, Dec), NotADecimal> {
    let bps = Dec::from_float(slippage_bps)?;
    let slippage = Dec::of(bps.coefficient, bps.exponent - 4); // bps / 10,000
    let too_long = || {
        NotADecimal(format!(
            "slippage_bps {slippage_bps} needs more than 28 digits"
        ))
    };
    let one = Dec::new(1, 0);
    let buy = one.checked_add(slippage).map_err(|_| too_long())?;
    let sell = one.checked_sub(slippage).map_err(|_| too_long())?;
    for factor in [buy, sell] {
        if stripped(factor).map_or(true, |(digits, _)| digits.to_string().len() > PRICE_DIGITS) {
            return Err(too_long());
        }
    }
    Ok((buy, sell))
}

/// An instrument's facts a fill settles with.
#[derive(Clone, Debug)]
pub struct Spec {
    pub contract_size: Dec,
    pub base: String,
    pub quote: String,
}

/// One order as the venue holds it; `S` is the submitted event, `F` a fill record, kept for the shell.
#[derive(Debug)]
pub struct Order<S, F> {
    pub submitted: S,
    pub symbol: String,
    pub is_buy: bool,
    pub created_at_ms: i64,
    pub status: Status,
    pub broker_order_id: String,
    pub due_at_ms: i64,
    pub fills: Vec<F>,
    pub reason: String,
    working_key: Option<(i64, u64)>,
}

/// The venue: its orders, each symbol's quotes and the account the fills settle into.
#[derive(Debug)]
pub struct Venue<S, F, Q> {
    pub latency_ms: i64,
    buy_factor: Dec,
    sell_factor: Dec,
    keep_ms: i64,
    keeps_account: bool,
    instruments: HashMap<String, Spec>,
    quotes: HashMap<String, QuoteHistory<Q>>,
    orders: HashMap<String, Order<S, F>>,
    /// Set (a replay's venue): the ids of the orders let go as they ended, each record dropped then.
    ended: Option<HashSet<String>>,
    working: BTreeMap<(i64, u64), String>, // by due time, then acceptance
    accepted: u64,
    created: CreationIndex,
    /// Orders received, let go or not: the next one's broker id.
    pub received: i64,
    pub lots: BTreeMap<String, Dec>,
    pub books: BTreeMap<String, Book>,
    pub cash: BTreeMap<String, Dec>,
    pub realized: BTreeMap<String, Dec>,
}

/// Why the venue cannot do what it was asked.
#[derive(Debug, PartialEq, Eq)]
pub enum VenueError {
    UnknownOrder(String),
    UnknownSymbol(String),
    Overflow,
    Price(String),
}

impl From<Overflow> for VenueError {
    fn from(_: Overflow) -> Self {
        VenueError::Overflow
    }
}

impl<S, F, Q> Venue<S, F, Q> {
    pub fn new(
        latency_ms: i64,
        slippage_bps: f64,
        keeps_account: bool,
        account_currency: &str,
        initial_cash: Dec,
        instruments: HashMap<String, Spec>,
    ) -> Result<Self, NotADecimal> {
        let (buy_factor, sell_factor) = slippage_factors(slippage_bps)?;
        let mut cash = BTreeMap::new();
        cash.insert(account_currency.to_owned(), initial_cash);
        let factors = (buy_factor, sell_factor);
        Ok(Venue::on_terms(
            latency_ms,
            factors,
            keeps_account,
            instruments,
            cash,
        ))
    }

    /// A venue on these terms with no order and no quote.
    fn on_terms(
        latency_ms: i64,
        (buy_factor, sell_factor): (Dec, Dec),
        keeps_account: bool,
        instruments: HashMap<String, Spec>,
        cash: BTreeMap<String, Dec>,
    ) -> Self {
        Venue {
            latency_ms,
            buy_factor,
            sell_factor,
            keep_ms: latency_ms.saturating_add(QUOTE_HISTORY_MS),
            keeps_account,
            instruments,
            quotes: HashMap::new(),
            orders: HashMap::new(),
            ended: None,
            working: BTreeMap::new(),
            accepted: 0,
            created: CreationIndex::new(),
            received: 0,
            lots: BTreeMap::new(),
            books: BTreeMap::new(),
            cash,
            realized: BTreeMap::new(),
        }
    }

    /// A venue on the same terms (latency, slippage, account, instruments, cash as it stands) with no order
    /// and no quote, keeping quotes of another kind (`R`): a replay's venue beside the shell's.
    pub fn with_same_terms<R>(&self) -> Venue<S, F, R> {
        Venue::on_terms(
            self.latency_ms,
            (self.buy_factor, self.sell_factor),
            self.keeps_account,
            self.instruments.clone(),
            self.cash.clone(),
        )
    }

    // -- quotes ---------------------------------------------------------------------------------

    /// Keep a quote of `symbol` (one older than its newest is ignored).
    pub fn on_tick(&mut self, symbol: &str, quote: Quote, item: Q) {
        match self.quotes.get_mut(symbol) {
            Some(history) => {
                history.push(quote, item, self.keep_ms);
            }
            None => {
                let mut history = QuoteHistory::default();
                history.push(quote, item, self.keep_ms);
                self.quotes.insert(symbol.to_owned(), history);
            }
        }
    }

    pub fn has_quote(&self, symbol: &str) -> bool {
        self.quotes.contains_key(symbol)
    }

    pub fn quote_at(&self, symbol: &str, at_ms: i64) -> Option<&(Quote, Q)> {
        self.quotes
            .get(symbol)
            .and_then(|history| history.at(at_ms))
    }

    /// The newest quote of every symbol.
    pub fn latest_quotes(&self) -> impl Iterator<Item = (&str, &(Quote, Q))> {
        self.quotes.iter().filter_map(|(symbol, history)| {
            history.latest().map(|latest| (symbol.as_str(), latest))
        })
    }

    // -- orders ---------------------------------------------------------------------------------

    /// Let go of each order as it ends (filled wholly, rejected or canceled), keeping only its id, so
    /// that a repeat of it is still known; no order is then listed by `ids_since` or let go by `retire`.
    /// A replay's venue: its memory is its working orders, not every order it was sent.
    pub fn forgetting_ended(mut self) -> Self {
        self.ended = Some(HashSet::new());
        self
    }

    pub fn knows(&self, client_order_id: &str) -> bool {
        self.orders.contains_key(client_order_id)
            || self
                .ended
                .as_ref()
                .is_some_and(|ended| ended.contains(client_order_id))
    }

    /// Let go of an order that ended, when the venue forgets them.
    fn ended(&mut self, client_order_id: &str) {
        if let Some(ended) = self.ended.as_mut() {
            if let Some((cid, _)) = self.orders.remove_entry(client_order_id) {
                ended.insert(cid);
            }
        }
    }

    pub fn order(&self, client_order_id: &str) -> Option<&Order<S, F>> {
        self.orders.get(client_order_id)
    }

    fn order_mut(&mut self, client_order_id: &str) -> Result<&mut Order<S, F>, VenueError> {
        self.orders
            .get_mut(client_order_id)
            .ok_or_else(|| VenueError::UnknownOrder(client_order_id.to_owned()))
    }

    /// Take the order out of the working set (whatever it becomes next).
    fn stop_working(&mut self, client_order_id: &str) -> Result<&mut Order<S, F>, VenueError> {
        let key = self.order_mut(client_order_id)?.working_key.take();
        if let Some(key) = key {
            self.working.remove(&key);
        }
        self.order_mut(client_order_id)
    }

    /// Record an order received; a repeat of a known one changes nothing (false).
    pub fn submitted(
        &mut self,
        client_order_id: &str,
        created_at_ms: i64,
        symbol: &str,
        is_buy: bool,
        submitted: S,
    ) -> bool {
        if self.knows(client_order_id) {
            return false;
        }
        self.orders.insert(
            client_order_id.to_owned(),
            Order {
                submitted,
                symbol: symbol.to_owned(),
                is_buy,
                created_at_ms,
                status: Status::Submitted,
                broker_order_id: String::new(),
                due_at_ms: 0,
                fills: Vec::new(),
                reason: String::new(),
                working_key: None,
            },
        );
        if self.ended.is_none() {
            self.created.add(created_at_ms, client_order_id);
        }
        self.received += 1;
        true
    }

    /// Record an order accepted at `at_ms`: it falls due `latency_ms` later.
    pub fn accepted(
        &mut self,
        client_order_id: &str,
        broker_order_id: &str,
        at_ms: i64,
    ) -> Result<(), VenueError> {
        let due_at_ms = at_ms.saturating_add(self.latency_ms);
        self.accepted += 1;
        let key = (due_at_ms, self.accepted);
        let order = self.stop_working(client_order_id)?;
        order.status = Status::Accepted;
        order.broker_order_id = broker_order_id.to_owned();
        order.due_at_ms = due_at_ms;
        order.working_key = Some(key);
        self.working.insert(key, client_order_id.to_owned());
        Ok(())
    }

    pub fn rejected(&mut self, client_order_id: &str, reason: &str) -> Result<(), VenueError> {
        let order = self.stop_working(client_order_id)?;
        order.status = Status::Rejected;
        order.reason = reason.to_owned();
        self.ended(client_order_id);
        Ok(())
    }

    pub fn canceled(&mut self, client_order_id: &str, reason: &str) -> Result<(), VenueError> {
        let order = self.stop_working(client_order_id)?;
        order.status = Status::Canceled;
        order.reason = reason.to_owned();
        self.ended(client_order_id);
        Ok(())
    }

    /// The price an order fills at: its due time's quote, the ask for a buy and the bid for a sell, slipped.
    pub fn fill_price(&self, client_order_id: &str) -> Result<f64, VenueError> {
        let order = self
            .orders
            .get(client_order_id)
            .ok_or_else(|| VenueError::UnknownOrder(client_order_id.to_owned()))?;
        let (quote, _) = self
            .quote_at(&order.symbol, order.due_at_ms)
            .ok_or_else(|| VenueError::UnknownSymbol(order.symbol.clone()))?;
        let (price, factor) = if order.is_buy {
            (quote.ask, self.buy_factor)
        } else {
            (quote.bid, self.sell_factor)
        };
        slipped_price(price, factor).map_err(|bad| VenueError::Price(bad.0))
    }

    /// Record a fill of `lots` at `price` (what its event carries) and settle it.
    pub fn filled(
        &mut self,
        client_order_id: &str,
        lots: f64,
        price: f64,
        is_final: bool,
        record: F,
    ) -> Result<(), VenueError> {
        let order = self.stop_working(client_order_id)?;
        order.status = if is_final {
            Status::Filled
        } else {
            Status::PartiallyFilled
        };
        order.fills.push(record);
        let (symbol, is_buy) = (order.symbol.clone(), order.is_buy);
        if is_final {
            self.ended(client_order_id);
        }
        self.settle(&symbol, is_buy, lots, price)
    }

    fn settle(
        &mut self,
        symbol: &str,
        is_buy: bool,
        lots: f64,
        price: f64,
    ) -> Result<(), VenueError> {
        let quantity = Dec::from_float(lots).map_err(|bad| VenueError::Price(bad.0))?;
        let signed = if is_buy { quantity } else { quantity.negated() };
        let net = self.lots.get(symbol).copied().unwrap_or(Dec::ZERO);
        self.lots
            .insert(symbol.to_owned(), net.checked_add(signed)?);
        if !self.keeps_account {
            return Ok(());
        }
        let spec = self
            .instruments
            .get(symbol)
            .ok_or_else(|| VenueError::UnknownSymbol(symbol.to_owned()))?
            .clone();
        let price = Dec::from_float(price).map_err(|bad| VenueError::Price(bad.0))?;
        let book = self.books.entry(symbol.to_owned()).or_default();
        // Units (lots x contract size) first, then x price: the instrument's P&L products, in their order.
        let realized = spec.contract_size.checked_mul(book.fill(signed, price)?)?;
        add_to(&mut self.realized, &spec.quote, realized)?;
        let units = signed.checked_mul(spec.contract_size)?;
        let paid = units.checked_mul(price)?;
        add_to(&mut self.cash, &spec.quote, paid.negated())?;
        add_to(&mut self.cash, &spec.base, units)?;
        Ok(())
    }

    /// The working orders due at `now_ms` whose symbol has quoted, by due time then acceptance.
    pub fn due(&self, now_ms: i64) -> Vec<String> {
        self.working
            .range(..(now_ms.saturating_add(1), 0))
            .filter(|(_, cid)| {
                self.orders
                    .get(cid.as_str())
                    .is_some_and(|order| self.quotes.contains_key(&order.symbol))
            })
            .map(|(_, cid)| cid.clone())
            .collect()
    }

    /// When the earliest working order falls due (None: nothing is waiting).
    pub fn next_due_ms(&self) -> Option<i64> {
        self.working.keys().next().map(|(due_ms, _)| *due_ms)
    }

    /// The orders created at or after `since_ms` in time order, then the older working ones by id.
    pub fn ids_since(&self, since_ms: Option<i64>) -> Vec<String> {
        let window: Vec<String> = self
            .created
            .since(since_ms.unwrap_or(i64::MIN))
            .map(str::to_owned)
            .collect();
        let Some(since_ms) = since_ms else {
            return window;
        };
        let mut older: Vec<String> = self
            .working
            .values()
            .filter(|cid| {
                self.orders
                    .get(cid.as_str())
                    .is_some_and(|order| order.created_at_ms < since_ms)
            })
            .cloned()
            .collect();
        older.sort();
        let mut ids = window;
        ids.extend(older);
        ids
    }

    /// Let go of the ended orders created before `before_ms`; return how many.
    pub fn retire(&mut self, before_ms: i64) -> usize {
        let orders = &self.orders;
        let retired = self
            .created
            .retire(before_ms, |cid| {
                Ok::<bool, ()>(
                    orders
                        .get(cid)
                        .is_some_and(|order| order.status.is_terminal()),
                )
            })
            .unwrap_or_default();
        for cid in &retired {
            self.orders.remove(cid);
        }
        retired.len()
    }

    /// The net position per symbol, without the flat ones.
    pub fn positions(&self) -> impl Iterator<Item = (&str, Dec)> {
        self.lots
            .iter()
            .filter(|(_, lots)| !lots.is_zero())
            .map(|(symbol, lots)| (symbol.as_str(), *lots))
    }
}

/// What the venue did with an order it was sent (`Venue::submit`).
#[derive(Debug, PartialEq)]
pub enum Submit {
    /// Known already: recorded in the ledger, not acted on.
    Repeat(OrderSubmitted),
    /// Refused before acting (its ledger is short of space): nothing recorded; the rejection answers.
    Refused(Event),
    /// Received, then answered (accepted or rejected; accepted without latency, its fill too).
    Acted {
        submitted: OrderSubmitted,
        answers: Vec<Event>,
    },
}

impl Submit {
    /// The events the venue's ledger records for the call, in order (a `Fill` record is rebuilt from its `OrderFilled`).
    pub fn ledgered(&self) -> Vec<&Event> {
        match self {
            Submit::Repeat(_) | Submit::Refused(_) => Vec::new(),
            Submit::Acted { answers, .. } => answers
                .iter()
                .filter(|answer| !matches!(answer, Event::Fill(_)))
                .collect(),
        }
    }

    /// What the venue answered, taken.
    pub fn into_answers(self) -> Vec<Event> {
        match self {
            Submit::Repeat(_) => Vec::new(),
            Submit::Refused(answer) => vec![answer],
            Submit::Acted { answers, .. } => answers,
        }
    }

    /// What the venue answered.
    pub fn answers(&self) -> &[Event] {
        match self {
            Submit::Repeat(_) => &[],
            Submit::Refused(answer) => std::slice::from_ref(answer),
            Submit::Acted { answers, .. } => answers,
        }
    }
}

/// The venue's own record of an order it was sent: the intent's fields at `now_ms`, no venue named.
pub fn submission(intent: &OrderIntent, now_ms: i64) -> OrderSubmitted {
    OrderSubmitted {
        header: intent.header_at(now_ms),
        side: intent.side,
        quantity_lots: intent.quantity_lots,
        order_type: intent.order_type,
        limit_price: intent.limit_price,
        venue: None,
    }
}

/// The paper broker: the venue answering with the order events every broker reports.
impl<Q> Venue<OrderSubmitted, BrokerFill, Q> {
    /// Take a market order: accepted, and filled at once without latency; a repeat of a known order places
    /// nothing. `ledger_problem`: why the venue's ledger cannot take the order (then it is refused unread).
    pub fn submit(
        &mut self,
        intent: &OrderIntent,
        now_ms: i64,
        ledger_problem: Option<&str>,
    ) -> Result<Submit, VenueError> {
        let submitted = submission(intent, now_ms);
        let cid = intent.client_order_id.as_str();
        if self.knows(cid) {
            return Ok(Submit::Repeat(submitted));
        }
        if let Some(problem) = ledger_problem {
            let reason = format!("the paper ledger is short of space: {problem}");
            return Ok(Submit::Refused(rejected(intent, reason, now_ms)));
        }
        let is_buy = intent.side == Side::Buy;
        self.submitted(cid, now_ms, &intent.symbol, is_buy, submitted.clone());
        let refusal = if !self.has_quote(&intent.symbol) {
            Some(format!("no quote for {}", intent.symbol))
        } else if intent.order_type != OrderType::Market {
            Some("the paper broker fills market orders only".to_owned())
        } else {
            None
        };
        let mut answers = Vec::with_capacity(3);
        match refusal {
            Some(reason) => {
                self.rejected(cid, &reason)?;
                answers.push(rejected(intent, reason, now_ms));
            }
            None => {
                let broker_order_id = format!("paper-{}", self.received);
                self.accepted(cid, &broker_order_id, now_ms)?;
                answers.push(accepted(intent, broker_order_id, now_ms));
                if self.latency_ms == 0 {
                    answers.extend(self.fill(cid, now_ms)?);
                }
            }
        }
        Ok(Submit::Acted { submitted, answers })
    }

    /// Fill an accepted order wholly now, at the quote in effect when it fell due: its `OrderFilled` and `Fill`.
    pub fn fill(&mut self, client_order_id: &str, now_ms: i64) -> Result<[Event; 2], VenueError> {
        let price = self.fill_price(client_order_id)?;
        let order = self.order_mut(client_order_id)?;
        let (sequence, lots) = (order.fills.len(), order.submitted.quantity_lots);
        let fill_id = fill_id_for(client_order_id, sequence);
        let fill = self.next_fill(client_order_id, fill_id, lots, price, now_ms)?;
        let events = fill_events(
            &self.order_mut(client_order_id)?.submitted,
            &fill,
            lots,
            true,
        );
        self.filled(client_order_id, lots, price, true, fill)?;
        Ok(events)
    }

    /// The record of an order's next fill: its deal id counts the order's fills.
    fn next_fill(
        &mut self,
        client_order_id: &str,
        fill_id: String,
        lots: f64,
        price: f64,
        filled_at_ms: i64,
    ) -> Result<BrokerFill, VenueError> {
        let order = self.order_mut(client_order_id)?;
        Ok(BrokerFill {
            fill_id,
            price,
            lots,
            filled_at_ms,
            deal_id: format!("{}-{}", order.broker_order_id, order.fills.len()),
            commission: 0.0,
        })
    }

    /// Fill the orders due at `now_ms` (their symbol quoted), by due time then acceptance.
    pub fn poll(&mut self, now_ms: i64) -> Result<Vec<Event>, VenueError> {
        let due = self.due(now_ms);
        let mut events = Vec::with_capacity(due.len() * 2);
        for client_order_id in due {
            events.extend(self.fill(&client_order_id, now_ms)?);
        }
        Ok(events)
    }

    /// The event of canceling an order still waiting for its fill (None: unknown or ended); nothing changes yet.
    pub fn cancellation(&self, client_order_id: &str, reason: &str, now_ms: i64) -> Option<Event> {
        let order = self.order(client_order_id)?;
        matches!(order.status, Status::Submitted | Status::Accepted)
            .then(|| canceled(&order.submitted, reason.to_owned(), now_ms))
    }

    /// Cancel an order still waiting for its fill; return its event (None: unknown or ended).
    pub fn cancel(
        &mut self,
        client_order_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<Event>, VenueError> {
        let event = self.cancellation(client_order_id, reason, now_ms);
        if event.is_some() {
            self.canceled(client_order_id, reason)?;
        }
        Ok(event)
    }

    /// Record a fill read back from the ledger and settle it.
    pub fn refilled(
        &mut self,
        client_order_id: &str,
        fill_id: &str,
        lots: f64,
        price: f64,
        filled_at_ms: i64,
        is_final: bool,
    ) -> Result<(), VenueError> {
        let record = self.next_fill(
            client_order_id,
            fill_id.to_owned(),
            lots,
            price,
            filled_at_ms,
        )?;
        self.filled(client_order_id, lots, price, is_final, record)
    }
}

fn add_to(
    amounts: &mut BTreeMap<String, Dec>,
    currency: &str,
    amount: Dec,
) -> Result<(), Overflow> {
    let before = amounts.get(currency).copied().unwrap_or(Dec::ZERO);
    amounts.insert(currency.to_owned(), before.checked_add(amount)?);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::money::d;

    fn quote(time_ms: i64, bid: f64, ask: f64) -> Quote {
        Quote { time_ms, bid, ask }
    }

    /// A venue trading EURUSD, keeping an account.
    pub(crate) fn venue<S, F>(latency_ms: i64, slippage_bps: f64) -> Venue<S, F, ()> {
        let mut instruments = HashMap::new();
        instruments.insert(
            "EURUSD".to_owned(),
            Spec {
                contract_size: d("100000"),
                base: "EUR".to_owned(),
                quote: "USD".to_owned(),
            },
        );
        Venue::new(
            latency_ms,
            slippage_bps,
            true,
            "USD",
            d("100000"),
            instruments,
        )
        .unwrap()
    }

    #[test]
    fn a_price_is_slipped_as_python_multiplies_and_converts() {
        let (buy, sell) = slippage_factors(0.5).unwrap();
        assert_eq!(
            (buy.to_string(), sell.to_string()),
            ("1.00005".to_owned(), "0.99995".to_owned())
        );
        assert_eq!(slipped_price(1.1001, buy).unwrap(), 1.100155005); // float(Decimal('1.1001') * Decimal('1.00005'))
        assert_eq!(slipped_price(1.1001, d("1.001")).unwrap(), 1.1012001);
        // 28 digits kept, half to even (Python: Context(prec=28).multiply(x, 1)).
        for (amount, kept) in [
            (
                "1.000000000000000000000000000500",
                "1.000000000000000000000000000",
            ),
            (
                "1.000000000000000000000000001500",
                "1.000000000000000000000000002",
            ),
            (
                "1.000000000000000000000000000501",
                "1.000000000000000000000000001",
            ),
            (
                "-1.000000000000000000000000000499",
                "-1.000000000000000000000000000",
            ),
            (
                "9.999999999999999999999999999500",
                "10.00000000000000000000000000",
            ),
        ] {
            let one = Wide::parse("1").unwrap();
            let rounded = Wide::parse(amount).unwrap().multiply(&one, PRICE_DIGITS);
            assert_eq!(rounded.to_string(), kept);
        }
    }

    #[test]
    fn a_late_poll_fills_at_the_quote_in_effect_when_the_order_fell_due() {
        let mut venue = venue(1_000, 0.0);
        venue.on_tick("EURUSD", quote(0, 1.0, 1.1), ());
        assert!(venue.submitted("a", 0, "EURUSD", true, ()));
        assert!(
            !venue.submitted("a", 0, "EURUSD", true, ()),
            "a repeat changes nothing"
        );
        venue.accepted("a", "paper-1", 0).unwrap();
        venue.on_tick("EURUSD", quote(1_000, 1.2, 1.3), ());
        venue.on_tick("EURUSD", quote(1_001, 1.4, 1.5), ());
        assert_eq!(venue.next_due_ms(), Some(1_000));
        assert!(venue.due(999).is_empty());
        assert_eq!(venue.due(1_300), vec!["a".to_owned()]);
        assert_eq!(venue.fill_price("a").unwrap(), 1.3);
        venue.filled("a", 0.1, 1.3, true, ()).unwrap();
        assert_eq!(venue.next_due_ms(), None);
        assert_eq!(venue.order("a").unwrap().status, Status::Filled);
        assert_eq!(venue.lots["EURUSD"].to_string(), "0.1");
        assert_eq!(venue.cash["USD"].to_string(), "87000.00");
        assert_eq!(venue.cash["EUR"].to_string(), "10000.0");
    }

    #[test]
    fn the_history_is_bounded_by_time_and_count_and_keeps_the_quote_at_its_horizon() {
        let mut history = QuoteHistory::default();
        for n in 0..(QUOTE_HISTORY_MAX as i64 * 2) {
            history.push(quote(n, 1.0, 1.0), n, 1_000_000);
        }
        assert_eq!(history.len(), QUOTE_HISTORY_MAX);
        let mut history = QuoteHistory::default();
        for n in 0..5 {
            history.push(quote(n * 10_000, 1.0, 1.0), n, 11_000);
        }
        assert_eq!(history.at(29_000).unwrap().1, 2, "in effect at the horizon");
        assert_eq!(
            history.at(0).unwrap().1,
            2,
            "nothing older kept: the earliest"
        );
        assert!(
            !history.push(quote(1, 1.0, 1.0), 9, 11_000),
            "older than the newest"
        );
        assert_eq!(history.latest().unwrap().1, 4);
    }

    #[test]
    fn a_round_trip_realises_its_pnl_in_the_quote_currency_and_retires() {
        let mut venue = venue(0, 0.0);
        venue.on_tick("EURUSD", quote(0, 1.1, 1.1), ());
        for (cid, is_buy, price) in [("a", true, 1.1), ("b", false, 1.2)] {
            venue.submitted(cid, 5, "EURUSD", is_buy, ());
            venue.accepted(cid, "x", 5).unwrap();
            venue.filled(cid, 0.5, price, true, ()).unwrap();
        }
        assert_eq!(venue.realized["USD"].to_string(), "5000.00");
        assert_eq!(venue.positions().count(), 0);
        assert_eq!(
            venue.ids_since(Some(5)),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(venue.retire(6), 2);
        assert!(venue.ids_since(None).is_empty());
    }

    fn intent(cid: &str, side: Side) -> OrderIntent {
        OrderIntent {
            client_order_id: cid.to_owned(),
            signal_id: format!("s-{cid}"),
            symbol: "EURUSD".to_owned(),
            side,
            quantity_lots: 0.1,
            order_type: OrderType::Market,
            model_id: "m".to_owned(),
            model_version: 3,
            created_at_ms: 0,
            limit_price: None,
        }
    }

    #[test]
    fn the_paper_broker_accepts_fills_when_due_and_cancels_only_a_waiting_order() {
        let mut venue: Venue<OrderSubmitted, BrokerFill, ()> = venue(100, 0.0);
        let no_quote = venue.submit(&intent("q", Side::Buy), 0, None).unwrap();
        assert!(
            matches!(&no_quote.answers()[0], Event::OrderRejected(r) if r.reason == "no quote for EURUSD")
        );
        venue.on_tick("EURUSD", quote(0, 1.0, 1.1), ());
        let taken = venue.submit(&intent("a", Side::Buy), 5, None).unwrap();
        let Event::OrderAccepted(accepted) = &taken.answers()[0] else {
            panic!("accepted: {taken:?}")
        };
        assert_eq!(
            (
                accepted.broker_order_id.as_str(),
                accepted.header.event_at_ms
            ),
            ("paper-2", 5)
        );
        assert_eq!(
            taken.ledgered().len(),
            1,
            "the acceptance (the submission is written with it)"
        );
        assert!(matches!(
            venue.submit(&intent("a", Side::Buy), 6, None).unwrap(),
            Submit::Repeat(_)
        ));
        let refused = venue
            .submit(&intent("b", Side::Sell), 6, Some("full"))
            .unwrap();
        assert!(refused.ledgered().is_empty() && !venue.knows("b"));
        assert!(venue.poll(104).unwrap().is_empty(), "not due yet");
        venue.on_tick("EURUSD", quote(106, 1.2, 1.3), ());
        let filled = venue.poll(200).unwrap();
        let (Event::OrderFilled(fill), Event::Fill(record)) = (&filled[0], &filled[1]) else {
            panic!("a fill: {filled:?}")
        };
        assert_eq!(
            (fill.fill_price, fill.header.event_at_ms),
            (1.1, 200),
            "the quote in effect at the due time, 105"
        );
        assert_eq!(
            (record.broker_deal_id.as_str(), record.fill_id.as_str()),
            ("paper-2-0", fill_id_for("a", 0).as_str())
        );
        assert!(
            venue.cancel("a", "late", 201).unwrap().is_none(),
            "filled: nothing to cancel"
        );
        venue.submit(&intent("c", Side::Sell), 300, None).unwrap();
        assert!(
            matches!(venue.cancel("c", "halt", 301).unwrap(), Some(Event::OrderCanceled(c)) if c.reason == "halt")
        );
        assert!(
            venue.poll(10_000).unwrap().is_empty(),
            "a canceled order never fills"
        );
    }

    #[test]
    fn a_forgetting_venue_lets_go_of_an_ended_order_but_still_knows_its_id() {
        let mut venue: Venue<OrderSubmitted, BrokerFill, ()> = venue(100, 0.0).forgetting_ended();
        venue.on_tick("EURUSD", quote(0, 1.0, 1.1), ());
        for cid in ["a", "c"] {
            venue.submit(&intent(cid, Side::Buy), 5, None).unwrap();
        }
        venue.cancel("c", "halt", 6).unwrap();
        let cid = "p";
        venue.submitted(
            cid,
            7,
            "EURUSD",
            false,
            submission(&intent(cid, Side::Sell), 7),
        );
        venue.accepted(cid, "paper-p", 7).unwrap();
        let record = venue.next_fill(cid, "p-0".to_owned(), 0.5, 1.0, 8).unwrap();
        venue.filled(cid, 0.5, 1.0, false, record).unwrap();
        assert_eq!(venue.poll(200).unwrap().len(), 2, "a's fill");
        assert!(venue.order("a").is_none() && venue.order("c").is_none());
        assert_eq!(
            venue
                .order(cid)
                .map(|order| (order.status, order.fills.len())),
            Some((Status::PartiallyFilled, 1)),
            "a partly filled order is kept"
        );
        assert!(matches!(
            venue.submit(&intent("a", Side::Buy), 300, None).unwrap(),
            Submit::Repeat(_)
        ));
        assert!(matches!(
            venue.submit(&intent("c", Side::Buy), 300, None).unwrap(),
            Submit::Repeat(_)
        ));
        assert!(venue.cancel("a", "late", 301).unwrap().is_none());
        assert_eq!(venue.received, 3, "no repeat received again");
        assert_eq!(
            venue.positions().collect::<Vec<_>>(),
            [("EURUSD", d("-0.4"))]
        );
    }
}
