//! Python's float rules where the core must give the same bits: `round(x, ndigits)` and the
//! shortest digits `repr` writes.

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

/// Return the digits `repr(abs(x))` writes for a finite float and the power of ten of the first:
/// `|x| = d1.d2d3... x 10^power` (`("0", 0)` for a zero).
///
/// The fewest digits that read back as `x`; where two strings of that length both do (the exact
/// value halfway between them: 8796093022208.3125), the one nearer the exact value, as repr and
/// msgspec take it. Rust's `{:e}` gives the fewest digits but not always the nearer of two.
pub fn repr_digits(x: f64) -> (String, i32) {
    let magnitude = x.abs();
    if magnitude == 0.0 {
        return ("0".to_owned(), 0);
    }
    let mut shortest = format!("{magnitude:e}");
    let count = shortest
        .split('e')
        .next()
        .map_or(0, |m| m.len() - usize::from(m.contains('.')));
    if count > 0 {
        let nearest = format!("{:.*e}", count - 1, magnitude);
        if nearest.parse::<f64>() == Ok(magnitude) {
            shortest = nearest;
        }
    }
    let (mantissa, power) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let power = power.parse().unwrap_or(0); // LowerExp writes a plain integer exponent
    (mantissa.chars().filter(|c| *c != '.').collect(), power)
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

    #[test]
    fn repr_digits_are_the_shortest_nearest_digits_and_their_power() {
        assert_eq!(repr_digits(1.0), ("1".to_owned(), 0));
        assert_eq!(repr_digits(-0.0), ("0".to_owned(), 0));
        assert_eq!(repr_digits(0.1), ("1".to_owned(), -1));
        assert_eq!(repr_digits(-1234.5), ("12345".to_owned(), 3));
        assert_eq!(repr_digits(5e-324), ("5".to_owned(), -324));
        assert_eq!(
            repr_digits(1.7976931348623157e308),
            ("17976931348623157".to_owned(), 308)
        );
        // Two 16-digit strings read back as it; repr writes the nearer (...312, not ...313).
        assert_eq!(
            repr_digits(8_796_093_022_208.312),
            ("8796093022208312".to_owned(), 12)
        );
    }
}
