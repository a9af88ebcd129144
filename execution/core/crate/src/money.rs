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

/// Digit values as ASCII digits, without leading zeros (a zero: `0`).
fn ascii(digits: &[u8]) -> Vec<u8> {
    let leading = digits.iter().take_while(|d| **d == 0).count();
    let kept = &digits[leading.min(digits.len().saturating_sub(1))..];
    if kept.is_empty() {
        return vec![b'0'];
    }
    kept.iter().map(|d| d + b'0').collect()
}

/// `digits x 10^exponent` (ASCII digits) rounded half even to the exponent `to` (Python's `_rescale`):
/// zeros appended when `to` is smaller; a zero stays a zero at `to`. Leading zeros dropped.
fn rescaled(digits: &[u8], exponent: i64, to: i64) -> (Vec<u8>, i64) {
    if digits.iter().all(|d| *d == b'0') {
        return (vec![b'0'], to);
    }
    if exponent >= to {
        let mut out = digits.to_vec();
        out.resize(out.len() + (exponent - to) as usize, b'0');
        return (out, to);
    }
    let drop = (to - exponent) as usize;
    let mut padded = vec![b'0'; drop.saturating_sub(digits.len())];
    padded.extend_from_slice(digits);
    let (kept, dropped) = padded.split_at(padded.len() - drop);
    let mut kept = if kept.is_empty() {
        vec![b'0']
    } else {
        kept.to_vec()
    };
    let beyond_half = dropped[1..].iter().any(|d| *d != b'0');
    let odd = kept.last().is_some_and(|d| (d - b'0') % 2 == 1);
    let up = match dropped[0] {
        b'6'..=b'9' => true,
        b'5' => beyond_half || odd,
        _ => false,
    };
    if up {
        let mut at = kept.len();
        loop {
            if at == 0 {
                kept.insert(0, b'1');
                break;
            }
            at -= 1;
            if kept[at] == b'9' {
                kept[at] = b'0';
            } else {
                kept[at] += 1;
                break;
            }
        }
    }
    let leading = kept.iter().take_while(|d| **d == b'0').count();
    kept.drain(..leading.min(kept.len() - 1));
    (kept, to)
}

