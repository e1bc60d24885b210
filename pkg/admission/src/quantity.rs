//! Resource quantities (`500m`, `1Gi`, `2e3`) as numbers, for comparisons and sums.

/// A quantity's value in base units (cores, bytes, counts); `None` when it does not parse.
pub fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * factor)
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

impl Format {
    /// The format `text` is written in.
    pub fn of(text: &str) -> Format {
        let suffix = text
            .trim()
            .trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'));
        if suffix.ends_with('i') {
            Format::BinarySi
        } else if suffix.len() > 1 && suffix.starts_with(['e', 'E']) {
            Format::DecimalExponent
        } else {
            Format::DecimalSi
        }
    }
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

/// `value` as upstream's `Quantity.String()` writes it in `format`: an integer mantissa with
/// the largest suffix that keeps it whole (`1500m`, `2k`, `1536Mi`); binary values below 1024
/// or with a fraction are written decimally, as upstream does.
pub fn canonical(value: f64, format: Format) -> String {
    let sign = if value < 0.0 { "-" } else { "" };
    let value = value.abs();
    // Nano-units as an integer: the whole part exactly (up to 2^53), the fraction rounded.
    let whole = value.trunc();
    let nanos = (whole as i128) * 1_000_000_000 + ((value - whole) * 1e9).round() as i128;
    if nanos == 0 {
        return "0".to_owned();
    }
    if format == Format::BinarySi && nanos % 1_000_000_000 == 0 && whole >= 1024.0 {
        let bytes = nanos / 1_000_000_000;
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
        let canon = |text: &str| canonical(parse(text).unwrap(), Format::of(text));
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
        assert_eq!(Format::of("3Gi"), Format::BinarySi);
        assert_eq!(Format::of("3e6"), Format::DecimalExponent);
        assert_eq!(Format::of("3M"), Format::DecimalSi);
    }
}
