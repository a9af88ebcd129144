//! The order events every broker reports, built from an order's identity, and the broker's fill record.
//!
//! The same events `execution/core/broker.py` builds in Python (`accepted`, `rejected`, `canceled`,
//! `fill_events`, `fill_id_for`), as `events.rs` values: the paper venue (`paper.rs`) answers with
//! them, and a replay kept in the core journals them with no Python per order.

use crate::events::{
    Event, Fill, OrderAccepted, OrderCanceled, OrderFilled, OrderHeader, OrderIntent,
    OrderRejected, OrderSubmitted, Side,
};
use crate::ids::{joined_id, IdLength};

/// An order canceled with this reason prefix moves to EXPIRED (the contracts have no separate event).
pub const EXPIRED_PREFIX: &str = "expired: ";

/// One execution as the broker records it (`execution.core.broker.BrokerFill`).
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerFill {
    pub fill_id: String,
    pub price: f64,
    pub lots: f64,
    pub filled_at_ms: i64,
    pub deal_id: String,
    pub commission: f64,
}

/// What ties an order event to its signal and model: an intent's or a submission's first fields.
pub trait Identity {
    fn header_at(&self, at_ms: i64) -> OrderHeader;
    fn side(&self) -> Side;
}

impl Identity for OrderIntent {
    fn header_at(&self, at_ms: i64) -> OrderHeader {
        OrderHeader {
            client_order_id: self.client_order_id.clone(),
            signal_id: self.signal_id.clone(),
            symbol: self.symbol.clone(),
            model_id: self.model_id.clone(),
            model_version: self.model_version,
            event_at_ms: at_ms,
        }
    }
    fn side(&self) -> Side {
        self.side
    }
}

impl Identity for OrderSubmitted {
    fn header_at(&self, at_ms: i64) -> OrderHeader {
        OrderHeader {
            event_at_ms: at_ms,
            ..self.header.clone()
        }
    }
    fn side(&self) -> Side {
        self.side
    }
}

/// The event of an order the broker took.
pub fn accepted(order: &impl Identity, broker_order_id: String, at_ms: i64) -> Event {
    Event::OrderAccepted(OrderAccepted {
        header: order.header_at(at_ms),
        broker_order_id,
    })
}

/// The event of an order the broker refused.
pub fn rejected(order: &impl Identity, reason: String, at_ms: i64) -> Event {
    Event::OrderRejected(OrderRejected {
        header: order.header_at(at_ms),
        reason,
        broker_code: None,
    })
}

/// The event of an order canceled.
pub fn canceled(order: &impl Identity, reason: String, at_ms: i64) -> Event {
    Event::OrderCanceled(OrderCanceled {
        header: order.header_at(at_ms),
        reason,
    })
}

/// The `OrderFilled` event and the `Fill` record of one execution (`filled_lots`: the order's total).
///
/// The record carries no booking: the engine books it before it is journaled (`Engine.booked`).
pub fn fill_events(
    order: &impl Identity,
    fill: &BrokerFill,
    filled_lots: f64,
    is_final: bool,
) -> [Event; 2] {
    let header = order.header_at(fill.filled_at_ms);
    let record = Fill {
        fill_id: fill.fill_id.clone(),
        client_order_id: header.client_order_id.clone(),
        signal_id: header.signal_id.clone(),
        symbol: header.symbol.clone(),
        side: order.side(),
        price: fill.price,
        quantity_lots: fill.lots,
        commission: fill.commission,
        filled_at_ms: fill.filled_at_ms,
        model_id: header.model_id.clone(),
        model_version: header.model_version,
        broker_deal_id: fill.deal_id.clone(),
        position_before_lots: None,
        position_after_lots: None,
        entry_value_after: None,
        realized_pnl_quote: None,
        realized_pnl_account: None,
        round_trip_id: None,
        opens_round_trip_id: None,
    };
    [
        Event::OrderFilled(OrderFilled {
            header,
            fill_id: fill.fill_id.clone(),
            fill_price: fill.price,
            fill_lots: fill.lots,
            cumulative_lots: filled_lots,
            is_final,
        }),
        Event::Fill(Box::new(record)),
    ]
}

/// The deterministic id of an order's `sequence`-th fill.
pub fn fill_id_for(client_order_id: &str, sequence: usize) -> String {
    joined_id(
        &format!("fill\x1f{client_order_id}\x1f{sequence}"),
        IdLength::Fill,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_id_is_python_s_blake2b_of_its_parts() {
        // hashlib.blake2b("fill\x1ftw-a\x1f0".encode(), digest_size=16).hexdigest()
        assert_eq!(fill_id_for("tw-a", 0), "62358e77aeb7c46b811010135fb7cf80");
        assert_eq!(fill_id_for("tw-é", 12), "c111f29aac89dc4b890810682a98c23b");
        // client_order_id_for("sig-1") without its "tw-" prefix
        assert_eq!(
            joined_id("order\x1fsig-1", IdLength::Order),
            "8536f6838e9656d24281bd53"
        );
    }
}
