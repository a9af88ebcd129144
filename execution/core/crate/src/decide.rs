//! The decision on a signal (no Python): a signal decided before yields nothing; one from before
//! the decisions kept, of another timeframe than its symbol's driver, or whose position is already
//! at its target is denied; the rest is sized and goes through the gate, which passes it as an
//! order intent or denies it, with the breaker a denial trips as a risk event.
//!
//! It reads the engine's state and builds `events.rs` values; it changes nothing (the state's one
//! writer applies what is journaled).

use crate::engine_state::{EngineState, RETIRE_MARGIN_MS};
use crate::events::write_str;
use crate::events::{
    Event, OrderDenied, OrderHeader, OrderIntent, OrderSubmitted, OrderType, RiskEvent, Severity,
    Side, Signal, TradingState,
};
use crate::gate::{self, Answers, DayLoss, Halts, Limits, Proposed};
use crate::ids::{client_order_id_for, stable_id};
use crate::money::{Dec, Overflow};
use crate::rounding::Wide;
use crate::sizing::{direction_sign, Policy};

/// Risk event kinds that change state (the rest only inform).
pub const TRADING_STATE: &str = "trading_state";
pub const SYMBOL_HALTED: &str = "symbol_halted";
pub const SYMBOL_RESUMED: &str = "symbol_resumed";
/// An operator's flatten (of one symbol, or of all): it cancels the working orders it covers.
pub const FLATTEN: &str = "flatten";

/// What the engine decided about one signal (`replay.rs`'s, which the replay loop reads).
pub use crate::replay::Decision;

/// Builds the engine's risk events, each with a stable id (instance, kind, symbol, time, sequence).
#[derive(Clone, Debug, Default)]
pub struct RiskEvents {
    pub instance_id: String,
    /// The next event's sequence: ids only need to differ within a run.
    pub sequence: i64,
}

impl RiskEvents {
    /// One risk event, the next in sequence.
    #[allow(clippy::too_many_arguments)]
    pub fn risk(
        &mut self,
        kind: &str,
        severity: Severity,
        detail: String,
        now_ms: i64,
        trading_state: TradingState,
        symbol: &str,
        check: &str,
    ) -> RiskEvent {
        let sequence = self.sequence;
        self.sequence += 1;
        let (at, number) = (now_ms.to_string(), sequence.to_string());
        RiskEvent {
            risk_event_id: stable_id(&["risk", &self.instance_id, kind, symbol, &at, &number]),
            kind: kind.to_owned(),
            severity,
            trading_state,
            detail,
            occurred_at_ms: now_ms,
            symbol: symbol.to_owned(),
            check: check.to_owned(),
        }
    }
}

/// The state's trading state as the contract's value (ACTIVE for a text it does not allow).
pub fn trading_state_of(state: &EngineState) -> TradingState {
    TradingState::from_name(&state.trading_state).unwrap_or(TradingState::Active)
}

/// The event that records `signal` as denied by `check`.
pub fn denied(signal: &Signal, now_ms: i64, check: &str, reason: String) -> Event {
    Event::OrderDenied(OrderDenied {
        header: OrderHeader {
            client_order_id: client_order_id_for(&signal.signal_id),
            signal_id: signal.signal_id.clone(),
            symbol: signal.symbol.clone(),
            model_id: signal.model_id.clone(),
            model_version: signal.model_version,
            event_at_ms: now_ms,
        },
        reason,
        check: check.to_owned(),
    })
}

fn denial_only(event: Event) -> Decision {
    Decision {
        events: vec![event],
        ..Decision::default()
    }
}

