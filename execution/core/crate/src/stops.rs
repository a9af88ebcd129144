//! Protective stops and operator commands (no Python): on a tick, close a position whose price
//! crossed its stop loss or take profit; an operator's halt, reduce, resume or flatten as the
//! events and orders it leads to.
//!
//! Both read the engine's state and build `events.rs` values; neither changes it (the state's one
//! writer applies what is journaled; the engine notes a denied protective close). An operator's
//! `set_limit` (the configuration's own validation) and `status` (the valuation's summary) are
//! the shell's to decide: [`on_control`] answers [`Answer::Shell`] for them.

use crate::maps::HashMap;

use crate::decide::{
    closing_orders, trading_state_of, RiskEvents, FLATTEN, SYMBOL_HALTED, SYMBOL_RESUMED,
    TRADING_STATE,
};
use crate::engine_state::{EngineState, RATE_WINDOW_MS};
use crate::events::{
    Command, ControlCommand, Direction, Event, OrderIntent, Severity, Signal, Tick, TradingState,
};
use crate::gate::{Answers, Limits};
use crate::money::{format_fixed, format_general, Dec, Overflow};
use crate::replay::{Control, Outcome};
use crate::rounding::Wide;

/// Python's `decimal` context precision, to which each step of the stop's arithmetic rounds.
const PRECISION: usize = 28;

/// Each symbol's stop distances in pips and its pip size (`RiskLimits.stop_pips` and the
/// instruments' `pip_size`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Levels {
    /// `(stop_loss_pips, take_profit_pips)` of a symbol without its own pair (0: none).
    pub default: (f64, f64),
    /// A symbol's own pair (`stop_pips_by_symbol`).
    pub by_symbol: HashMap<String, (f64, f64)>,
    /// Each instrument's pip size (a symbol without one has no stop).
    pub pip_sizes: HashMap<String, f64>,
}

impl Levels {
    /// `(stop_loss_pips, take_profit_pips)` of `symbol`: its own pair, else the default one.
    pub fn pips(&self, symbol: &str) -> (f64, f64) {
        self.by_symbol.get(symbol).copied().unwrap_or(self.default)
    }
}

/// The decision a protective close traces to (its id names the level, symbol, tick time and part).
pub fn protective_signal(kind: &str, tick: &Tick, part: i64) -> Signal {
    Signal {
        signal_id: format!(
            "{kind}-{}-{}-{}-{part}",
            tick.symbol, tick.time_ms, tick.seq
        ),
        symbol: tick.symbol.clone(),
        timeframe: "protective".to_owned(),
        bar_start_ms: tick.time_ms,
        direction: Direction::Flat,
        strength: 0.0,
        confidence: 1.0,
        model_id: format!("protective:{kind}"),
        model_version: 0,
        created_at_ms: tick.time_ms,
        members: Vec::new(),
    }
}

fn wide_of_float(x: f64) -> Result<Wide, Overflow> {
    Ok(Wide::from_dec(Dec::from_float(x).map_err(|_| Overflow)?))
}

fn quotient(a: &Wide, b: &Wide) -> Result<Wide, Overflow> {
    a.divide(b, PRECISION).map_err(|_| Overflow)
}

/// `a - b` as Python's context subtracts: exact, then rounded to 28 digits half even.
fn difference(a: &Wide, b: &Wide) -> Wide {
    a.add(&b.negated()).to_precision(PRECISION)
}

/// The stop's arithmetic, step for step as Python's `Decimal`s at 28 digits: the position's
/// average entry (`sum(lots x price) / position`) and how far the exit price moved from it in
/// pips, signed so that a gain is positive.
fn moved(
    state: &EngineState,
    symbol: &str,
    position: Dec,
    exit_price: &Wide,
    pip: f64,
) -> Result<Option<(Wide, Wide)>, Overflow> {
    let Some(book) = state.books.get(symbol) else {
        return Ok(None);
    };
    let mut total = Wide::from_dec(Dec::ZERO);
    for (lots, price) in &book.entries {
        let cost = Wide::from_dec(*lots).multiply(&Wide::from_dec(*price), PRECISION);
        total = total.add(&cost).to_precision(PRECISION);
    }
    let entry = quotient(&total, &Wide::from_dec(position))?;
    let direction = Wide::new(position.is_negative(), vec![1], 0);
    let gained = difference(exit_price, &entry).multiply(&direction, PRECISION);
    Ok(Some((entry, quotient(&gained, &wide_of_float(pip)?)?)))
}

/// Whether `moved_pips` reached the stop loss `stop_loss_pips` below the entry (`<=`).
fn reached_stop_loss(moved_pips: &Wide, stop_loss_pips: &Wide) -> bool {
    let beyond = moved_pips.add(stop_loss_pips); // moved - (-stop)
    beyond.is_zero() || beyond.negative
}