/// Python's `format(Decimal, spec)` after its rounding: the point placed `dot` digits in, and
/// `e+n` / `e-n` when it is not where the value puts it (`_format_number`).
fn placed(negative: bool, digits: &[u8], exponent: i64, dot: i64) -> String {
    let count = digits.len() as i64;
    let left = exponent + count;
    let mut out = Vec::with_capacity(digits.len() + 12);
    if negative {
        out.push(b'-');
    }
    if dot < 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-dot) as usize, b'0');
        out.extend_from_slice(digits);
    } else if dot >= count {
        out.extend_from_slice(digits);
        out.resize(out.len() + (dot - count) as usize, b'0');
    } else {
        if dot == 0 {
            out.push(b'0');
        } else {
            out.extend_from_slice(&digits[..dot as usize]);
        }
        out.push(b'.');
        out.extend_from_slice(&digits[dot as usize..]);
    }
    if left != dot {
        let power = left - dot;
        out.extend_from_slice(if power < 0 { b"e" } else { b"e+" });
        push_int(&mut out, power);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Python's `f"{value:.{places}f}"` of the `Decimal` `(-1)^negative x digits x 10^exponent`
/// (digit values, most significant first): rounded half even (the default context's rounding) to
/// `places` decimals, the sign kept on a zero (`-0.0`), never an exponent.
pub fn format_fixed(negative: bool, digits: &[u8], exponent: i64, places: u32) -> String {
    let (digits, exponent) = rescaled(&ascii(digits), exponent, -i64::from(places));
    placed(negative, &digits, exponent, exponent + digits.len() as i64)
}

/// Python's `f"{value:.{precision}g}"` of the `Decimal` `(-1)^negative x digits x 10^exponent`
/// (digit values): rounded half even to `precision` significant digits only when it has more
/// (its trailing zeros kept, unlike a float's `g`), positional when the exponent is at most 0 and
/// the point falls after the sixth place past it, else one digit before the point and `e+n` / `e-n`.
pub fn format_general(negative: bool, digits: &[u8], exponent: i64, precision: usize) -> String {
    let precision = precision.max(1);
    let (mut digits, mut exponent) = (ascii(digits), exponent);
    if digits.len() > precision {
        (digits, exponent) = rescaled(
            &digits,
            exponent,
            exponent + (digits.len() - precision) as i64,
        );
        if digits.len() > precision {
            // 9.99.. carried into one more digit: drop its last, a zero
            (digits, exponent) = rescaled(&digits, exponent, exponent + 1);
        }
    }
    let left = exponent + digits.len() as i64;
    let dot = if exponent <= 0 && left > -6 { left } else { 1 };
    placed(negative, &digits, exponent, dot)
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

    /// `(text, f"{Decimal(text):.6g}", f"{Decimal(text):.1f}")`, as Python wrote them: zeros
    /// of both signs and any exponent, ties both ways, trailing zeros, carries, tiny and huge ones.
    const FORMATS: &[(&str, &str, &str)] = &[
        ("0", "0", "0.0"),
        ("-0", "-0", "-0.0"),
        ("0.000", "0.000", "0.0"),
        ("-0.00", "-0.00", "-0.0"),
        ("0E+3", "0e+3", "0.0"),
        ("-0E-9", "-0e-9", "-0.0"),
        ("1", "1", "1.0"),
        ("-1", "-1", "-1.0"),
        ("5", "5", "5.0"),
        ("0.05", "0.05", "0.0"),
        ("-0.05", "-0.05", "-0.0"),
        ("0.15", "0.15", "0.2"),
        ("0.25", "0.25", "0.2"),
        ("-0.35", "-0.35", "-0.4"),
        ("0.45", "0.45", "0.4"),
        ("1.10000", "1.10000", "1.1"),
        ("1.100000", "1.10000", "1.1"),
        ("1.1000000", "1.10000", "1.1"),
        ("9.999995", "10.0000", "10.0"),
        ("9.999985", "9.99998", "10.0"),
        ("-9.999995", "-10.0000", "-10.0"),
        ("999999.5", "1.00000e+6", "999999.5"),
        ("999998.5", "999998", "999998.5"),
        ("1234565", "1.23456e+6", "1234565.0"),
        ("1234575", "1.23458e+6", "1234575.0"),
        ("1.2345650", "1.23456", "1.2"),
        ("0.000012345650", "0.0000123456", "0.0"),
        ("1E-7", "1e-7", "0.0"),
        ("1.5E-7", "1.5e-7", "0.0"),
        ("-2.5E-6", "-0.0000025", "-0.0"),
        ("1E+16", "1e+16", "10000000000000000.0"),
        ("1.2E+5", "1.2e+5", "120000.0"),
        ("123456", "123456", "123456.0"),
        ("1234567", "1.23457e+6", "1234567.0"),
        ("-1234567.5", "-1.23457e+6", "-1234567.5"),
        ("0.0000010", "0.0000010", "0.0"),
        ("0.00000099999950", "0.00000100000", "0.0"),
        ("1.0861", "1.0861", "1.1"),
        ("1.08612345678901234567890123", "1.08612", "1.1"),
        ("-0.0004999", "-0.0004999", "-0.0"),
        ("-0.0005", "-0.0005", "-0.0"),
        ("0.0005000001", "0.000500000", "0.0"),
        ("99.95", "99.95", "100.0"),
        ("99.85", "99.85", "99.8"),
        ("-99.95", "-99.95", "-100.0"),
        ("0.95", "0.95", "1.0"),
        ("0.94999", "0.94999", "0.9"),
        ("1E+1", "1e+1", "10.0"),
        ("10", "10", "10.0"),
        ("100.00", "100.00", "100.0"),
        ("-0.0000005", "-5e-7", "-0.0"),
        ("-0.00000049", "-4.9e-7", "-0.0"),
        (
            "12345678901234567890.5",
            "1.23457e+19",
            "12345678901234567890.5",
        ),
        ("3530829E-27", "3.53083e-21", "0.0"),
        (
            "90532746179102435345E2",
            "9.05327e+21",
            "9053274617910243534500.0",
        ),
        ("1E-26", "1e-26", "0.0"),
        ("80E6", "8.0e+7", "80000000.0"),
        ("-92657E-27", "-9.2657e-23", "-0.0"),
        ("-5E-22", "-5e-22", "-0.0"),
        ("-29361589E6", "-2.93616e+13", "-29361589000000.0"),
        (
            "41027473306115483695E6",
            "4.10275e+25",
            "41027473306115483695000000.0",
        ),
        ("2634613E-26", "2.63461e-20", "0.0"),
        (
            "-7738354963060144660903736799E-10",
            "-7.73835e+17",
            "-773835496306014466.1",
        ),
        (
            "4580938248964443279645386635E-19",
            "4.58094e+8",
            "458093824.9",
        ),
        ("-83E1", "-8.3e+2", "-830.0"),
        ("-766956614152E-23", "-7.66957e-12", "-0.0"),
        ("-875E1", "-8.75e+3", "-8750.0"),
        ("-1E6", "-1e+6", "-1000000.0"),
        ("-6875018E7", "-6.87502e+13", "-68750180000000.0"),
        ("21E0", "21", "21.0"),
        ("-4E-2", "-0.04", "-0.0"),
        ("-99745048E-1", "-9.97450e+6", "-9974504.8"),
        ("725E-27", "7.25e-25", "0.0"),
        ("-235623E-5", "-2.35623", "-2.4"),
        ("-280734720487E5", "-2.80735e+16", "-28073472048700000.0"),
        ("-938E5", "-9.38e+7", "-93800000.0"),
        ("58153450E-6", "58.1534", "58.2"),
        ("185E-16", "1.85e-14", "0.0"),
        ("-7E-19", "-7e-19", "-0.0"),
        ("-104295E4", "-1.04295e+9", "-1042950000.0"),
        ("-9509123969619437046321919526E-27", "-9.50912", "-9.5"),
        (
            "-72683320779239780771E0",
            "-7.26833e+19",
            "-72683320779239780771.0",
        ),
        ("-5E-17", "-5e-17", "-0.0"),
        ("212E-27", "2.12e-25", "0.0"),
        ("-5E-24", "-5e-24", "-0.0"),
        (
            "9658968483603391946741463545E-6",
            "9.65897e+21",
            "9658968483603391946741.5",
        ),
        ("464264E0", "464264", "464264.0"),
        ("-72E-1", "-7.2", "-7.2"),
        ("-191533708735E-9", "-191.534", "-191.5"),
        ("863769118135E-29", "8.63769e-18", "0.0"),
        ("26863013312714856715E-11", "2.68630e+8", "268630133.1"),
        ("-643578E-20", "-6.43578e-15", "-0.0"),
        ("-79807E2", "-7.9807e+6", "-7980700.0"),
        ("90377E-18", "9.0377e-14", "0.0"),
        ("-40432455E1", "-4.04325e+8", "-404324550.0"),
        ("-0E0", "-0", "-0.0"),
        ("-89316E-2", "-893.16", "-893.2"),
        ("-2351205E-16", "-2.35120e-10", "-0.0"),
        ("-54265E-30", "-5.4265e-26", "-0.0"),
        ("-2422346E-23", "-2.42235e-17", "-0.0"),
        ("-72656E-3", "-72.656", "-72.7"),
        ("60E-25", "6.0e-24", "0.0"),
        ("-235E7", "-2.35e+9", "-2350000000.0"),
        ("-726E0", "-726", "-726.0"),
        ("661E-29", "6.61e-27", "0.0"),
        ("-77E-22", "-7.7e-21", "-0.0"),
        ("-37665E-17", "-3.7665e-13", "-0.0"),
        (
            "-97874381753015860556E4",
            "-9.78744e+23",
            "-978743817530158605560000.0",
        ),
        ("-162E-8", "-0.00000162", "-0.0"),
        (
            "6117751466376184704610528279E2",
            "6.11775e+29",
            "611775146637618470461052827900.0",
        ),
        (
            "93443968337923456985E-2",
            "9.34440e+17",
            "934439683379234569.8",
        ),
        (
            "-8914600794286368125104535565E-21",
            "-8.91460e+6",
            "-8914600.8",
        ),
        (
            "-6511067708625734492383233075E3",
            "-6.51107e+30",
            "-6511067708625734492383233075000.0",
        ),
        ("-85E-18", "-8.5e-17", "-0.0"),
        ("1E5", "1e+5", "100000.0"),
        ("66E2", "6.6e+3", "6600.0"),
        ("574318E0", "574318", "574318.0"),
        ("-80835493259731326845E-23", "-0.000808355", "-0.0"),
        ("178666534228E-3", "1.78667e+8", "178666534.2"),
        ("97749E-23", "9.7749e-19", "0.0"),
        ("-3398785E-22", "-3.39878e-16", "-0.0"),
        ("22337E1", "2.2337e+5", "223370.0"),
        ("-31163E2", "-3.1163e+6", "-3116300.0"),
        ("8067845E-10", "0.000806784", "0.0"),
        ("-1326869E-1", "-132687", "-132686.9"),
        ("6E-12", "6e-12", "0.0"),
        ("39E-24", "3.9e-23", "0.0"),
        ("-385125E-19", "-3.85125e-14", "-0.0"),
        ("-939E-14", "-9.39e-12", "-0.0"),
        ("-649E6", "-6.49e+8", "-649000000.0"),
        ("-2500925E-19", "-2.50092e-13", "-0.0"),
        ("-44E-25", "-4.4e-24", "-0.0"),
        ("-87E-26", "-8.7e-25", "-0.0"),
        ("-65E5", "-6.5e+6", "-6500000.0"),
        ("751905E3", "7.51905e+8", "751905000.0"),
        ("35E-19", "3.5e-18", "0.0"),
        ("-759209E-17", "-7.59209e-12", "-0.0"),
        ("840882239095E-8", "8408.82", "8408.8"),
        ("138745E2", "1.38745e+7", "13874500.0"),
        (
            "-77332571141815713822E4",
            "-7.73326e+23",
            "-773325711418157138220000.0",
        ),
        ("41133339948516302498E-9", "4.11333e+10", "41133339948.5"),
        ("514E-27", "5.14e-25", "0.0"),
        ("-1E-14", "-1e-14", "-0.0"),
    ];

    #[test]
    fn formats_write_what_python_writes() {
        for (text, general, fixed) in FORMATS {
            let (negative, digits, exponent) = parse_python_text(text).unwrap();
            assert_eq!(
                format_general(negative, &digits, exponent, 6),
                *general,
                "{text} .6g"
            );
            assert_eq!(
                format_fixed(negative, &digits, exponent, 1),
                *fixed,
                "{text} .1f"
            );
        }
    }
}
