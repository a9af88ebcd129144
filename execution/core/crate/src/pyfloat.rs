//! Python's float rules where the core must give the same bits: `round(x, ndigits)` and the
//! shortest digits `repr` writes.

use std::fmt;

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
    if has_at_most(x, decimals) {
        return x;
    }
    format!("{:.*}", decimals as usize, x).parse().unwrap_or(x)
}

/// Whether `round(x, decimals)` is `x` itself because its shortest text has at most `decimals`
/// places (a whole number of lot steps, mostly) and a unit in its last place is below a tenth of
/// `10^-decimals`: that text is within half a unit of `x`, every other number of as many places at
/// least `10^-decimals` minus that away, so the exact value's nearest is that text, read back as `x`.
fn has_at_most(x: f64, decimals: u32) -> bool {
    // |x| x 2^-52 bounds the unit in its last place; 1e15 < 2^52 / 4
    if decimals > 15 || x.abs() >= 1e15 / 10f64.powi(decimals as i32) {
        return false;
    }
    let digits = repr_digits(x);
    let places = digits.as_bytes().len() as i64 - 1 - i64::from(digits.power);
    places <= i64::from(decimals)
}

/// The digits of a float's shortest text and the power of ten of the first (see [`repr_digits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digits {
    bytes: [u8; 24],
    len: usize,
    pub power: i32,
}

impl Digits {
    /// The digits as ASCII, most significant first (no sign, no point).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("0") // only ASCII digits are ever stored
    }
}

/// A float's text, written on the stack (`{:e}` of a float is at most 24 bytes).
struct Text {
    bytes: [u8; 40],
    len: usize,
}