/// Size the signal and run the gate; a signal decided before yields nothing.
///
/// `answers.move_pct`: the signal's symbol's move in its flash-crash window.
pub fn on_signal(
    state: &EngineState,
    sizing: &Policy,
    limits: &Limits,
    answers: &mut Answers<'_>,
    risk: &mut RiskEvents,
    signal: &Signal,
    now_ms: i64,
) -> Result<Decision, Overflow> {
    if state.is_decided(&signal.signal_id) {
        return Ok(Decision {
            is_duplicate: true,
            ..Decision::default()
        });
    }
    let retired = state.retired_before_ms;
    if retired != 0 && signal.created_at_ms < retired + RETIRE_MARGIN_MS {
        // Decisions this old were let go: it may have had its order already, so it gets none.
        let reason = format!(
            "signal created at {}, before the decisions kept ({retired})",
            signal.created_at_ms
        );
        return Ok(denial_only(denied(signal, now_ms, "signal_ttl", reason)));
    }
    let symbol = signal.symbol.as_str();
    let driver = limits.driving_timeframe(symbol);
    if let Some(wrong) = gate::signal_timeframe(symbol, &signal.timeframe, driver) {
        return Ok(denial_only(denied(
            signal,
            now_ms,
            wrong.check,
            wrong.reason,
        )));
    }
    let sign = direction_sign(signal.direction.name()).unwrap_or(0);
    let target = sizing.target_lots(sign, signal.strength);
    let current = Wide::from_dec(state.exposure_lots(symbol)?).to_f64();
    let Some((is_buy, lots)) = sizing.order_for(target, current) else {
        let reason = "position already at target".to_owned();
        return Ok(denial_only(denied(signal, now_ms, "sizing", reason)));
    };
    let order = Proposed {
        symbol,
        is_buy,
        quantity_lots: lots,
        limit_price: None,
        created_at_ms: signal.created_at_ms,
    };
    let Some(denial) = gate::first_denial(&order, &state.view(), limits, answers, now_ms)? else {
        return Ok(Decision {
            intent: Some(OrderIntent {
                client_order_id: client_order_id_for(&signal.signal_id),
                signal_id: signal.signal_id.clone(),
                symbol: signal.symbol.clone(),
                side: if is_buy { Side::Buy } else { Side::Sell },
                quantity_lots: lots,
                order_type: OrderType::Market,
                model_id: signal.model_id.clone(),
                model_version: signal.model_version,
                created_at_ms: now_ms,
                limit_price: None,
            }),
            ..Decision::default()
        });
    };
    let mut events = vec![denied(signal, now_ms, denial.check, denial.reason.clone())];
    let current_state = trading_state_of(state);
    match denial.halts {
        Halts::Trading if current_state != TradingState::Halted => {
            let halt = if denial.check == "daily_loss" {
                TradingState::from_name(&limits.daily_loss_action).unwrap_or(TradingState::Halted)
            } else {
                TradingState::Halted
            };
            if halt != current_state {
                let event = risk.risk(
                    TRADING_STATE,
                    Severity::Critical,
                    denial.reason,
                    now_ms,
                    halt,
                    "",
                    denial.check,
                );
                events.push(Event::RiskEvent(event));
            }
        }
        Halts::Symbol if !state.halted_symbols.contains(symbol) => {
            let event = risk.risk(
                SYMBOL_HALTED,
                Severity::Critical,
                denial.reason,
                now_ms,
                current_state,
                symbol,
                denial.check,
            );
            events.push(Event::RiskEvent(event));
        }
        _ => {}
    }
    Ok(Decision {
        events,
        ..Decision::default()
    })
}

/// The event that records `intent` as sent to `venue` (journaled before the broker call).
pub fn submission(intent: &OrderIntent, venue: &str, now_ms: i64) -> OrderSubmitted {
    OrderSubmitted {
        header: OrderHeader {
            client_order_id: intent.client_order_id.clone(),
            signal_id: intent.signal_id.clone(),
            symbol: intent.symbol.clone(),
            model_id: intent.model_id.clone(),
            model_version: intent.model_version,
            event_at_ms: now_ms,
        },
        side: intent.side,
        quantity_lots: intent.quantity_lots,
        order_type: intent.order_type,
        limit_price: intent.limit_price,
        venue: Some(venue.to_owned()),
    }
}

/// Reduce-only market orders (at most `max_order_lots` each) that close `symbol`'s position, and
/// the denials of those the operator checks refused (price, market hours, collar, rate; not the
/// trading state: an operator's flatten and a protective stop work while HALTED). `signal_for`
/// names the decision each part traces to (None: stop, the caller has the reason).
pub fn closing_orders(
    state: &EngineState,
    limits: &Limits,
    answers: &mut Answers<'_>,
    symbol: &str,
    signal_for: &mut dyn FnMut(i64) -> Option<Signal>,
    now_ms: i64,
) -> Result<(Vec<OrderIntent>, Vec<Event>), Overflow> {
    let position = state.positions.get(symbol).copied().unwrap_or(Dec::ZERO);
    let mut remaining = position.abs();
    let is_buy = !position.is_positive();
    let largest = Dec::from_float(limits.max_order_lots).map_err(|_| Overflow)?;
    let view = state.view();
    let (mut intents, mut denials) = (Vec::new(), Vec::new());
    let mut part = 0;
    while remaining.is_positive() {
        let lots = remaining.min_first(largest);
        let Some(signal) = signal_for(part) else {
            break;
        };
        let quantity_lots = Wide::from_dec(lots).to_f64();
        let order = Proposed {
            symbol,
            is_buy,
            quantity_lots,
            limit_price: None,
            created_at_ms: signal.created_at_ms,
        };
        match gate::operator_denial(&order, &view, limits, answers, now_ms)? {
            Some(denial) => denials.push(denied(&signal, now_ms, denial.check, denial.reason)),
            None => intents.push(OrderIntent {
                client_order_id: client_order_id_for(&signal.signal_id),
                signal_id: signal.signal_id.clone(),
                symbol: symbol.to_owned(),
                side: if is_buy { Side::Buy } else { Side::Sell },
                quantity_lots,
                order_type: OrderType::Market,
                model_id: signal.model_id.clone(),
                model_version: 0,
                created_at_ms: now_ms,
                limit_price: None,
            }),
        }
        remaining = remaining.checked_sub(lots)?;
        part += 1;
    }
    Ok((intents, denials))
}

/// The kind of the risk event that marks each position's unrealised P&L at a trading day's start.
pub const DAY_ROLLOVER: &str = "day_rollover";

