//! A fill group's `Fill` records carrying their booking, before the group is journaled: each
//! `OrderFilled` booked in order on a copy of its symbol's book (`engine_state::book_fill`, exactly as
//! the state will book it), each `Fill` record given that execution's figures (`rounding::fill_figures`,
//! its realised P&L converted to the account currency along the route at the latest mids, `rates.rs`);
//! a fill booked before keeps its recorded figures. A symbol's only fill of the group is offered back
//! (`Offer`): the state then takes the booked copy instead of booking that fill twice.

use crate::maps::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::engine_state::{book_fill, EngineState};
use crate::events::{Event, OrderFilled};
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
    amount.to_dec().map_err(|_| Unbooked::Overflow)
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
                book: previews.remove(symbol).unwrap_or_default(),
                booking: bookings[only.fill_id.as_str()].clone(),
            });
        }
    }
    let mids = sorted_mids(&state.quotes);
    // Each event's new figures (a `Fill` record's), worked out first, then written in place.
    let mut figures_of = Vec::with_capacity(events.len());
    for event in &events {
        let Event::Fill(fill) = event else {
            figures_of.push(None);
            continue;
        };
        let booking = match bookings.get(fill.fill_id.as_str()) {
            Some(booking) => Some(booking.clone()),
            None => earlier(&fill.fill_id),
        };
        let (Some(booking), Some(spec)) = (booking, limits.instruments.get(&fill.symbol)) else {
            figures_of.push(None);
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
        figures_of.push(Some((
            booking,
            dec(&figures.entry_value_after)?,
            dec(&figures.realized_quote)?,
            account,
        )));
    }
    let mut events = events;
    for (event, figures) in events.iter_mut().zip(figures_of) {
        let (Event::Fill(fill), Some((booking, entry_value_after, realized_quote, account))) =
            (event, figures)
        else {
            continue;
        };
        fill.position_before_lots = Some(booking.position_before);
        fill.position_after_lots = Some(booking.position_after);
        fill.entry_value_after = Some(entry_value_after);
        fill.realized_pnl_quote = Some(realized_quote);
        fill.realized_pnl_account = Some(account);
        fill.round_trip_id = Some(booking.round_trip_id);
        fill.opens_round_trip_id = Some(booking.opens_round_trip_id);
    }
    Ok((events, offers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_state::Order;
    use crate::events::{Fill, OrderHeader, Side};
    use crate::fixtures;
    use crate::gate::Quote;
    use crate::lifecycle::Status;

    fn state_with(orders: &[(&str, &str, &str)]) -> EngineState {
        let mut state = EngineState::new();
        for &(cid, symbol, side) in orders {
            state
                .submitted(Order {
                    client_order_id: cid.into(),
                    signal_id: format!("s-{cid}").into(),
                    symbol: symbol.into(),
                    side: side.into(),
                    quantity_lots: 1.0,
                    model_id: "m".into(),
                    model_version: 1,
                    created_at_ms: 0,
                    status: Status::Submitted,
                    filled_lots: 0.0,
                    broker_order_id: "".into(),
                    fill_ids: Vec::new(),
                })
                .unwrap();
        }
        state
    }

    fn fill_of(cid: &str, symbol: &str, fill_id: &str, price: f64) -> [Event; 2] {
        let header = OrderHeader {
            client_order_id: cid.into(),
            signal_id: format!("s-{cid}"),
            event_at_ms: 1,
            ..fixtures::header(0, symbol)
        };
        fixtures::filled(header, Side::Buy, 1.0, price, fill_id)
    }

    fn record(event: &Event) -> &Fill {
        match event {
            Event::Fill(fill) => fill,
            other => panic!("not a Fill record: {other:?}"),
        }
    }

    #[test]
    fn a_round_trip_in_one_group_is_booked_in_order_and_converted_at_the_latest_mid() {
        let mut state = state_with(&[("c1", "USDJPY", "buy"), ("c2", "USDJPY", "sell")]);
        let quote = Quote {
            time_ms: 1,
            bid: 124.99,
            ask: 125.01,
        };
        state.observe_tick("USDJPY", quote, 1_000);
        let group: Vec<Event> = fill_of("c1", "USDJPY", "f1", 150.0)
            .into_iter()
            .chain(fill_of("c2", "USDJPY", "f2", 149.5))
            .collect();
        let (out, offers) = booked(&state, &fixtures::limits(), group, &|_| None).unwrap();
        assert!(
            offers.is_empty(),
            "two fills of a symbol: none offered ahead"
        );
        let (opening, closing) = (record(&out[1]), record(&out[3]));
        assert_eq!(opening.position_after_lots.unwrap().to_string(), "1.0");
        assert_eq!(opening.round_trip_id.as_deref(), Some("f1"));
        assert_eq!(closing.position_after_lots.unwrap().to_string(), "0");
        assert_eq!(
            closing.realized_pnl_quote.unwrap().to_string(),
            "-50000.000"
        );
        // JPY -> USD divides by the USDJPY mid (125.0): Python's Decimal gives -400.00.
        assert_eq!(
            closing.realized_pnl_account.unwrap().unwrap().to_string(),
            "-400.00"
        );
        assert!(
            !state.books.contains_key("USDJPY"),
            "the state's own book untouched"
        );
    }

    #[test]
    fn a_symbols_only_fill_is_offered_ahead_a_zero_pnl_needs_no_rate_and_a_later_record_keeps_its_booking(
    ) {
        let state = state_with(&[("c1", "USDJPY", "sell")]);
        let group = fill_of("c1", "USDJPY", "f1", 150.0).to_vec();
        let (out, offers) = booked(&state, &fixtures::limits(), group, &|_| None).unwrap();
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].book.lots.to_string(), "-1.0");
        let opening = record(&out[1]);
        assert_eq!(opening.realized_pnl_quote.unwrap().to_string(), "0.0");
        assert_eq!(opening.realized_pnl_account, Some(Some(Dec::ZERO)));
        let (later, _) = booked(
            &state,
            &fixtures::limits(),
            vec![out[1].clone()],
            &|fill_id| (fill_id == "f1").then(|| offers[0].booking.clone()),
        )
        .unwrap();
        assert_eq!(
            record(&later[0]).position_after_lots,
            opening.position_after_lots
        );
    }
}
