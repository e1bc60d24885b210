//! Resource quantities (`500m`, `1Gi`, `2e3`): [`Quantity`] holds one exactly, as upstream's
//! `resource.Quantity` does (nano-units, rounded up from finer fractions, capped at the
//! largest int64 of whole units), and writes it back in upstream's canonical form.

use std::cmp::Ordering;
use std::fmt;

/// Nano-units in a whole unit.
const NANO: i128 = 1_000_000_000;
/// Upstream's cap on a parsed quantity: the largest int64, in whole units.
const MAX_NANOS: i128 = i64::MAX as i128 * NANO;
/// Upstream's `MaxMilliValue`: the largest value whose milli-units fit an int64.
pub const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// A quantity: its exact value and the format its text was written in (which its canonical
/// text keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
    /// Parses `text` as upstream's `ParseQuantity`: an optionally signed decimal number and a
    /// suffix (`m`, `k`, `Mi`, `e3`, ...). Precision below a nano-unit rounds up (away from
    /// zero); magnitudes beyond the largest int64 are capped to it.
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let split = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(split);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.len() + fraction.len() == 0 || fraction.contains('.') {
            return None;
        }
        let (powers_of_1024, exponent, format) = suffix_scale(suffix)?;
        let mut digits: Vec<u8> = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b - b'0')
            .collect();
        for _ in 0..powers_of_1024 {
            times(&mut digits, 1024);
        }
        // The power of ten of the last digit, in nano-units.
        let mut exponent = i64::from(exponent) - fraction.len() as i64 + 9;
        let mut round_up = false;
        if exponent < 0 {
            let keep = digits
                .len()
                .saturating_sub(exponent.unsigned_abs() as usize);
            round_up = digits[keep..].iter().any(|d| *d != 0);
            digits.truncate(keep);
            exponent = 0;
        }
        let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        let digits = &digits[first..];
        let magnitude = if digits.is_empty() {
            i128::from(round_up)
        } else if digits.len() as i64 + exponent > 28 {
            MAX_NANOS
        } else {
            let mantissa = digits.iter().fold(0i128, |n, d| n * 10 + i128::from(*d));
            // At most 28 digits in all: no overflow.
            (mantissa * 10i128.pow(exponent as u32) + i128::from(round_up)).min(MAX_NANOS)
        };
        Some(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
            format,
        })
    }

    /// `self + other`, keeping `self`'s format (upstream's `Add`).
    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            ..self
        }
    }

    /// Upstream's `Value()`: whole units, rounded up (away from zero); saturates beyond an
    /// int64.
    pub fn value(self) -> i64 {
        scaled(self.nanos, NANO)
    }

    /// Upstream's `MilliValue()`: milli-units, rounded up (away from zero); saturates beyond
    /// an int64.
    pub fn milli_value(self) -> i64 {
        scaled(self.nanos, NANO / 1000)
    }

    /// The value in base units as a float, for callers that only estimate.
    pub fn as_f64(self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// Compares the values (upstream's `Cmp`), whatever the formats.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    /// Upstream's `Quantity.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&canonical(self.nanos, self.format))
    }
}

/// `nanos` in units of `unit` nano-units, rounded away from zero, saturated to an int64.
fn scaled(nanos: i128, unit: i128) -> i64 {
    let unit = unit.unsigned_abs();
    let magnitude = nanos.unsigned_abs().div_ceil(unit);
    let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
    if nanos < 0 { -magnitude } else { magnitude }
}

/// Multiplies a decimal digit string by `factor` in place.
fn times(digits: &mut Vec<u8>, factor: u32) {
    let mut carry = 0u32;
    for d in digits.iter_mut().rev() {
        let n = u32::from(*d) * factor + carry;
        *d = (n % 10) as u8;
        carry = n / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// A suffix's scale: powers of 1024, the power of ten, and the format it implies.
fn suffix_scale(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |exponent| Some((0, exponent, Format::DecimalSi));
    let binary = |powers| Some((powers, 0, Format::BinarySi));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        e if e.starts_with(['e', 'E']) => Some((0, e[1..].parse().ok()?, Format::DecimalExponent)),
        _ => None,
    }
}

/// A quantity's value in base units (cores, bytes, counts) as a float; `None` when it does
/// not parse.
pub fn parse(text: &str) -> Option<f64> {
    Quantity::parse(text).map(Quantity::as_f64)
}

/// A value written back as a quantity: whole numbers plain, fractions in milli-units.
pub fn format(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{}", value.round() as i64)
    } else {
        format!("{}m", (value * 1000.0).round() as i64)
    }
}

/// How a quantity is written (upstream's `Format`); its canonical form keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Powers of two: `Ki`, `Mi`, ...
    BinarySi,
    /// Powers of ten with SI suffixes: `m`, `k`, `M`, ...
    DecimalSi,
    /// Powers of ten as exponents: `e3`.
    DecimalExponent,
}

