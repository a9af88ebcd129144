//! Python's float rules where the core must give the same bits: `round(x, ndigits)`.

/// Return `round(x, decimals)` exactly as CPython computes it for a float and `decimals >= 0`.
///
/// CPython rounds the exact binary value to `decimals` places, ties to even (dtoa's mode 3),
/// and reads the decimal text back with a correctly rounded conversion. Rust's fixed-precision
/// formatting is the same exact rounding (ties to even) and its parser is correctly rounded.
pub fn round_to(x: f64, decimals: u32) -> f64 {
    const NDIGITS_MAX: u32 = 323; // CPython: (DBL_MANT_DIG - DBL_MIN_EXP) * 0.30103; beyond, x itself
    if !x.is_finite() || x == 0.0 || decimals > NDIGITS_MAX {
        return x;
    }
    format!("{:.*}", decimals as usize, x).parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_even_on_the_exact_binary_value() {
        assert_eq!(round_to(0.125, 2), 0.12);
        assert_eq!(round_to(0.375, 2), 0.38);
        assert_eq!(round_to(2.675, 2), 2.67); // 2.67499999... in binary
        assert_eq!(round_to(2.5, 0), 2.0);
        assert_eq!(round_to(3.5, 0), 4.0);
    }

    #[test]
    fn float_noise_is_removed() {
        assert_eq!(round_to(7.0 * 0.01, 4), 0.07);
        assert_eq!(round_to(3.0 * 0.1, 3), 0.3);
    }

    #[test]
    fn signs_and_edges_are_kept() {
        assert!(round_to(-0.0001, 2).is_sign_negative());
        assert_eq!(round_to(-0.0001, 2), 0.0);
        assert!(round_to(f64::NAN, 2).is_nan());
        assert_eq!(round_to(f64::INFINITY, 2), f64::INFINITY);
        assert_eq!(round_to(1e300, 2), 1e300);
    }
}