impl Text {
    fn of(args: fmt::Arguments<'_>) -> Text {
        let mut text = Text {
            bytes: [0; 40],
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut text, args); // a float's text always fits
        text
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, part: &str) -> fmt::Result {
        let end = self.len + part.len();
        if end > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(part.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `magnitude = mantissa x 2^exponent`, the mantissa odd (a positive finite float).
fn odd_parts(magnitude: f64) -> (u64, i64) {
    let bits = magnitude.to_bits();
    let fraction = bits & ((1u64 << 52) - 1);
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    let zeros = mantissa.trailing_zeros();
    (mantissa >> zeros, exponent + i64::from(zeros))
}

/// Whether two shortest texts of `magnitude` can be equally near it (its exact value halfway between them).
///
/// Halfway between two texts of at most 17 digits is a value of at most 18 significant digits. A float
/// `m x 2^k` (m odd) below 1 has the exact decimal `m x 5^-k / 10^-k`, whose `m x 5^-k` is odd, so
/// not a multiple of 10: at least as many significant digits as `5^-k`, 19 from k = -26 on.
fn may_tie(magnitude: f64) -> bool {
    odd_parts(magnitude).1 > -26
}

/// The exact value's digits when it has at most 15 significant digits (`1.0`, `0.5`, `1.25`): then they
/// are its shortest text, as no other decimal of 15 digits or fewer reads back as the same float.
fn exact_digits(magnitude: f64) -> Option<Digits> {
    let (mantissa, exponent) = odd_parts(magnitude);
    let (mut whole, mut power) = if exponent >= 0 {
        if exponent > 60 {
            return None;
        }
        (u128::from(mantissa) << exponent, 0i32)
    } else {
        if exponent < -25 {
            return None;
        }
        let shift = (-exponent) as u32;
        (u128::from(mantissa) * 5u128.pow(shift), -(shift as i32))
    };
    while whole % 10 == 0 {
        whole /= 10;
        power += 1;
    }
    let mut digits = Digits {
        bytes: [b'0'; 24],
        len: 0,
        power: 0,
    };
    let mut reversed = [0u8; 40];
    let mut count = 0;
    while whole > 0 {
        reversed[count] = b'0' + (whole % 10) as u8;
        whole /= 10;
        count += 1;
    }
    if count > 15 {
        return None;
    }
    for at in 0..count {
        digits.bytes[at] = reversed[count - 1 - at];
    }
    digits.len = count;
    digits.power = power + count as i32 - 1;
    Some(digits)
}

/// Return the digits `repr(abs(x))` writes for a finite float and the power of ten of the first:
/// `|x| = d1.d2d3... x 10^power` (`"0"`, power 0, for a zero).
///
/// The fewest digits that read back as `x`; where two strings of that length both do (the exact
/// value halfway between them: 8796093022208.3125), the one nearer the exact value, as repr and
/// msgspec take it. Where no two can be equally near ([`may_tie`]: every price and most amounts),
/// Schubfach's digits (the `zmij` crate, ~20 ns) are the one answer; otherwise the exact digits
/// when they are few, else Rust's `{:e}` (the fewest digits, but of two equally near the larger)
/// checked against the exact value rounded half even to as many digits.
pub fn repr_digits(x: f64) -> Digits {
    let magnitude = x.abs();
    if magnitude == 0.0 || !magnitude.is_finite() {
        return Digits {
            bytes: [b'0'; 24],
            len: 1,
            power: 0,
        };
    }
    if !may_tie(magnitude) {
        // One nearest shortest text: Schubfach's (zmij) is it.
        let mut buffer = zmij::Buffer::new();
        return digits_of(buffer.format_finite(magnitude));
    }
    if let Some(exact) = exact_digits(magnitude) {
        return exact;
    }
    let shortest = Text::of(format_args!("{magnitude:e}"));
    let count = shortest.as_str().find('e').unwrap_or(1);
    let count = count - usize::from(shortest.as_str().contains('.'));
    let nearest = Text::of(format_args!("{:.*e}", count.saturating_sub(1), magnitude));
    if nearest.as_str().parse::<f64>() == Ok(magnitude) {
        digits_of(nearest.as_str())
    } else {
        digits_of(shortest.as_str())
    }
}

/// The significant digits and the first one's power of ten of a positive number's text
/// (`1.2345e-7`, `0.00012`, `1234.0`, `1e16`).
fn digits_of(text: &str) -> Digits {
    let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0); // a float's text has a plain integer exponent
    let whole = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let mut digits = Digits {
        bytes: [b'0'; 24],
        len: 0,
        power: 0,
    };
    let mut leading = 0;
    for byte in mantissa.bytes().filter(u8::is_ascii_digit) {
        if digits.len == 0 && byte == b'0' {
            leading += 1;
        } else if digits.len < digits.bytes.len() {
            digits.bytes[digits.len] = byte;
            digits.len += 1;
        }
    }
    while digits.len > 1 && digits.bytes[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    if digits.len == 0 {
        digits.len = 1; // a zero
        return digits;
    }
    digits.power = exponent + whole - 1 - leading;
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_float_with_few_enough_places_rounds_to_itself_as_the_text_path_finds() {
        let by_text = |x: f64, decimals: u32| -> f64 {
            format!("{:.*}", decimals as usize, x).parse().unwrap_or(x)
        };
        for lot_step in [1.0, 0.5, 0.1, 0.01, 0.001, 0.05, 0.25, 0.3] {
            for steps in -3000..3000 {
                let x = steps as f64 * lot_step;
                for decimals in 0..8 {
                    if x != 0.0 {
                        assert_eq!(
                            round_to(x, decimals).to_bits(),
                            by_text(x, decimals).to_bits(),
                            "{x} to {decimals}"
                        );
                    }
                }
            }
        }
        let mut x = 1.0e-7_f64;
        while x < 1.0e17 {
            for value in [x, -x, x * 1.2345678901, x / 3.0] {
                for decimals in [0, 1, 2, 3, 5, 9, 15, 16, 17] {
                    assert_eq!(
                        round_to(value, decimals).to_bits(),
                        by_text(value, decimals).to_bits(),
                        "{value} to {decimals}"
                    );
                }
            }
            x *= 1.7;
        }
    }

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
        let of = |x: f64| {
            let digits = repr_digits(x);
            (digits.as_str().to_owned(), digits.power)
        };
        assert_eq!(of(1.0), ("1".to_owned(), 0));
        assert_eq!(of(-0.0), ("0".to_owned(), 0));
        assert_eq!(of(0.1), ("1".to_owned(), -1));
        assert_eq!(of(-1234.5), ("12345".to_owned(), 3));
        assert_eq!(of(5e-324), ("5".to_owned(), -324));
        assert_eq!(
            of(1.7976931348623157e308),
            ("17976931348623157".to_owned(), 308)
        );
        assert_eq!(of(1.1001350040000002), ("11001350040000002".to_owned(), 0));
        // Two 16-digit strings read back as it; repr writes the nearer (...312, not ...313).
        assert_eq!(
            of(8_796_093_022_208.312),
            ("8796093022208312".to_owned(), 12)
        );
    }

    #[test]
    fn only_a_float_of_few_exact_digits_can_fall_halfway() {
        assert!(may_tie(8_796_093_022_208.312)); // 2^43 + 5/16
        assert!(may_tie(1.0) && may_tie(0.5) && may_tie(1e22));
        assert!(!may_tie(0.1) && !may_tie(1.1001350040000002) && !may_tie(5e-324));
        assert!(may_tie(2f64.powi(-25)) && !may_tie(2f64.powi(-26)));
    }

    #[test]
    fn a_texts_digits_and_power_are_read_in_every_form() {
        let of = |text: &str| {
            let digits = digits_of(text);
            (digits.as_str().to_owned(), digits.power)
        };
        assert_eq!(of("1.2345e-7"), ("12345".to_owned(), -7));
        assert_eq!(of("0.00012"), ("12".to_owned(), -4));
        assert_eq!(of("1234.0"), ("1234".to_owned(), 3));
        assert_eq!(of("1e16"), ("1".to_owned(), 16));
        assert_eq!(of("1.5e+300"), ("15".to_owned(), 300));
        assert_eq!(of("120"), ("12".to_owned(), 2));
    }

    #[test]
    fn a_float_of_few_exact_digits_is_written_as_they_are() {
        let of = |x: f64| exact_digits(x).map(|d| (d.as_str().to_owned(), d.power));
        assert_eq!(of(1.0), Some(("1".to_owned(), 0)));
        assert_eq!(of(0.5), Some(("5".to_owned(), -1)));
        assert_eq!(of(1200.25), Some(("120025".to_owned(), 3)));
        assert_eq!(of(1e15), Some(("1".to_owned(), 15)));
        assert_eq!(of(2f64.powi(-25)), None); // 2.98023223876953125e-8: 18 digits
        assert_eq!(of(8_796_093_022_208.312), None); // 17 digits
        assert_eq!(of(0.1), None);
    }
}