/// Whether `moved_pips` reached the take profit `take_profit_pips` above the entry (`>=`).
fn reached_take_profit(moved_pips: &Wide, take_profit_pips: &Wide) -> bool {
    let beyond = moved_pips.add(&take_profit_pips.negated());
    beyond.is_zero() || !beyond.negative
}

/// A level a tick crossed: which, the position, its average entry, the exit price and the move.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossing {
    /// `stop loss` or `take profit`.
    pub which: &'static str,
    position: Dec,
    entry: Wide,
    exit_price: Wide,
    moved_pips: Wide,
}

/// The level `tick` crossed on its symbol's position, if any: its bid (long) or ask (short) at or
/// beyond the stop loss or take profit, the symbol's pips ([`Levels::pips`]) x its pip size from the
/// position's average entry, derived from the journaled fills (a restart keeps them). None while an
/// order on the symbol is still working (the close in flight, or another).
pub fn crossing(
    state: &EngineState,
    levels: &Levels,
    tick: &Tick,
) -> Result<Option<Crossing>, Overflow> {
    let symbol = tick.symbol.as_str();
    let (stop_loss_pips, take_profit_pips) = levels.pips(symbol);
    if stop_loss_pips == 0.0 && take_profit_pips == 0.0 {
        return Ok(None); // no stop set (the default): nothing else to read
    }
    let Some(&pip) = levels.pip_sizes.get(symbol) else {
        return Ok(None);
    };
    let position = state.positions.get(symbol).copied().unwrap_or(Dec::ZERO);
    if position.is_zero()
        || state
            .pending
            .get(symbol)
            .is_some_and(|lots| !lots.is_zero())
    {
        return Ok(None);
    }
    let exit_price = wide_of_float(if position.is_positive() {
        tick.bid
    } else {
        tick.ask
    })?;
    let Some((entry, moved_pips)) = moved(state, symbol, position, &exit_price, pip)? else {
        return Ok(None);
    };
    let which = if stop_loss_pips != 0.0
        && reached_stop_loss(&moved_pips, &wide_of_float(stop_loss_pips)?)
    {
        "stop loss"
    } else if take_profit_pips != 0.0
        && reached_take_profit(&moved_pips, &wide_of_float(take_profit_pips)?)
    {
        "take profit"
    } else {
        return Ok(None);
    };
    Ok(Some(Crossing {
        which,
        position,
        entry,
        exit_price,
        moved_pips,
    }))
}

/// The orders that close the position `crossed` names, through the operator checks
/// ([`closing_orders`]), and the report: a warning naming the level, the position, its entry
/// (`.6g`), the exit price, the move (`.1f` pips) and the orders. Nothing within a second of a
/// denied close (no price, collar, rate: retried once a second, not per tick; the caller notes
/// the denial).
#[allow(clippy::too_many_arguments)]
pub fn close(
    state: &EngineState,
    limits: &Limits,
    answers: &mut Answers<'_>,
    risk: &mut RiskEvents,
    tick: &Tick,
    crossed: &Crossing,
    now_ms: i64,
) -> Result<Outcome, Overflow> {
    let symbol = tick.symbol.as_str();
    let denied_at = state
        .stop_denied_at_ms
        .get(symbol)
        .copied()
        .unwrap_or(-RATE_WINDOW_MS);
    if now_ms - denied_at < RATE_WINDOW_MS {
        return Ok(Outcome::default());
    }
    let kind = if crossed.which == "stop loss" {
        "sl"
    } else {
        "tp"
    };
    let mut signal_for = |part: i64| Some(protective_signal(kind, tick, part));
    let (intents, denials) =
        closing_orders(state, limits, answers, symbol, &mut signal_for, now_ms)?;
    let entry = &crossed.entry;
    let moved_pips = &crossed.moved_pips;
    let detail = format!(
        "{} {symbol}: {} lots from {} at {} ({} pips); closing with {} reduce-only orders, {} denied",
        crossed.which,
        crossed.position,
        format_general(entry.negative, &entry.digits, entry.exponent, 6),
        crossed.exit_price,
        format_fixed(moved_pips.negative, &moved_pips.digits, moved_pips.exponent, 1),
        intents.len(),
        denials.len(),
    );
    let report = risk.risk(
        "protective_stop",
        Severity::Warning,
        detail,
        now_ms,
        trading_state_of(state),
        symbol,
        "protective_stop",
    );
    let mut events = vec![Event::RiskEvent(report)];
    events.extend(denials);
    Ok(Outcome { events, intents })
}

