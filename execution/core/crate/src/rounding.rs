//! Rounding on purpose, as Python's `decimal` contexts do it: to a number of decimal places (the
//! warehouse's scale, a report's cents) and to 28 significant digits (a currency conversion).
//!
//! A [`Wide`] decimal holds any number of digits (a sign, the digits, a power-of-ten exponent, as
//! a Python `Decimal` does, negative zero included), so an amount of any width is rounded rather
//! than refused, and each result has the digits and exponent Python gives: half even, the same
//! text. [`convert`] is the currency conversion (`tickwave.instruments.convert`), [`fill_figures`]
//! the rounding of the figures a fill's record carries.

use std::fmt;

use crate::money::{parse_python_text, write_python_text, Dec, NotADecimal, Overflow};
use crate::wide_int::Int;

/// Significant digits of a conversion (Python's `CONVERSION_CONTEXT`: `prec=28`, half even).
pub const CONVERSION_DIGITS: usize = 28;
/// Decimal places of the warehouse's money columns (`Decimal(38, 18)`).
pub const WAREHOUSE_PLACES: i64 = 18;

/// A decimal of any width: `(-1)^negative x digits x 10^exponent` (digits most significant first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wide {
    pub negative: bool,
    /// No leading zeros; a zero is `[0]`.
    pub digits: Vec<u8>,
    pub exponent: i64,
}

/// A conversion's rate that cannot divide (zero), or a rate wider than a float's digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRate;

impl fmt::Display for BadRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a conversion rate must be a positive float")
    }
}

fn stripped(mut digits: Vec<u8>) -> Vec<u8> {
    let leading = digits
        .iter()
        .take_while(|d| **d == 0)
        .count()
        .min(digits.len().saturating_sub(1));
    digits.drain(..leading);
    if digits.is_empty() {
        digits.push(0);
    }
    digits
}

