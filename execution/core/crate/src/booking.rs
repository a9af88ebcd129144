//! A fill group's `Fill` records carrying their booking, before the group is journaled: each
//! `OrderFilled` booked in order on a copy of its symbol's book (`engine_state::book_fill`, exactly as
//! the state will book it), each `Fill` record given that execution's figures (`rounding::fill_figures`,
//! its realised P&L converted to the account currency along the route at the latest mids, `rates.rs`);
//! a fill booked before keeps its recorded figures. A symbol's only fill of the group is offered back
//! (`Offer`): the state then takes the booked copy instead of booking that fill twice.

use std::collections::{HashMap, HashSet};

use crate::engine_state::{book_fill, EngineState};
use crate::events::{Event, Fill, OrderFilled};
use crate::gate::Limits;
use crate::money::Dec;
use crate::positions::{Book, Booking};
use crate::rates::{route, sorted_mids};
use crate::rounding::{fill_figures, Wide};

/// A symbol's only fill of a group, booked ahead: the fill, the copy of its book after it, its booking.
#[derive(Clone, Debug)]
pub struct Offer {
    pub fill: OrderFilled,
    pub book: Book,
    pub booking: Booking,
}

/// Why a group could not be booked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unbooked {
    /// An amount beyond the exact range.
    Overflow,
    /// A fill's lots or price, or a contract size, that is not a finite number; a rate that is not.
    NotFinite(String),
}

impl std::fmt::Display for Unbooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unbooked::Overflow => write!(f, "amount beyond the exact range"),
            Unbooked::NotFinite(what) => write!(f, "not a finite number: {what}"),
        }
    }
}

fn exact(value: f64) -> Result<Dec, Unbooked> {
    Dec::from_float(value).map_err(|bad| Unbooked::NotFinite(bad.0))
}

fn dec(amount: &Wide) -> Result<Dec, Unbooked> {
    Dec::parse(&amount.to_string()).map_err(|_| Unbooked::Overflow)
}

/// `events` with each `Fill` record carrying what its execution does to the position, and the
/// fills offered ahead. `earlier`: the booking of a fill applied before this group (by fill id).
/// A group without a `Fill` record is returned as it is.
pub fn booked(
    state: &EngineState,
    limits: &Limits,
    events: Vec<Event>,
    earlier: &dyn Fn(&str) -> Option<Booking>,
) -> Result<(Vec<Event>, Vec<Offer>), Unbooked> {
    if !events.iter().any(|event| matches!(event, Event::Fill(_))) {
        return Ok((events, Vec::new()));
    }
    let mut previews: HashMap<&str, Book> = HashMap::new();
    let mut bookings: HashMap<&str, Booking> = HashMap::new();
    // symbol -> the fills booked on its preview, in the order first booked
    let mut fills_of: Vec<(&str, Vec<&OrderFilled>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for event in &events {
        let Event::OrderFilled(filled) = event else {
            continue;
        };
        let Some(order) = state.orders.get(&filled.header.client_order_id) else {
            continue;
        };
        if order.fill_ids.contains(&filled.fill_id) || !seen.insert(&filled.fill_id) {
            continue;
        }
        let symbol: &str = &order.symbol;
        let book = previews
            .entry(symbol)
            .or_insert_with(|| state.books.get(symbol).map_or_else(Book::new, Book::copy));
        let booking = book_fill(
            book,
            order,
            exact(filled.fill_lots)?,
            exact(filled.fill_price)?,
            &filled.fill_id,
        )
        .map_err(|_| Unbooked::Overflow)?;
        bookings.insert(&filled.fill_id, booking);
        match fills_of.iter_mut().find(|(known, _)| *known == symbol) {
            Some((_, fills)) => fills.push(filled),
            None => fills_of.push((symbol, vec![filled])),
        }
    }
    let mut offers = Vec::new();
    for (symbol, fills) in &fills_of {
        if let [only] = fills.as_slice() {
            // the preview is then the book just after that fill
            offers.push(Offer {
                fill: (*only).clone(),
                book: previews[symbol].clone(),
                booking: bookings[only.fill_id.as_str()].clone(),
            });
        }
    }
    let mids = sorted_mids(&state.quotes);
    let mut out = Vec::with_capacity(events.len());
    for event in &events {
        let Event::Fill(fill) = event else {
            out.push(event.clone());
            continue;
        };
        let booking = match bookings.get(fill.fill_id.as_str()) {
            Some(booking) => Some(booking.clone()),
            None => earlier(&fill.fill_id),
        };
        let (Some(booking), Some(spec)) = (booking, limits.instruments.get(&fill.symbol)) else {
            out.push(event.clone());
            continue;
        };
        let found = route(
            &spec.quote,
            &limits.account_currency,
            &limits.instruments,
            &mids,
        );
        let figures = fill_figures(
            &Wide::from_dec(booking.realized),
            &Wide::from_dec(booking.entry_value_after),
            spec.contract_size,
            found.as_deref(),
        )
        .map_err(|bad| Unbooked::NotFinite(bad.to_string()))?;
        let account = match &figures.realized_account {
            Some(amount) => Some(dec(amount)?),
            None => None,
        };
        out.push(Event::Fill(Box::new(Fill {
            position_before_lots: Some(booking.position_before),
            position_after_lots: Some(booking.position_after),
            entry_value_after: Some(dec(&figures.entry_value_after)?),
            realized_pnl_quote: Some(dec(&figures.realized_quote)?),
            realized_pnl_account: Some(account),
            round_trip_id: Some(booking.round_trip_id),
            opens_round_trip_id: Some(booking.opens_round_trip_id),
            ..(**fill).clone()
        })));
    }
    Ok((out, offers))
}