/// A protective stop on `tick`: [`crossing`], then [`close`] (`now_ms` asked only once a level is
/// crossed).
#[allow(clippy::too_many_arguments)]
pub fn protective_stop(
    state: &EngineState,
    limits: &Limits,
    levels: &Levels,
    answers: &mut Answers<'_>,
    risk: &mut RiskEvents,
    tick: &Tick,
    now_ms: &mut dyn FnMut() -> i64,
) -> Result<Outcome, Overflow> {
    match crossing(state, levels, tick)? {
        None => Ok(Outcome::default()),
        Some(crossed) => close(state, limits, answers, risk, tick, &crossed, now_ms()),
    }
}

/// The decision a flatten order traces to (its id names the command, symbol and part).
pub fn flatten_signal(command: &ControlCommand, symbol: &str, part: i64, now_ms: i64) -> Signal {
    Signal {
        signal_id: format!("flatten-{}-{symbol}-{part}", command.command_id),
        symbol: symbol.to_owned(),
        timeframe: "operator".to_owned(),
        bar_start_ms: now_ms,
        direction: Direction::Flat,
        strength: 0.0,
        confidence: 1.0,
        model_id: format!("operator:{}", command.issued_by),
        model_version: 0,
        created_at_ms: now_ms,
        members: Vec::new(),
    }
}

/// What [`on_control`] answers: the command decided, or, for `set_limit` and `status`, the words
/// naming who issued it, for the shell that decides them.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Decided(Control),
    Shell { who: String },
}

/// An operator's command as events to record and (a flatten) orders to send; a command applied
/// before: a duplicate. `set_limit` and `status` are the shell's ([`Answer::Shell`]).
///
/// Each event's detail ends with who issued it, why (or `no reason given`), the command's id and
/// how long after its issue it was decided. A halt (of all, or of one symbol) is critical, a reduce
/// a warning; a resume of all resumes each halted symbol, then trading.
pub fn on_control(
    state: &EngineState,
    limits: &Limits,
    answers: &mut Answers<'_>,
    risk: &mut RiskEvents,
    command: &ControlCommand,
    now_ms: i64,
) -> Result<Answer, Overflow> {
    if state.applied_commands.contains(&command.command_id) {
        return Ok(Answer::Decided(Control {
            is_duplicate: true,
            ..Control::default()
        }));
    }
    let reason = if command.reason.is_empty() {
        "no reason given"
    } else {
        command.reason.as_str()
    };
    let who = format!(
        "by {} ({reason}) [command {}]; {} ms after it was issued",
        command.issued_by,
        command.command_id,
        now_ms - command.issued_at_ms
    );
    match command.command {
        Command::Flatten => {
            return flatten(state, limits, answers, risk, command, &who, now_ms)
                .map(Answer::Decided)
        }
        Command::SetLimit | Command::Status => return Ok(Answer::Shell { who }),
        _ => {}
    }
    let current = trading_state_of(state);
    let symbol = command.symbol.as_str();
    let mut event = |kind: &str, severity, detail: String, to: TradingState, symbol: &str| {
        Event::RiskEvent(risk.risk(kind, severity, detail, now_ms, to, symbol, "operator"))
    };
    let events = match command.command {
        Command::Halt if !symbol.is_empty() => {
            let detail = format!("{symbol} halted {who}");
            vec![event(
                SYMBOL_HALTED,
                Severity::Critical,
                detail,
                current,
                symbol,
            )]
        }
        Command::Halt => {
            let detail = format!("HALTED {who}");
            vec![event(
                TRADING_STATE,
                Severity::Critical,
                detail,
                TradingState::Halted,
                "",
            )]
        }
        Command::Reduce => {
            let detail = format!("REDUCING {who}");
            vec![event(
                TRADING_STATE,
                Severity::Warning,
                detail,
                TradingState::Reducing,
                "",
            )]
        }
        Command::Resume => {
            let mut symbols: Vec<&str> = if symbol.is_empty() {
                state.halted_symbols.iter().map(String::as_str).collect()
            } else {
                vec![symbol]
            };
            symbols.sort_unstable();
            let mut events: Vec<Event> = symbols
                .into_iter()
                .map(|halted| {
                    let detail = format!("{halted} resumed {who}");
                    event(SYMBOL_RESUMED, Severity::Info, detail, current, halted)
                })
                .collect();
            if symbol.is_empty() {
                let detail = format!("ACTIVE {who}");
                events.push(event(
                    TRADING_STATE,
                    Severity::Info,
                    detail,
                    TradingState::Active,
                    "",
                ));
            }
            events
        }
        Command::Flatten | Command::SetLimit | Command::Status => Vec::new(), // decided above
    };
    Ok(Answer::Decided(Control {
        outcome: Outcome {
            events,
            intents: Vec::new(),
        },
        is_duplicate: false,
    }))
}