/// Unrealised P&L of every open position at its latest mid, in its quote currency (exact), by symbol.
pub fn unrealized_now(
    state: &EngineState,
    limits: &Limits,
) -> Result<Vec<(String, Dec)>, Overflow> {
    let mut amounts = Vec::new();
    for (symbol, book) in &state.books {
        if book.lots.is_zero() {
            continue;
        }
        let (Some(quote), Some(spec)) = (state.quotes.get(symbol), limits.instruments.get(symbol))
        else {
            continue;
        };
        let mid = Dec::from_float(quote.mid()).map_err(|_| Overflow)?;
        let contract = Dec::from_float(spec.contract_size).map_err(|_| Overflow)?;
        amounts.push((symbol.clone(), book.unrealized(mid)?.checked_mul(contract)?));
    }
    amounts.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(amounts)
}

/// The day rollover's detail: `json.dumps({"trading_day": day, "marks": {symbol: str(amount)}})`.
pub fn rollover_detail(day: &str, marks: &[(String, Dec)]) -> String {
    let mut out = Vec::with_capacity(64 + marks.len() * 32);
    out.extend_from_slice(b"{\"trading_day\": ");
    write_str(&mut out, day);
    out.extend_from_slice(b", \"marks\": {");
    for (at, (symbol, amount)) in marks.iter().enumerate() {
        if at > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(&mut out, symbol);
        out.extend_from_slice(b": ");
        write_str(&mut out, &amount.to_string());
    }
    out.extend_from_slice(b"}}");
    String::from_utf8(out).unwrap_or_default()
}

/// The breakers on a tick of `symbol` (already observed): the day's start marked, the flash-crash
/// halt, and the loss breaker once the day is marked. `answers.move_pct`: `symbol`'s move.
pub fn on_tick(
    state: &EngineState,
    limits: &Limits,
    answers: &mut Answers<'_>,
    risk: &mut RiskEvents,
    symbol: &str,
    now_ms: i64,
) -> Result<Vec<Event>, Overflow> {
    let mut events = Vec::new();
    let current = trading_state_of(state);
    let day = answers.market.trading_day(now_ms);
    if day != state.marked_day {
        let detail = rollover_detail(&day, &unrealized_now(state, limits)?);
        let event = risk.risk(
            DAY_ROLLOVER,
            Severity::Info,
            detail,
            now_ms,
            current,
            "",
            "daily_loss",
        );
        events.push(Event::RiskEvent(event));
    }
    let move_pct = answers.move_pct;
    if move_pct > limits.flash_crash_pct && !state.halted_symbols.contains(symbol) {
        let detail = gate::flash_crash_words(symbol, move_pct, limits.flash_crash_window_ms);
        let event = risk.risk(
            SYMBOL_HALTED,
            Severity::Critical,
            detail,
            now_ms,
            current,
            symbol,
            "flash_crash",
        );
        events.push(Event::RiskEvent(event));
    }
    if day == state.marked_day {
        events.extend(loss_breaker(state, limits, answers.day, risk, now_ms));
    }
    Ok(events)
}

/// Move trading to the limits' `daily_loss_action` when the day's loss reaches the limit (only
/// from ACTIVE); `day` values the day at `now_ms`.
pub fn loss_breaker(
    state: &EngineState,
    limits: &Limits,
    day: &mut dyn DayLoss,
    risk: &mut RiskEvents,
    now_ms: i64,
) -> Option<Event> {
    if trading_state_of(state) != TradingState::Active {
        return None;
    }
    let floor = limits.loss_floor();
    if day.is_above(&floor) {
        return None; // short of the limit (most ticks and fills: decided without the exact sums)
    }
    let pnl = day.daily_pnl()?;
    if gate::exceeds(&pnl, &floor) {
        return None;
    }
    let detail = format!(
        "daily P&L {} {} breaches -{}",
        gate::cents(&pnl),
        limits.account_currency,
        limits.daily_loss_limit
    );
    let action = TradingState::from_name(&limits.daily_loss_action).unwrap_or(TradingState::Halted);
    let event = risk.risk(
        TRADING_STATE,
        Severity::Critical,
        detail,
        now_ms,
        action,
        "",
        "daily_loss",
    );
    Some(Event::RiskEvent(event))
}

/// The breaker trips an applied event leads to: a fill's loss (`day` values the day just after
/// it), a broker reject in a row too many.
pub fn follow_ups(
    state: &EngineState,
    limits: &Limits,
    day: &mut dyn DayLoss,
    risk: &mut RiskEvents,
    event: &Event,
) -> Option<Event> {
    match event {
        Event::OrderFilled(fill) => loss_breaker(state, limits, day, risk, fill.header.event_at_ms),
        Event::OrderRejected(rejected)
            if state.consecutive_rejects >= limits.max_consecutive_rejects
                && trading_state_of(state) != TradingState::Halted =>
        {
            let detail = format!(
                "{} broker rejects in a row (last: {})",
                state.consecutive_rejects, rejected.reason
            );
            let event = risk.risk(
                TRADING_STATE,
                Severity::Critical,
                detail,
                rejected.header.event_at_ms,
                TradingState::Halted,
                "",
                "consecutive_rejects",
            );
            Some(Event::RiskEvent(event))
        }
        _ => None,
    }
}
