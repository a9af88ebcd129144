//! What the crate's tests build their cases from, one copy each: an order's header, an instrument,
//! a set of limits and a fill as a broker reports it.

use crate::broker::{fill_events, BrokerFill};
use crate::events::{Event, OrderHeader, OrderSubmitted, OrderType, Side};
use crate::gate::{Limits, Spec};
use crate::maps::{HashMap, HashMapExt, HashSet, HashSetExt};
use crate::rounding::w;

/// Order `n`'s header on `symbol`: `tw-{n}` of signal `s{n}`, model `m` version 1, at 1,000 ms.
pub(crate) fn header(n: usize, symbol: &str) -> OrderHeader {
    OrderHeader {
        client_order_id: format!("tw-{n}"),
        signal_id: format!("s{n}"),
        symbol: symbol.to_owned(),
        model_id: "m".to_owned(),
        model_version: 1,
        event_at_ms: 1_000,
    }
}

/// A currency pair of 100,000 units a lot.
pub(crate) fn spec(base: &str, quote: &str) -> Spec {
    Spec {
        contract_size: 100_000.0,
        base: base.to_owned(),
        quote: quote.to_owned(),
    }
}

/// Limits of a USD account trading EURUSD and USDJPY (every symbol allowed), a loss limit of 1,000.
pub(crate) fn limits() -> Limits {
    Limits {
        allowed_symbols: HashSet::new(),
        signal_ttl_ms: 5_000,
        max_order_lots: 10.0,
        max_position_lots: 10.0,
        max_gross_exposure: w("1e9"),
        instruments: HashMap::from_iter([
            ("EURUSD".to_owned(), spec("EUR", "USD")),
            ("USDJPY".to_owned(), spec("USD", "JPY")),
        ]),
        account_currency: "USD".to_owned(),
        max_tick_age_ms: 60_000,
        price_collar_bps: 50.0,
        max_orders_per_second: 5,
        daily_loss_limit: w("1000"),
        daily_loss_action: "REDUCING".to_owned(),
        max_consecutive_rejects: 3,
        flash_crash_pct: 3.0,
        flash_crash_window_ms: 5_000,
        signal_timeframe: "1m".to_owned(),
        signal_timeframes: HashMap::new(),
    }
}

/// A market order of `lots` on `header` (its submission), filled whole at `price` as fill `fill_id`: the
/// `OrderFilled` and its `Fill` record as a broker reports them (`broker::fill_events`), not yet booked.
pub(crate) fn filled(
    header: OrderHeader,
    side: Side,
    lots: f64,
    price: f64,
    fill_id: &str,
) -> [Event; 2] {
    let filled_at_ms = header.event_at_ms;
    let submitted = OrderSubmitted {
        header,
        side,
        quantity_lots: lots,
        order_type: OrderType::Market,
        limit_price: None,
        venue: None,
    };
    let fill = BrokerFill {
        fill_id: fill_id.to_owned(),
        price,
        lots,
        filled_at_ms,
        deal_id: String::new(),
        commission: 0.0,
    };
    fill_events(&submitted, &fill, lots, true)
}