const DECIMAL_SUFFIXES: [(i32, &str); 10] = [
    (18, "E"),
    (15, "P"),
    (12, "T"),
    (9, "G"),
    (6, "M"),
    (3, "k"),
    (0, ""),
    (-3, "m"),
    (-6, "u"),
    (-9, "n"),
];

/// `nanos` as upstream's `Quantity.String()` writes it in `format`: an integer mantissa with
/// the largest suffix that keeps it whole (`1500m`, `2k`, `1536Mi`); binary values below 1024
/// or with a fraction are written decimally, as upstream does.
fn canonical(nanos: i128, format: Format) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.abs();
    if nanos == 0 {
        return "0".to_owned();
    }
    if format == Format::BinarySi && nanos % NANO == 0 && nanos >= 1024 * NANO {
        let bytes = nanos / NANO;
        let (mantissa, suffix) = ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"]
            .iter()
            .zip((1..=6u32).rev())
            .map(|(suffix, power)| (1024i128.pow(power), *suffix))
            .find(|(unit, _)| bytes % unit == 0)
            .map_or((bytes, ""), |(unit, suffix)| (bytes / unit, suffix));
        return format!("{sign}{mantissa}{suffix}");
    }
    let (exponent, suffix) = DECIMAL_SUFFIXES
        .iter()
        .copied()
        .find(|(exponent, _)| nanos % 10i128.pow((exponent + 9) as u32) == 0)
        .unwrap_or((-9, "n"));
    let mantissa = nanos / 10i128.pow((exponent + 9) as u32);
    match format {
        Format::DecimalExponent if exponent != 0 => format!("{sign}{mantissa}e{exponent}"),
        Format::DecimalExponent => format!("{sign}{mantissa}"),
        _ => format!("{sign}{mantissa}{suffix}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_and_format() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("1Gi"), Some(1073741824.0));
        assert_eq!(parse("2k"), Some(2000.0));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("12"), Some(12.0));
        assert_eq!(parse("x"), None);
        assert_eq!(format(2.0), "2");
        assert_eq!(format(0.25), "250m");
    }

    #[test]
    fn canonical_forms_are_upstreams() {
        let canon = |text: &str| Quantity::parse(text).unwrap().to_string();
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1500m"), "1500m");
        assert_eq!(canon("2000"), "2k");
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1024Mi"), "1Gi");
        assert_eq!(canon("1.5Gi"), "1536Mi");
        assert_eq!(canon("512Ki"), "512Ki");
        // Binary values below 1Ki or with a fraction are written decimally.
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("1E"), "1E");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("-1500m"), "-1500m");
        assert_eq!(canon("+2Gi"), "2Gi");
        assert_eq!(canon("3e6"), "3e6");
        assert_eq!(canon("3000k"), "3M");
    }

    #[test]
    fn quantities_are_exact() {
        let q = |text: &str| Quantity::parse(text).unwrap();
        // 0.1 + 0.2 is 0.3, and 1.1 is 1100m, as neither is as a float.
        assert_eq!(
            q("0.1").plus(q("0.2")).cmp_value(&q("300m")),
            Ordering::Equal
        );
        assert_eq!(q("1.1").cmp_value(&q("1100m")), Ordering::Equal);
        assert_eq!(q("1.1").milli_value(), 1100);
        // One byte more than 1Ei is more (floats cannot tell them apart).
        let exbi = q("1Ei");
        let more = q("1152921504606846977");
        assert_eq!(more.cmp_value(&exbi), Ordering::Greater);
        assert_eq!(more.value() - exbi.value(), 1);
        assert_eq!(more.to_string(), "1152921504606846977");
        // Fractions of binary suffixes are exact too.
        assert_eq!(q("0.1Ki").milli_value(), 102_400);
        // Below a nano-unit rounds up; Value and MilliValue round up.
        assert_eq!(q("0.1n").to_string(), "1n");
        assert_eq!(q("1e-20").to_string(), "1e-9");
        assert_eq!(q("100u").milli_value(), 1);
        assert_eq!(q("1001m").value(), 2);
        assert_eq!(q("-1001m").value(), -2);
        // Beyond the largest int64 of whole units is capped to it.
        assert_eq!(q("1e30").value(), i64::MAX);
        assert_eq!(q("100Ei").value(), i64::MAX);
        assert_eq!(q("9223372036854775807").milli_value(), i64::MAX);
        assert_eq!(q("0e30").value(), 0);
        for bad in ["", ".", "1.2.3", "1e", "1x", "1 Gi", "--1", "1ki"] {
            assert!(Quantity::parse(bad).is_none(), "{bad:?}");
        }
    }
}