impl Wide {
    pub fn new(negative: bool, digits: Vec<u8>, exponent: i64) -> Wide {
        Wide {
            negative,
            digits: stripped(digits),
            exponent,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.digits == [0]
    }

    /// The exact decimal of a core amount.
    pub fn from_dec(amount: Dec) -> Wide {
        let digits = amount
            .coefficient
            .magnitude_digits()
            .bytes()
            .map(|b| b - b'0')
            .collect();
        Wide::new(amount.is_negative(), digits, amount.exponent as i64)
    }

    /// The same decimal as a `Dec` (its coefficient and exponent, a zero's sign as `Dec::parse` of its
    /// text keeps it); beyond a `Dec`'s 77 digits or its exponent's range, `Overflow`.
    pub fn to_dec(&self) -> Result<Dec, Overflow> {
        // 18 digits at a time (each step's value within the final one's: no overflow on the way that
        // the digits one by one would not meet)
        let mut coefficient = Int::ZERO;
        for chunk in self.digits.chunks(18) {
            let value = chunk
                .iter()
                .fold(0i128, |value, &digit| value * 10 + i128::from(digit));
            coefficient = coefficient
                .checked_mul(Int::from_i128(10i128.pow(chunk.len() as u32)))
                .and_then(|shifted| shifted.checked_add(Int::from_i128(value)))
                .ok_or(Overflow)?;
        }
        let exponent = i32::try_from(self.exponent).map_err(|_| Overflow)?;
        Ok(Dec::of(
            if self.negative {
                coefficient.negated()
            } else {
                coefficient
            },
            exponent,
        ))
    }

    /// Read a finite decimal as Python's `str(Decimal)` writes it (`-0E-18`, `1.5E+3`, `-0.00`).
    pub fn parse(text: &str) -> Result<Wide, NotADecimal> {
        let (negative, digits, exponent) = parse_python_text(text)?;
        Ok(Wide::new(negative, digits, exponent))
    }

    /// The value negated (a zero's sign too, as Python's `copy_negate`).
    pub fn negated(&self) -> Wide {
        Wide {
            negative: !self.negative,
            digits: self.digits.clone(),
            exponent: self.exponent,
        }
    }

    /// The digits written at the smaller exponent `to` (zeros appended).
    fn digits_at(&self, to: i64) -> Vec<u8> {
        let mut digits = self.digits.clone();
        digits.resize(digits.len() + (self.exponent - to) as usize, 0);
        digits
    }

    /// `self + other`, exactly, at the smaller exponent (Python's exact context: `x + -x` is `0`, `-0 + -0` is `-0`).
    pub fn add(&self, other: &Wide) -> Wide {
        let exponent = self.exponent.min(other.exponent);
        let (a, b) = (self.digits_at(exponent), other.digits_at(exponent));
        let width = a.len().max(b.len()) + 1;
        let pad = |digits: Vec<u8>| {
            let mut padded = vec![0u8; width - digits.len()];
            padded.extend(digits);
            padded
        };
        let (a, b) = (pad(a), pad(b));
        if self.negative == other.negative {
            let mut sum = vec![0u8; width];
            let mut carry = 0u8;
            for at in (0..width).rev() {
                let total = a[at] + b[at] + carry;
                sum[at] = total % 10;
                carry = total / 10;
            }
            return Wide::new(self.negative, sum, exponent);
        }
        // Opposite signs: the larger magnitude less the smaller, with the larger's sign.
        let (large, small, negative) = if a >= b {
            (a, b, self.negative)
        } else {
            (b, a, other.negative)
        };
        let mut difference = vec![0u8; width];
        let mut borrow = 0i8;
        for at in (0..width).rev() {
            let mut step = large[at] as i8 - small[at] as i8 - borrow;
            borrow = i8::from(step < 0);
            if step < 0 {
                step += 10;
            }
            difference[at] = step as u8;
        }
        let result = Wide::new(negative, difference, exponent);
        if result.is_zero() {
            return Wide::new(false, vec![0], exponent);
        }
        result
    }

    /// The nearest float (as Python's `float(Decimal)`: correctly rounded).
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Round half even to `count` fewer digits (the exponent grows by `count`).
    fn drop_digits(&self, count: usize) -> Wide {
        if count == 0 {
            return self.clone();
        }
        let length = self.digits.len();
        let exponent = self.exponent + count as i64;
        if count > length {
            // Every digit goes and the first dropped one is an implied zero: below half.
            return Wide::new(self.negative, vec![0], exponent);
        }
        let kept = &self.digits[..length - count];
        let first = self.digits[length - count];
        let rest_nonzero = self.digits[length - count + 1..].iter().any(|d| *d != 0);
        let last_odd = kept.last().is_some_and(|d| d % 2 == 1);
        let up = first > 5 || (first == 5 && (rest_nonzero || last_odd));
        let mut digits = kept.to_vec();
        if up {
            let mut at = digits.len();
            loop {
                if at == 0 {
                    digits.insert(0, 1);
                    break;
                }
                at -= 1;
                if digits[at] == 9 {
                    digits[at] = 0;
                } else {
                    digits[at] += 1;
                    break;
                }
            }
        }
        Wide::new(self.negative, digits, exponent)
    }

    /// Python's `quantize` to `places` decimals, half even: the exponent becomes `-places`.
    pub fn quantize(&self, places: i64) -> Wide {
        let target = -places;
        if self.exponent >= target {
            let mut digits = self.digits.clone();
            digits.resize(digits.len() + (self.exponent - target) as usize, 0);
            return Wide::new(self.negative, digits, target);
        }
        self.drop_digits((target - self.exponent) as usize)
    }

    /// The amount unchanged when it has at most `places` decimals, else [`Wide::quantize`]d to them.
    pub fn within_places(&self, places: i64) -> Wide {
        if self.exponent >= -places {
            self.clone()
        } else {
            self.quantize(places)
        }
    }

    /// Round to `precision` significant digits, half even (Python's context rounding of a result).
    pub fn to_precision(&self, precision: usize) -> Wide {
        if self.digits.len() <= precision {
            return self.clone();
        }
        let rounded = self.drop_digits(self.digits.len() - precision);
        if rounded.digits.len() > precision {
            // 999.. carried into one more digit: its last digit is a zero
            let mut digits = rounded.digits;
            digits.pop();
            return Wide::new(rounded.negative, digits, rounded.exponent + 1);
        }
        rounded
    }

    /// The exact product, rounded to `precision` significant digits.
    pub fn multiply(&self, other: &Wide, precision: usize) -> Wide {
        let mut product = vec![0u32; self.digits.len() + other.digits.len()];
        for (i, a) in self.digits.iter().enumerate().rev() {
            for (j, b) in other.digits.iter().enumerate().rev() {
                product[i + j + 1] += u32::from(*a) * u32::from(*b);
            }
        }
        for at in (1..product.len()).rev() {
            let carry = product[at] / 10;
            product[at] %= 10;
            product[at - 1] += carry;
        }
        let digits = product.into_iter().map(|d| d as u8).collect();
        Wide::new(
            self.negative != other.negative,
            digits,
            self.exponent + other.exponent,
        )
        .to_precision(precision)
    }

    /// The quotient rounded to `precision` significant digits, as Python's `Context.divide`:
    /// an exact quotient gets as close to the ideal exponent (the difference of the exponents)
    /// as its trailing zeros allow. The divisor has at most 38 digits (a float's 17 here).
    pub fn divide(&self, divisor: &Wide, precision: usize) -> Result<Wide, BadRate> {
        if divisor.is_zero() || divisor.digits.len() > 38 {
            return Err(BadRate);
        }
        let negative = self.negative != divisor.negative;
        let ideal = self.exponent - divisor.exponent;
        if self.is_zero() {
            return Ok(Wide::new(negative, vec![0], ideal).to_precision(precision));
        }
        let shift = divisor.digits.len() as i64 - self.digits.len() as i64 + precision as i64 + 1;
        let mut exponent = ideal - shift;
        let mut dividend = self.digits.clone();
        let mut dropped_nonzero = false;
        if shift >= 0 {
            dividend.resize(dividend.len() + shift as usize, 0);
        } else {
            // floor(a / (b x 10^k)) = floor(floor(a / 10^k) / b): the k digits dropped join the remainder.
            let keep = dividend.len() - (-shift) as usize;
            dropped_nonzero = dividend[keep..].iter().any(|d| *d != 0);
            dividend.truncate(keep);
        }
        let by: u128 = divisor
            .digits
            .iter()
            .fold(0u128, |value, d| value * 10 + u128::from(*d));
        let mut quotient = Vec::with_capacity(dividend.len());
        let mut remainder: u128 = 0;
        if by < 10u128.pow(18) {
            // A float's rate (17 digits): each step fits 64 bits, several times faster than 128.
            let (by, mut small) = (by as u64, 0u64);
            for digit in dividend {
                let value = small * 10 + u64::from(digit); // < 10 x 10^18: fits
                quotient.push((value / by) as u8);
                small = value % by;
            }
            remainder = u128::from(small);
        } else {
            for digit in dividend {
                let value = remainder * 10 + u128::from(digit); // < 10 x 10^38: fits
                quotient.push((value / by) as u8);
                remainder = value % by;
            }
        }
        let mut quotient = stripped(quotient);
        if remainder != 0 || dropped_nonzero {
            // Not exact: a last digit of 0 or 5 moves up by one so the rounding sees the remainder.
            if quotient.last().is_some_and(|d| d % 5 == 0) {
                *quotient.last_mut().expect("a quotient has a digit") += 1;
            }
        } else {
            while exponent < ideal && quotient.len() > 1 && quotient.last() == Some(&0) {
                quotient.pop();
                exponent += 1;
            }
        }
        Ok(Wide::new(negative, quotient, exponent).to_precision(precision))
    }
}

impl fmt::Display for Wide {
    /// As Python's `str(Decimal)` (scientific form for tiny and positive-exponent amounts).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        write_python_text(f, self.negative, &digits, self.exponent)
    }
}

