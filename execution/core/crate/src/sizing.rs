//! Sizing: a signal's direction and strength to a target position, and the order to reach it.
//!
//! The target is `sign(direction) x strength x max position`, rounded towards zero to the lot
//! step, so it never exceeds the cap; the order is the difference to the current position,
//! itself capped at the largest order size. Float arithmetic as the Python rules did it, step
//! for step, so every size is the same bits.

use crate::pyfloat::round_to;

/// Return `lots` as a whole number of lot steps, rounded towards zero.
///
/// The epsilon absorbs float noise such as `0.3 / 0.1 = 2.9999999999999996`.
pub fn to_steps(lots: f64, lot_step: f64) -> i64 {
    let steps = lots / lot_step;
    ((steps.abs() + 1e-9).floor()).copysign(steps) as i64
}

/// Return the decimals a multiple of `lot_step` is rounded to (two more than the step has).
pub fn lot_decimals(lot_step: f64) -> u32 {
    (-(lot_step.log10().floor())).max(0.0) as u32 + 2
}

/// Return a whole number of lot steps as lots, without float noise (0.07, not 0.07000000000000001).
pub fn round_lots(steps: i64, lot_step: f64, decimals: u32) -> f64 {
    round_to(steps as f64 * lot_step, decimals)
}

/// The sizing parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub max_position_lots: f64,
    pub max_order_lots: f64,
    pub lot_step: f64,
    pub min_strength: f64,
    pub position_cap_steps: i64,
    pub order_cap_steps: i64,
    pub lot_decimals: u32,
}

impl Policy {
    /// Build a policy, working out its caps in steps and its decimals once.
    pub fn new(
        max_position_lots: f64,
        max_order_lots: f64,
        lot_step: f64,
        min_strength: f64,
    ) -> Policy {
        Policy {
            max_position_lots,
            max_order_lots,
            lot_step,
            min_strength,
            position_cap_steps: to_steps(max_position_lots, lot_step),
            order_cap_steps: to_steps(max_order_lots, lot_step),
            lot_decimals: lot_decimals(lot_step),
        }
    }

    /// Return the signed position a signal asks for (`sign` is 1 long, -1 short, 0 flat), within the cap.
    pub fn target_lots(&self, sign: i32, strength: f64) -> f64 {
        if strength < self.min_strength {
            return 0.0;
        }
        let raw = sign as f64 * strength * self.max_position_lots;
        let steps = to_steps(raw, self.lot_step);
        let cap = self.position_cap_steps;
        round_lots(steps.min(cap).max(-cap), self.lot_step, self.lot_decimals)
    }

    /// Return the side (true: buy) and size that move `current` towards `target`; None when already there.
    pub fn order_for(&self, target_lots: f64, current_lots: f64) -> Option<(bool, f64)> {
        let delta = to_steps(target_lots, self.lot_step) - to_steps(current_lots, self.lot_step);
        let size = delta.abs().min(self.order_cap_steps);
        if size == 0 {
            return None;
        }
        Some((
            delta > 0,
            round_lots(size, self.lot_step, self.lot_decimals),
        ))
    }
}

/// The sign of a direction (`long` 1, `short` -1, `flat` 0); None for another word.
pub fn direction_sign(direction: &str) -> Option<i32> {
    match direction {
        "long" => Some(1),
        "short" => Some(-1),
        "flat" => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_towards_zero_through_float_noise() {
        assert_eq!(to_steps(0.3, 0.1), 3);
        assert_eq!(to_steps(-0.3, 0.1), -3);
        assert_eq!(to_steps(0.29, 0.1), 2);
        assert_eq!(to_steps(-0.29, 0.1), -2);
        assert_eq!(to_steps(0.0, 0.01), 0);
    }

    #[test]
    fn decimals_are_two_more_than_the_step() {
        assert_eq!(lot_decimals(0.01), 4);
        assert_eq!(lot_decimals(0.1), 3);
        assert_eq!(lot_decimals(1.0), 2);
        assert_eq!(lot_decimals(10.0), 2);
    }

    #[test]
    fn the_target_is_capped_and_on_the_step() {
        let policy = Policy::new(1.0, 0.5, 0.01, 0.1);
        assert_eq!(policy.target_lots(1, 0.555), 0.55);
        assert_eq!(policy.target_lots(-1, 2.0), -1.0);
        assert_eq!(policy.target_lots(1, 0.05), 0.0);
        assert_eq!(policy.target_lots(0, 0.9), 0.0);
        assert_eq!(policy.target_lots(1, 0.07), 0.0);
    }

    #[test]
    fn the_order_is_the_difference_capped_at_the_largest_order() {
        let policy = Policy::new(1.0, 0.5, 0.01, 0.0);
        assert_eq!(policy.order_for(1.0, 0.0), Some((true, 0.5)));
        assert_eq!(policy.order_for(-0.2, 0.05), Some((false, 0.25)));
        assert_eq!(policy.order_for(0.07, 0.0), Some((true, 0.07)));
        assert_eq!(policy.order_for(0.3, 0.3), None);
    }
}
