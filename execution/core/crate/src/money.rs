//! Exact decimal amounts with Python `decimal`'s arithmetic for the operations money uses.
//!
//! A [`Dec`] is a coefficient and a power-of-ten exponent, as a Python `Decimal` is, and each
//! operation gives the coefficient and exponent Python's exact money context gives (sums at the
//! smaller exponent, products at the sum of the exponents), so an amount's text is the same too
//! (`0.50` stays `0.50`). Nothing rounds: an operation whose exact result does not fit 77 digits
//! (a 256-bit coefficient, [`Int`]) is an error ([`Overflow`]) where Python would carry on.
//!
//! 77 digits hold every amount a book holds within the instruments' bounds. An entry value or a
//! realised sum adds products of lots and prices (or price differences), each a float's shortest
//! text of at most 17 digits; written at the smallest exponent among them, the sum needs at most
//! log10(open lots) + log10(largest / smallest lots) + log10(price_max / price_min) + 35 digits:
//! with 1,000 open lots, lots from 0.01 to 10,000 and a symbol's default price span of 2^53
//! (tick size to tick size x 2^53), 3 + 6 + 16 + 35 = 60 digits. (38, an `i128`, did not: two
//! 17-digit lots at prices 16 orders of magnitude apart already need 51.)

use std::cmp::Ordering;
use std::fmt;

use crate::wide_int::Int;

/// An exact result does not fit the core's 77 digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an exact amount needs more than 77 digits")
    }
}

/// Text that is not a finite decimal number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotADecimal(pub String);

/// An exact decimal: `coefficient x 10^exponent` (a zero is never negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dec {
    pub coefficient: Int,
    pub exponent: i32,
}

fn pow10(n: u32) -> Result<Int, Overflow> {
    Int::pow10(n).ok_or(Overflow)
}

impl Dec {
    /// Zero with exponent 0 (Python's `Decimal(0)`).
    pub const ZERO: Dec = Dec {
        coefficient: Int::ZERO,
        exponent: 0,
    };

    pub fn new(coefficient: i128, exponent: i32) -> Dec {
        Dec::of(Int::from_i128(coefficient), exponent)
    }

    pub fn of(coefficient: Int, exponent: i32) -> Dec {
        Dec {
            coefficient,
            exponent,
        }
    }

    pub fn is_zero(self) -> bool {
        self.coefficient.is_zero()
    }

    pub fn is_positive(self) -> bool {
        self.coefficient.is_positive()
    }

    pub fn is_negative(self) -> bool {
        self.coefficient.is_negative()
    }

    /// The coefficient scaled to a smaller exponent `to` (exact).
    fn scaled(self, to: i32) -> Result<Int, Overflow> {
        if self.coefficient.is_zero() {
            return Ok(Int::ZERO);
        }
        let shift = (self.exponent - to) as u32;
        self.coefficient.checked_mul(pow10(shift)?).ok_or(Overflow)
    }

    /// `self + other`, exactly, at the smaller exponent.
    pub fn checked_add(self, other: Dec) -> Result<Dec, Overflow> {
        let exponent = self.exponent.min(other.exponent);
        let sum = self
            .scaled(exponent)?
            .checked_add(other.scaled(exponent)?)
            .ok_or(Overflow)?;
        Ok(Dec::of(sum, exponent))
    }

    /// `self - other`, exactly, at the smaller exponent.
    pub fn checked_sub(self, other: Dec) -> Result<Dec, Overflow> {
        self.checked_add(other.negated())
    }

    /// `self x other`, exactly, at the sum of the exponents.
    pub fn checked_mul(self, other: Dec) -> Result<Dec, Overflow> {
        let product = self
            .coefficient
            .checked_mul(other.coefficient)
            .ok_or(Overflow)?;
        let exponent = self.exponent.checked_add(other.exponent).ok_or(Overflow)?;
        Ok(Dec::of(product, exponent))
    }

    pub fn negated(self) -> Dec {
        Dec::of(self.coefficient.negated(), self.exponent)
    }

    pub fn abs(self) -> Dec {
        Dec::of(self.coefficient.abs(), self.exponent)
    }