/// Close positions (all, or one symbol's) with reduce-only market orders and report the working
/// orders the flatten cancels (the state's `cancellations_for`, once it is applied).
///
/// Each order is named by the command and the symbol (idempotent: a repeated command is a
/// duplicate), is at most `max_order_lots` (larger positions close in several orders) and passes
/// the operator checks, not the trading state: an operator may flatten while HALTED.
fn flatten(
    state: &EngineState,
    limits: &Limits,
    answers: &mut Answers<'_>,
    risk: &mut RiskEvents,
    command: &ControlCommand,
    who: &str,
    now_ms: i64,
) -> Result<Control, Overflow> {
    let mut symbols: Vec<&str> = if command.symbol.is_empty() {
        state
            .positions
            .iter()
            .filter(|(_, lots)| !lots.is_zero())
            .map(|(symbol, _)| symbol.as_str())
            .collect()
    } else {
        vec![command.symbol.as_str()]
    };
    symbols.sort_unstable();
    let mut intents: Vec<OrderIntent> = Vec::new();
    let mut denials: Vec<Event> = Vec::new();
    let mut closing: Vec<String> = Vec::new();
    for symbol in &symbols {
        let position = state.positions.get(*symbol).copied().unwrap_or(Dec::ZERO);
        let mut signal_for = |part: i64| Some(flatten_signal(command, symbol, part, now_ms));
        let (closes, denied) =
            closing_orders(state, limits, answers, symbol, &mut signal_for, now_ms)?;
        intents.extend(closes);
        denials.extend(denied);
        if !position.is_zero() {
            closing.push(format!("{symbol} {position} lots"));
        }
    }
    let working = state
        .working_orders()
        .filter(|order| symbols.contains(&&*order.symbol))
        .count();
    let scope = if command.symbol.is_empty() {
        "all symbols"
    } else {
        command.symbol.as_str()
    };
    let closing = if closing.is_empty() {
        "nothing (flat)".to_owned()
    } else {
        closing.join(", ")
    };
    let detail = format!(
        "FLATTEN {scope} {who}: closing {closing} with {} reduce-only orders; canceling {working} \
         working orders; {} denied",
        intents.len(),
        denials.len()
    );
    let report = risk.risk(
        FLATTEN,
        Severity::Critical,
        detail,
        now_ms,
        trading_state_of(state),
        &command.symbol,
        "operator",
    );
    let mut events = vec![Event::RiskEvent(report)];
    events.extend(denials);
    Ok(Control {
        outcome: Outcome { events, intents },
        is_duplicate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(text: &str) -> Wide {
        Wide::parse(text).unwrap()
    }

    #[test]
    fn a_level_reached_exactly_is_crossed_and_one_short_of_it_is_not() {
        assert!(reached_stop_loss(&wide("-20.0000"), &wide("20")));
        assert!(reached_stop_loss(&wide("-20.1"), &wide("20")));
        assert!(!reached_stop_loss(&wide("-19.9999"), &wide("20")));
        assert!(reached_take_profit(&wide("40"), &wide("40.0")));
        assert!(!reached_take_profit(&wide("39.99"), &wide("40")));
    }

    #[test]
    fn the_move_rounds_each_step_to_28_digits_and_keeps_a_zero_s_sign() {
        // (exit - entry) x direction / pip, as Python's Decimal: a short's zero move is -0.
        let (exit, entry) = (wide("1.1001"), wide("1.1001"));
        let moved = quotient(
            &difference(&exit, &entry).multiply(&Wide::new(true, vec![1], 0), PRECISION),
            &wide("0.0001"),
        )
        .unwrap();
        assert_eq!(
            format_fixed(moved.negative, &moved.digits, moved.exponent, 1),
            "-0.0"
        );
        let third = quotient(&wide("1"), &wide("3")).unwrap();
        assert_eq!(third.to_string(), "0.3333333333333333333333333333");
        assert_eq!(
            format_general(third.negative, &third.digits, third.exponent, 6),
            "0.333333"
        );
    }

    #[test]
    fn the_signal_ids_name_the_level_symbol_tick_and_part() {
        let tick = Tick {
            symbol: "EURUSD".to_owned(),
            time_ms: 5,
            seq: 7,
            bid: 1.0,
            ask: 1.1,
            last: 0.0,
            volume: 0.0,
            flags: 0,
            source: String::new(),
        };
        let signal = protective_signal("sl", &tick, 2);
        assert_eq!(signal.signal_id, "sl-EURUSD-5-7-2");
        assert_eq!(signal.model_id, "protective:sl");
    }
}
