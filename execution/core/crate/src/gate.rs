//! The pre-trade gate's rules on an order's figures (no Python): whether an order only reduces,
//! and the checks that read no more than the trading state, the order, its signal and the limits
//! (trading state, signal timeframe, signal age, order size, price age, position, broker rejects,
//! the flash-crash move), each with its denial's exact words.
//!
//! The gate's order, and the checks that value legs in the account currency (gross exposure, the
//! day's loss), stay with the facade (`execution/core/risk.py`) for now; the collar, the order
//! rate and the flash-crash window are `risk.rs`.

use crate::events::py_repr;
use crate::money::{Dec, Overflow};

/// Which breaker a denial trips, beyond refusing the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halts {
    Nothing,
    Trading,
    Symbol,
}

impl Halts {
    /// The facade's name of it (`Denial.halts`).
    pub fn name(self) -> &'static str {
        match self {
            Halts::Nothing => "",
            Halts::Trading => "trading",
            Halts::Symbol => "symbol",
        }
    }
}

/// Why the gate refuses an order: the check, its words, and the breaker it trips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub check: &'static str,
    pub reason: String,
    pub halts: Halts,
}

fn denial(check: &'static str, reason: String) -> Option<Denial> {
    Some(Denial {
        check,
        reason,
        halts: Halts::Nothing,
    })
}

/// True when `signed` lots bring `current` (working orders included) towards flat without crossing it.
pub fn is_reducing(current: Dec, signed: Dec) -> Result<bool, Overflow> {
    let after = current.checked_add(signed)?;
    Ok(!current.is_zero()
        && after.abs().cmp_value(current.abs()).is_lt()
        && (after.is_zero() || after.is_positive() == current.is_positive()))
}

/// A signal of another timeframe than the one that drives its symbol says nothing about the position.
pub fn signal_timeframe(symbol: &str, timeframe: &str, driver: &str) -> Option<Denial> {
    if timeframe == driver {
        return None;
    }
    denial(
        "signal_timeframe",
        format!("{timeframe} signal; {symbol} is driven by {driver} signals"),
    )
}

/// HALTED (globally or for the symbol) denies all; REDUCING denies what does not reduce.
pub fn trading_state(
    state: &str,
    symbol: &str,
    symbol_halted: bool,
    reducing: bool,
) -> Option<Denial> {
    if state == "HALTED" {
        return denial("trading_state", "trading is HALTED".to_owned());
    }
    if symbol_halted {
        return denial("trading_state", format!("{symbol} is HALTED"));
    }
    if state == "REDUCING" && !reducing {
        return denial(
            "trading_state",
            "REDUCING: the order would not reduce the position".to_owned(),
        );
    }
    None
}

/// A signal older than the TTL.
pub fn signal_ttl(age_ms: i64, ttl_ms: i64) -> Option<Denial> {
    if age_ms > ttl_ms {
        return denial(
            "signal_ttl",
            format!("signal is {age_ms} ms old (ttl {ttl_ms} ms)"),
        );
    }
    None
}

/// An order larger than the largest order size.
pub fn max_order_size(quantity_lots: f64, max_order_lots: f64) -> Option<Denial> {
    if quantity_lots > max_order_lots {
        return denial(
            "max_order_size",
            format!(
                "{} lots exceeds {}",
                py_repr(quantity_lots),
                py_repr(max_order_lots)
            ),
        );
    }
    None
}

/// Why `symbol` has no usable price: no tick (`tick_time_ms` None), or one older than `max_age_ms`.
pub fn stale_price(
    symbol: &str,
    tick_time_ms: Option<i64>,
    now_ms: i64,
    max_age_ms: i64,
) -> Option<String> {
    match tick_time_ms {
        None => Some(format!("no price for {symbol} yet")),
        Some(time_ms) if now_ms - time_ms > max_age_ms => Some(format!(
            "latest {symbol} tick is {} ms old",
            now_ms - time_ms
        )),
        Some(_) => None,
    }
}

/// An order that leaves the position (`exposure` with working orders, plus `signed` lots) beyond
/// `max_position_lots`; an order that only reduces passes.
pub fn max_position(
    exposure: Dec,
    signed: Dec,
    reducing: bool,
    max_position_lots: f64,
) -> Result<Option<Denial>, Overflow> {
    if reducing {
        return Ok(None);
    }
    let after = exposure.checked_add(signed)?;
    let limit = Dec::from_float(max_position_lots).map_err(|_| Overflow)?;
    if after.abs().cmp_value(limit).is_gt() {
        return Ok(denial(
            "max_position",
            format!(
                "position would be {after} lots (limit {})",
                py_repr(max_position_lots)
            ),
        ));
    }
    Ok(None)
}

/// Too many broker rejects in a row: denied, and trading halts.
pub fn consecutive_rejects(rejects: i64, max_rejects: i64) -> Option<Denial> {
    if rejects >= max_rejects {
        return Some(Denial {
            check: "consecutive_rejects",
            reason: format!("{rejects} broker rejects in a row"),
            halts: Halts::Trading,
        });
    }
    None
}

/// The symbol's mid moved more than `threshold_pct` within the window: denied, and the symbol halts.
pub fn flash_crash(
    symbol: &str,
    move_pct: f64,
    threshold_pct: f64,
    window_ms: i64,
) -> Option<Denial> {
    if move_pct > threshold_pct {
        return Some(Denial {
            check: "flash_crash",
            reason: flash_crash_words(symbol, move_pct, window_ms),
            halts: Halts::Symbol,
        });
    }
    None
}

/// The flash-crash breaker's words (the gate's denial and the tick's halt say the same).
pub fn flash_crash_words(symbol: &str, move_pct: f64, window_ms: i64) -> String {
    format!("{symbol} moved {move_pct:.2}% within {window_ms} ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Dec {
        Dec::parse(text).unwrap()
    }

    #[test]
    fn reducing_only_towards_flat() {
        assert!(is_reducing(dec("1.0"), dec("-0.5")).unwrap());
        assert!(is_reducing(dec("1.0"), dec("-1.0")).unwrap());
        assert!(!is_reducing(dec("1.0"), dec("-1.5")).unwrap());
        assert!(!is_reducing(dec("0"), dec("-1")).unwrap());
        assert!(!is_reducing(dec("-1"), dec("-1")).unwrap());
    }

    #[test]
    fn position_at_the_limit_passes_beyond_it_is_denied() {
        assert_eq!(
            max_position(dec("1.5"), dec("0.5"), false, 2.0).unwrap(),
            None
        );
        let beyond = max_position(dec("1.5"), dec("0.6"), false, 2.0)
            .unwrap()
            .unwrap();
        assert_eq!(beyond.reason, "position would be 2.1 lots (limit 2.0)");
        assert_eq!(max_position(dec("-3"), dec("1"), true, 2.0).unwrap(), None);
    }

    #[test]
    fn python_texts() {
        assert_eq!(py_repr(10.0), "10.0");
        assert_eq!(py_repr(0.0001), "0.0001");
        assert_eq!(py_repr(0.00001), "1e-05");
        assert_eq!(py_repr(1e16), "1e+16");
        assert_eq!(py_repr(1.5e-300), "1.5e-300");
        assert_eq!(py_repr(-0.0), "-0.0");
        assert_eq!(
            flash_crash_words("X", 0.125, 5),
            "X moved 0.12% within 5 ms"
        );
        assert_eq!(
            flash_crash_words("X", 0.375, 5),
            "X moved 0.38% within 5 ms"
        );
    }
}
