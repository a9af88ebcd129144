//! A signed 256-bit integer (every number of 77 decimal digits) for the coefficients of exact amounts.
//!
//! Sign and magnitude (four 64-bit limbs, least significant first); a zero is never negative.
//! Every operation that could exceed 256 bits is checked (`None`), never wrapped.

use std::cmp::Ordering;

type Limbs = [u64; 4];

/// A signed integer of up to 256 bits of magnitude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Int {
    negative: bool,
    magnitude: Limbs,
}

const TEN_POW_19: u64 = 10_000_000_000_000_000_000;

fn is_zero_limbs(limbs: &Limbs) -> bool {
    limbs.iter().all(|limb| *limb == 0)
}

fn cmp_limbs(a: &Limbs, b: &Limbs) -> Ordering {
    for at in (0..4).rev() {
        match a[at].cmp(&b[at]) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

fn add_limbs(a: &Limbs, b: &Limbs) -> Option<Limbs> {
    let mut sum = [0u64; 4];
    let mut carry = 0u128;
    for at in 0..4 {
        let total = u128::from(a[at]) + u128::from(b[at]) + carry;
        sum[at] = total as u64;
        carry = total >> 64;
    }
    (carry == 0).then_some(sum)
}

/// `a - b` for `a >= b`.
fn sub_limbs(a: &Limbs, b: &Limbs) -> Limbs {
    let mut difference = [0u64; 4];
    let mut borrow = false;
    for at in 0..4 {
        let (step, first) = a[at].overflowing_sub(b[at]);
        let (step, second) = step.overflowing_sub(u64::from(borrow));
        difference[at] = step;
        borrow = first || second;
    }
    difference
}

fn mul_limbs(a: &Limbs, b: &Limbs) -> Option<Limbs> {
    let mut product = [0u64; 8];
    for i in 0..4 {
        if a[i] == 0 {
            continue;
        }
        let mut carry = 0u128;
        for j in 0..4 {
            let total = u128::from(a[i]) * u128::from(b[j]) + u128::from(product[i + j]) + carry;
            product[i + j] = total as u64;
            carry = total >> 64;
        }
        let mut at = i + 4;
        while carry != 0 {
            let total = u128::from(product[at]) + carry;
            product[at] = total as u64;
            carry = total >> 64;
            at += 1;
        }
    }
    if product[4..].iter().any(|limb| *limb != 0) {
        return None;
    }
    Some([product[0], product[1], product[2], product[3]])
}

/// Divide in place by a small divisor; return the remainder.
fn div_small(limbs: &mut Limbs, divisor: u64) -> u64 {
    let mut remainder = 0u128;
    for at in (0..4).rev() {
        let value = (remainder << 64) | u128::from(limbs[at]);
        limbs[at] = (value / u128::from(divisor)) as u64;
        remainder = value % u128::from(divisor);
    }
    remainder as u64
}

impl Int {
    pub const ZERO: Int = Int {
        negative: false,
        magnitude: [0; 4],
    };

    fn from_parts(negative: bool, magnitude: Limbs) -> Int {
        Int {
            negative: negative && !is_zero_limbs(&magnitude),
            magnitude,
        }
    }

    pub fn from_i128(value: i128) -> Int {
        let magnitude = value.unsigned_abs();
        Int::from_parts(
            value < 0,
            [magnitude as u64, (magnitude >> 64) as u64, 0, 0],
        )
    }

    pub fn is_zero(self) -> bool {
        is_zero_limbs(&self.magnitude)
    }

    pub fn is_negative(self) -> bool {
        self.negative
    }

    pub fn is_positive(self) -> bool {
        !self.negative && !self.is_zero()
    }

    pub fn signum(self) -> i32 {
        if self.is_zero() {
            0
        } else if self.negative {
            -1
        } else {
            1
        }
    }

    pub fn negated(self) -> Int {
        Int::from_parts(!self.negative, self.magnitude)
    }

    pub fn abs(self) -> Int {
        Int::from_parts(false, self.magnitude)
    }

    pub fn checked_add(self, other: Int) -> Option<Int> {
        if self.negative == other.negative {
            return add_limbs(&self.magnitude, &other.magnitude)
                .map(|sum| Int::from_parts(self.negative, sum));
        }
        Some(match cmp_limbs(&self.magnitude, &other.magnitude) {
            Ordering::Less => {
                Int::from_parts(other.negative, sub_limbs(&other.magnitude, &self.magnitude))
            }
            _ => Int::from_parts(self.negative, sub_limbs(&self.magnitude, &other.magnitude)),
        })
    }

    pub fn checked_mul(self, other: Int) -> Option<Int> {
        mul_limbs(&self.magnitude, &other.magnitude)
            .map(|product| Int::from_parts(self.negative != other.negative, product))
    }

    /// `self x 10 + digit` (reading digits), checked.
    pub fn checked_push_digit(self, digit: u8) -> Option<Int> {
        self.checked_mul(Int::from_i128(10))?
            .checked_add(Int::from_i128(i128::from(digit)))
    }

    /// `10^n`, or None beyond 256 bits.
    pub fn pow10(n: u32) -> Option<Int> {
        let mut power = Int::from_i128(1);
        let mut left = n;
        while left >= 38 {
            power = power.checked_mul(Int::from_i128(10i128.pow(38)))?;
            left -= 38;
        }
        power.checked_mul(Int::from_i128(10i128.pow(left)))
    }

    /// The magnitude as a `u128`, or None when it needs more than 128 bits.
    pub fn magnitude_u128(self) -> Option<u128> {
        let [low, high, rest @ ..] = self.magnitude;
        (rest == [0, 0]).then(|| (u128::from(high) << 64) | u128::from(low))
    }

    /// Write the magnitude's decimal digits at the start of `out` (78 places hold any); return how many.
    pub fn push_magnitude_digits(self, out: &mut [u8; 80]) -> usize {
        let mut limbs = self.magnitude;
        let mut chunks = [0u64; 5]; // 10^19 per chunk: 2^256 < 10^95
        let mut count = 0;
        while !is_zero_limbs(&limbs) {
            chunks[count] = div_small(&mut limbs, TEN_POW_19);
            count += 1;
        }
        if count == 0 {
            out[0] = b'0';
            return 1;
        }
        let mut len = 0;
        for (place, chunk) in chunks[..count].iter().rev().enumerate() {
            let mut part = [b'0'; 19];
            let mut rest = *chunk;
            let mut at = part.len();
            while rest > 0 {
                at -= 1;
                part[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let from = if place == 0 { at.min(18) } else { 0 }; // the first chunk without its leading zeros
            let piece = &part[from..];
            out[len..len + piece.len()].copy_from_slice(piece);
            len += piece.len();
        }
        len
    }

    /// The magnitude's decimal digits (`"0"` for zero).
    pub fn magnitude_digits(self) -> String {
        let mut digits = [0u8; 80];
        let count = self.push_magnitude_digits(&mut digits);
        String::from_utf8_lossy(&digits[..count]).into_owned()
    }
}

impl PartialOrd for Int {
    fn partial_cmp(&self, other: &Int) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Int {
    fn cmp(&self, other: &Int) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => cmp_limbs(&self.magnitude, &other.magnitude),
            (true, true) => cmp_limbs(&other.magnitude, &self.magnitude),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_agrees_with_i128_where_it_fits() {
        let values = [
            0i128,
            1,
            -1,
            7,
            -12345,
            i64::MAX as i128,
            -(1i128 << 100),
            10i128.pow(37),
        ];
        for a in values {
            for b in values {
                let (x, y) = (Int::from_i128(a), Int::from_i128(b));
                assert_eq!(
                    x.checked_add(y),
                    a.checked_add(b).map(Int::from_i128),
                    "{a} + {b}"
                );
                if let Some(product) = a.checked_mul(b) {
                    assert_eq!(x.checked_mul(y), Some(Int::from_i128(product)), "{a} x {b}");
                }
                assert_eq!(x.cmp(&y), a.cmp(&b), "{a} ? {b}");
                assert_eq!(x.negated().checked_add(x), Some(Int::ZERO));
            }
            assert_eq!(
                Int::from_i128(a).magnitude_digits(),
                a.unsigned_abs().to_string()
            );
        }
    }

    #[test]
    fn every_77_digit_number_fits_and_twice_the_largest_does_not() {
        let wide = Int::pow10(76).unwrap();
        assert_eq!(wide.magnitude_digits(), format!("1{}", "0".repeat(76)));
        assert!(Int::pow10(77).is_some()); // 2^256 is about 1.16 x 10^77
        assert!(Int::pow10(78).is_none());
        let nines = (0..77)
            .try_fold(Int::ZERO, |n, _| n.checked_push_digit(9))
            .unwrap();
        assert_eq!(nines.magnitude_digits(), "9".repeat(77));
        assert_eq!(Int::ZERO.magnitude_digits(), "0");
        assert_eq!(
            Int::from_i128(-10_000_000_000_000_000_000).magnitude_digits(),
            "10000000000000000000"
        );
        assert!(nines.checked_add(nines).is_none());
        assert_eq!(nines.magnitude_u128(), None);
        assert!(nines.checked_mul(Int::from_i128(10)).is_none());
        assert_eq!(nines.negated().checked_add(nines), Some(Int::ZERO));
    }
}