/// Convert `amount` along a route of `(mid, multiplies)` pairs, each step rounded to 28 digits.
///
/// Each mid is read as the exact decimal of its shortest text; a pair multiplies (the amount is in
/// its base) or divides (in its quote).
pub fn convert(amount: &Wide, route: &[(f64, bool)]) -> Result<Wide, BadRate> {
    let mut amount = amount.clone();
    for &(mid, multiplies) in route {
        let rate = Wide::from_dec(Dec::from_float(mid).map_err(|_| BadRate)?);
        amount = if multiplies {
            amount.multiply(&rate, CONVERSION_DIGITS)
        } else {
            amount.divide(&rate, CONVERSION_DIGITS)?
        };
    }
    Ok(amount)
}

/// What a fill's record carries of its booking, at the warehouse's scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillFigures {
    /// Realised P&L in the quote currency: price x lots x contract size.
    pub realized_quote: Wide,
    /// The same in the account currency, or None when no route converts it.
    pub realized_account: Option<Wide>,
    pub entry_value_after: Wide,
}

/// Round a booking's figures for the fill's record: the realised P&L times the contract size (exact)
/// to 18 decimals, converted along `route` (None: no rate) and rounded to 18 decimals again; a zero
/// P&L is zero in the account currency without a rate. Prices of up to 16 decimals are unchanged.
pub fn fill_figures(
    realized: &Wide,
    entry_value_after: &Wide,
    contract_size: f64,
    route: Option<&[(f64, bool)]>,
) -> Result<FillFigures, BadRate> {
    let contract = Wide::from_dec(Dec::from_float(contract_size).map_err(|_| BadRate)?);
    let exact = realized.multiply(&contract, usize::MAX);
    let realized_quote = exact.within_places(WAREHOUSE_PLACES);
    let realized_account = if realized_quote.is_zero() {
        Some(Wide::new(false, vec![0], 0))
    } else {
        match route {
            None => None,
            Some(route) => Some(convert(&realized_quote, route)?.within_places(WAREHOUSE_PLACES)),
        }
    };
    Ok(FillFigures {
        realized_quote,
        realized_account,
        entry_value_after: entry_value_after.within_places(WAREHOUSE_PLACES),
    })
}

