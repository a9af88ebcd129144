//! The risk gate's float rules: the flash-crash window, the price collar and the order rate.
//!
//! Each is the arithmetic and the comparison of one check (the gate's order, its denials and
//! their words stay with the gate); float for float as the Python did it, so a figure shown in a
//! denial is the same bits.

use std::collections::VecDeque;

const BPS: f64 = 10_000.0;

/// The lowest and highest mid of one symbol over the last `window_ms` (O(1) amortised).
#[derive(Clone, Debug, Default)]
pub struct PriceWindow {
    pub window_ms: i64,
    low: VecDeque<(i64, f64)>, // increasing mids: the front is the lowest in the window
    high: VecDeque<(i64, f64)>, // decreasing mids: the front is the highest
}

impl PriceWindow {
    pub fn new(window_ms: i64) -> PriceWindow {
        PriceWindow {
            window_ms,
            low: VecDeque::new(),
            high: VecDeque::new(),
        }
    }

    /// Add one mid and forget those older than the window.
    pub fn update(&mut self, time_ms: i64, mid: f64) {
        while self.low.back().is_some_and(|&(_, last)| last >= mid) {
            self.low.pop_back();
        }
        self.low.push_back((time_ms, mid));
        while self.high.back().is_some_and(|&(_, last)| last <= mid) {
            self.high.pop_back();
        }
        self.high.push_back((time_ms, mid));
        let horizon = time_ms - self.window_ms;
        while self.low.front().is_some_and(|&(at, _)| at < horizon) {
            self.low.pop_front();
        }
        while self.high.front().is_some_and(|&(at, _)| at < horizon) {
            self.high.pop_front();
        }
    }

    /// The high-low range over the window as a percentage of the low (0 when empty).
    pub fn move_pct(&self) -> f64 {
        match (self.low.front(), self.high.front()) {
            (Some(&(_, low)), Some(&(_, high))) => (high - low) / low * 100.0,
            _ => 0.0,
        }
    }
}

/// What the price collar refuses: a spread too wide, or a limit price too far from mid (in bps).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CollarBreach {
    Spread(f64),
    LimitDistance(f64),
}

/// The price collar on a quote: the spread, then a limit price's distance from mid, against `collar_bps`.
pub fn collar_breach(
    bid: f64,
    ask: f64,
    limit_price: Option<f64>,
    collar_bps: f64,
) -> Option<CollarBreach> {
    let mid = (bid + ask) / 2.0;
    let spread_bps = (ask - bid) / mid * BPS;
    if spread_bps > collar_bps {
        return Some(CollarBreach::Spread(spread_bps));
    }
    if let Some(limit) = limit_price {
        let distance_bps = (limit - mid).abs() / mid * BPS;
        if distance_bps > collar_bps {
            return Some(CollarBreach::LimitDistance(distance_bps));
        }
    }
    None
}

/// The orders of the last second among `sent_ms` (in time order), when they reach `max_per_second`.
pub fn rate_breach<I: IntoIterator<Item = i64>>(
    sent_ms: I,
    count: usize,
    now_ms: i64,
    max_per_second: i64,
) -> Option<usize> {
    // Times are in order: only the few at the front can have left the window.
    let mut expired = 0;
    for sent in sent_ms {
        if sent > now_ms - 1000 {
            break;
        }
        expired += 1;
    }
    let recent = count - expired;
    if recent as i64 >= max_per_second {
        Some(recent)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_range_of_its_last_milliseconds() {
        let mut window = PriceWindow::new(1000);
        assert_eq!(window.move_pct(), 0.0);
        window.update(0, 1.0);
        window.update(500, 1.1);
        assert!((window.move_pct() - 10.0).abs() < 1e-9);
        window.update(1001, 1.05); // the 1.0 at 0 left the window
        assert!((window.move_pct() - (1.1 - 1.05) / 1.05 * 100.0).abs() < 1e-12);
        window.update(1600, 1.05); // and the 1.1 at 500
        assert_eq!(window.move_pct(), 0.0);
    }

    #[test]
    fn the_collar_refuses_a_wide_spread_then_a_far_limit() {
        assert_eq!(collar_breach(1.0, 1.0001, None, 5.0), None);
        assert!(
            matches!(collar_breach(1.0, 1.01, None, 5.0), Some(CollarBreach::Spread(bps)) if bps > 99.0)
        );
        assert!(matches!(
            collar_breach(1.0, 1.0001, Some(1.01), 5.0),
            Some(CollarBreach::LimitDistance(_))
        ));
        assert_eq!(collar_breach(1.0, 1.0001, Some(1.0001), 5.0), None);
    }

    #[test]
    fn the_rate_counts_only_the_last_second_and_refuses_at_the_limit() {
        let sent = [0, 100, 1500, 1900];
        assert_eq!(rate_breach(sent, 4, 2000, 3), None); // 1500, 1900 in the last second
        assert_eq!(rate_breach(sent, 4, 2000, 2), Some(2));
        assert_eq!(rate_breach(sent, 4, 1099, 3), Some(3)); // 100 is still in (> now - 1000)
        assert_eq!(rate_breach(sent, 4, 1100, 3), None); // 100 left at exactly 1000 ms
    }
}