    /// Compare values (`0.5 == 0.50`).
    pub fn cmp_value(self, other: Dec) -> Ordering {
        if self.coefficient.signum() != other.coefficient.signum() {
            return self.coefficient.signum().cmp(&other.coefficient.signum());
        }
        let exponent = self.exponent.min(other.exponent);
        match (self.scaled(exponent), other.scaled(exponent)) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            // One side does not fit when scaled: it is the larger in magnitude.
            (Err(_), _) => {
                if self.coefficient.is_positive() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (_, Err(_)) => {
                if other.coefficient.is_positive() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
        }
    }

    /// Python's `min(self, other)`: `other` only when it is smaller in value.
    pub fn min_first(self, other: Dec) -> Dec {
        if other.cmp_value(self) == Ordering::Less {
            other
        } else {
            self
        }
    }

    /// Read a finite decimal as Python's `str(Decimal)` writes it (also plain digits, `1.5e-7`).
    pub fn parse(text: &str) -> Result<Dec, NotADecimal> {
        let (negative, digits, exponent) = parse_python_text(text)?;
        let bad = || NotADecimal(text.to_owned());
        let mut coefficient = Int::ZERO;
        for digit in digits {
            coefficient = coefficient.checked_push_digit(digit).ok_or_else(bad)?;
        }
        let exponent = i32::try_from(exponent).map_err(|_| bad())?;
        Ok(Dec::of(
            if negative {
                coefficient.negated()
            } else {
                coefficient
            },
            exponent,
        ))
    }

    /// The exact decimal Python's `Decimal(repr(x))` gives for a finite float (its shortest round-trip text).
    pub fn from_float(x: f64) -> Result<Dec, NotADecimal> {
        if !x.is_finite() {
            return Err(NotADecimal(format!("{x}")));
        }
        let shortest = crate::pyfloat::repr_digits(x);
        let (digits, power) = (shortest.as_str(), shortest.power);
        let count = digits.len() as i32;
        let point = power + 1; // digits are 0.d1d2... x 10^point
                               // repr writes 1e-05 and 1e+16 in exponent form, else positional with at least one decimal.
        let exponent = if point <= -4 || point > 16 {
            power - (count - 1)
        } else {
            -((count - point).max(1))
        };
        let bad = || NotADecimal(format!("{x}"));
        let mut coefficient: i128 = digits.parse().map_err(|_| bad())?;
        let shift = (power - (count - 1)) - exponent; // zeros the positional form appends (100.0)
        coefficient = coefficient
            .checked_mul(10i128.checked_pow(shift as u32).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        Ok(Dec::new(
            if x.is_sign_negative() {
                -coefficient
            } else {
                coefficient
            },
            exponent,
        ))
    }
}

/// Read a finite decimal as Python's `str(Decimal)` writes it: `(negative, digits, exponent)`, the
/// digits as written (most significant first, leading zeros kept).
pub fn parse_python_text(text: &str) -> Result<(bool, Vec<u8>, i64), NotADecimal> {
    let bad = || NotADecimal(text.to_owned());
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, power) = match body.find(['e', 'E']) {
        Some(at) => (
            &body[..at],
            body[at + 1..].parse::<i64>().map_err(|_| bad())?,
        ),
        None => (body, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    let mut digits = Vec::with_capacity(whole.len() + fraction.len());
    for digit in whole.bytes().chain(fraction.bytes()) {
        if !digit.is_ascii_digit() {
            return Err(bad());
        }
        digits.push(digit - b'0');
    }
    let exponent = power.checked_sub(fraction.len() as i64).ok_or_else(bad)?;
    Ok((negative, digits, exponent))
}

impl fmt::Display for Dec {
    /// As Python's `str(Decimal)` (scientific form for tiny and positive-exponent amounts).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(96);
        self.push_text(&mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// Write `(-1)^negative x digits x 10^exponent` as Python's `str(Decimal)` does (`to_sci_string`).
pub fn write_python_text(
    f: &mut fmt::Formatter<'_>,
    negative: bool,
    digits: &str,
    exponent: i64,
) -> fmt::Result {
    let mut text = Vec::with_capacity(digits.len() + 16);
    push_python_text(&mut text, negative, digits.as_bytes(), exponent);
    f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// Append `(-1)^negative x digits x 10^exponent` (ASCII digits) as Python's `str(Decimal)` writes it:
/// positional when the exponent is at most 0 and the point falls after the sixth place past it,
/// else one digit, the rest after a point, and `E+n` / `E-n`.
pub fn push_python_text(out: &mut Vec<u8>, negative: bool, digits: &[u8], exponent: i64) {
    let count = digits.len() as i64;
    let left = exponent + count;
    let dot = if exponent <= 0 && left > -6 { left } else { 1 };
    if negative {
        out.push(b'-');
    }
    if dot <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-dot) as usize, b'0');
        out.extend_from_slice(digits);
    } else if dot >= count {
        out.extend_from_slice(digits);
        out.resize(out.len() + (dot - count) as usize, b'0');
    } else {
        out.extend_from_slice(&digits[..dot as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[dot as usize..]);
    }
    if left != dot {
        let power = left - dot;
        out.extend_from_slice(if power < 0 { b"E" } else { b"E+" });
        push_int(out, power);
    }
}

/// Append an integer in decimal (`-` before a negative one).
pub fn push_int(out: &mut Vec<u8>, value: i64) {
    let mut places = [0u8; 20];
    let mut at = places.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        places[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&places[at..]);
}

impl Dec {
    /// Append the amount's `str(Decimal)` text.
    pub fn push_text(self, out: &mut Vec<u8>) {
        let mut digits = [0u8; 80];
        let count = self.coefficient.push_magnitude_digits(&mut digits);
        push_python_text(
            out,
            self.coefficient.is_negative(),
            &digits[..count],
            i64::from(self.exponent),
        );
    }
}

/// A decimal from its text, for tests.
#[cfg(test)]
pub(crate) fn d(text: &str) -> Dec {
    Dec::parse(text).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_as_python_writes_it() {
        for text in [
            "0", "0.50", "-1.25", "0.000001", "1E-7", "1.5E-7", "1E+1", "123.4560", "-0.00",
            "1E+16",
        ] {
            let shown = d(text).to_string();
            let expected = if text == "-0.00" { "0.00" } else { text };
            assert_eq!(shown, expected, "{text}");
        }
        assert_eq!(d("1e-7").to_string(), "1E-7");
        assert_eq!(d("0.0000001").to_string(), "1E-7");
        assert_eq!(Dec::new(0, -8).to_string(), "0E-8");
        assert_eq!(Dec::new(5, 3).to_string(), "5E+3");
    }

    #[test]
    fn sums_keep_the_smaller_exponent_and_products_add_them() {
        assert_eq!(d("1.10").checked_add(d("2")).unwrap().to_string(), "3.10");
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap(), d("0.3"));
        assert_eq!(d("1.10").checked_mul(d("2")).unwrap().to_string(), "2.20");
        assert_eq!(
            d("0.5").checked_mul(d("0.00")).unwrap().to_string(),
            "0.000"
        );
        assert_eq!(d("0.5").checked_sub(d("0.50")).unwrap().to_string(), "0.00");
        assert_eq!(
            Dec::ZERO.checked_add(d("-0.000")).unwrap().to_string(),
            "0.000"
        );
    }

    #[test]
    fn comparisons_are_by_value_and_min_keeps_the_first_of_equals() {
        assert_eq!(d("0.5").cmp_value(d("0.50")), Ordering::Equal);
        assert_eq!(d("-1").cmp_value(d("0.1")), Ordering::Less);
        assert_eq!(d("0.5").min_first(d("0.50")).to_string(), "0.5");
        assert_eq!(d("0.50").min_first(d("0.4")).to_string(), "0.4");
    }

    #[test]
    fn floats_convert_through_their_shortest_text() {
        assert_eq!(Dec::from_float(1.1).unwrap().to_string(), "1.1");
        assert_eq!(Dec::from_float(100.0).unwrap().to_string(), "100.0");
        assert_eq!(Dec::from_float(0.0001).unwrap().to_string(), "0.0001");
        assert_eq!(Dec::from_float(0.00001).unwrap().to_string(), "0.00001");
        assert_eq!(Dec::from_float(1e-5).unwrap(), Dec::new(1, -5));
        assert_eq!(Dec::from_float(1e16).unwrap(), Dec::new(1, 16));
        assert_eq!(
            Dec::from_float(123456789012345.6).unwrap().to_string(),
            "123456789012345.6"
        );
        assert_eq!(Dec::from_float(-2.5).unwrap().to_string(), "-2.5");
        // A tie between two shortest strings: repr('8796093022208.312'), not ...313.
        assert_eq!(
            Dec::from_float(8796093022208.312).unwrap().to_string(),
            "8796093022208.312"
        );
        assert_eq!(Dec::from_float(0.0).unwrap().to_string(), "0.0");
        assert!(Dec::from_float(f64::NAN).is_err());
    }

    #[test]
    fn an_amount_too_wide_is_an_error_not_a_rounding() {
        let wide = Dec::parse(&"9".repeat(77)).unwrap();
        assert_eq!(wide.checked_mul(d("100")), Err(Overflow));
        assert_eq!(wide.checked_add(d("0.01")), Err(Overflow));
    }
}