/// A decimal from its text, for the crate's tests.
#[cfg(test)]
pub(crate) fn w(text: &str) -> Wide {
    Wide::parse(text).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_decimal_is_the_dec_its_text_reads_as() {
        for text in [
            "0",
            "-0",
            "0.50",
            "-0.00",
            "0E-18",
            "-0E-18",
            "1E+1",
            "1.5E-7",
            "123.4560",
            "0E+3",
            "-98765432109876543210.123456789012345678",
        ] {
            let wide = w(text);
            assert_eq!(
                wide.to_dec(),
                Ok(Dec::parse(&wide.to_string()).unwrap()),
                "{text}"
            );
        }
        let wider = Wide::new(false, vec![9; 78], 0);
        assert_eq!(wider.to_dec(), Err(Overflow), "78 digits");
        for count in [17, 18, 19, 36, 37, 77] {
            let digits: Vec<u8> = (0..count).map(|at| (at * 7 % 10) as u8).collect();
            let wide = Wide::new(true, digits, -3);
            assert_eq!(
                wide.to_dec(),
                Ok(Dec::parse(&wide.to_string()).unwrap()),
                "{count} digits"
            );
        }
        assert_eq!(Wide::new(true, vec![1], 1 << 40).to_dec(), Err(Overflow));
    }

    #[test]
    fn text_round_trips_as_python_writes_it() {
        for text in [
            "0", "-0", "0.50", "-0.00", "0E-18", "-0E-18", "1E+1", "1.5E-7", "123.4560", "0E+3",
        ] {
            assert_eq!(w(text).to_string(), text);
        }
        assert_eq!(w("0.0000001").to_string(), "1E-7");
    }

    #[test]
    fn quantize_rounds_half_even_and_keeps_the_sign_of_a_zero() {
        assert_eq!(w("0.125").quantize(2).to_string(), "0.12");
        assert_eq!(w("0.135").quantize(2).to_string(), "0.14");
        assert_eq!(w("0.1250001").quantize(2).to_string(), "0.13");
        assert_eq!(w("-0.004").quantize(2).to_string(), "-0.00");
        assert_eq!(w("9.995").quantize(2).to_string(), "10.00");
        assert_eq!(w("1.5").quantize(2).to_string(), "1.50");
        assert_eq!(w("0.5").quantize(0).to_string(), "0");
        assert_eq!(w("0.0005").quantize(2).to_string(), "0.00");
        assert_eq!(w("1E+3").quantize(2).to_string(), "1000.00");
    }

    #[test]
    fn within_places_keeps_an_amount_that_has_few_enough_decimals() {
        assert_eq!(w("1.5").within_places(2).to_string(), "1.5");
        assert_eq!(w("0.125").within_places(2).to_string(), "0.12");
        assert_eq!(w("0E-20").within_places(18).to_string(), "0E-18");
        assert_eq!(
            w("12345678901234567890123456789.5")
                .within_places(0)
                .to_string(),
            "12345678901234567890123456790"
        );
    }

    #[test]
    fn products_and_quotients_round_to_28_digits_as_python() {
        // Python: Context(prec=28).multiply / .divide
        assert_eq!(
            w("1234567890.123456789012345678")
                .multiply(&w("1.0850300000000001"), 28)
                .to_string(),
            "1339543197.820654443238854443"
        );
        assert_eq!(
            w("1").divide(&w("3"), 28).unwrap().to_string(),
            "0.3333333333333333333333333333"
        );
        assert_eq!(w("100").divide(&w("4"), 28).unwrap().to_string(), "25");
        assert_eq!(w("1.00").divide(&w("4"), 28).unwrap().to_string(), "0.25");
        assert_eq!(w("1E+2").divide(&w("4"), 28).unwrap().to_string(), "25");
        assert_eq!(w("2.0").divide(&w("0.5"), 28).unwrap().to_string(), "4");
        assert_eq!(
            w("-0.00").divide(&w("150.5"), 28).unwrap().to_string(),
            "-0.0"
        );
        assert_eq!(
            w("9.999999999999999999999999999999")
                .multiply(&w("1"), 28)
                .to_string(),
            "10.00000000000000000000000000"
        );
        assert!(w("1").divide(&w("0"), 28).is_err());
        // Divisors past 18 digits take the 128-bit steps.
        assert_eq!(
            w("1")
                .divide(&w("3000000000000000000001"), 28)
                .unwrap()
                .to_string(),
            "3.333333333333333333332222222E-22"
        );
        assert_eq!(
            w("7.5")
                .divide(&w("2500000000000000000000"), 28)
                .unwrap()
                .to_string(),
            "3E-21"
        );
    }

    #[test]
    fn a_fill_figure_with_more_than_18_decimals_is_rounded_half_even() {
        let figures = fill_figures(
            &w("0.00000000000000000125"),
            &w("1.10"),
            100000.0,
            Some(&[(1.25, true)]),
        )
        .unwrap();
        assert_eq!(figures.realized_quote.to_string(), "1.25000E-13");
        assert_eq!(figures.realized_account.unwrap().to_string(), "1.56250E-13");
        assert_eq!(figures.entry_value_after.to_string(), "1.10");
        let zero = fill_figures(&w("0.0"), &w("0"), 100000.0, None).unwrap();
        assert_eq!(zero.realized_account.unwrap().to_string(), "0");
    }
}
