//! The one place numbers become text. Every report goes through these functions so tables,
//! charts and pages agree on precision and units, and output is byte-identical everywhere
//! (Rust's float formatting is platform-independent; we never use locale-dependent output).

/// Text from result files made safe inside Markdown, in a table cell or a heading: pipes
/// and backslashes escaped, characters that start emphasis, code or raw HTML escaped, line
/// breaks flattened (a label with a newline and `# x` must not start a heading). Brackets
/// stay as they are: JSON paths and CIs are full of them, and without a `](` right after,
/// they are not a link.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '*' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    // `](` would still close a link opened by a `[` earlier in the same text.
    out.replace("](", "]\\(")
}

/// Three significant digits, no exponent for values people read (0.00123 .. 999999).
pub fn sig3(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let decimals = (2 - magnitude).max(0) as usize;
    format!("{value:.decimals$}")
}

/// A rate with an SI prefix: `fmt_si(1.23e12, "FLOP/s")` → `1.23 TFLOP/s`.
pub fn si(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    let prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in prefixes {
        if value.abs() >= scale {
            return format!("{} {prefix}{unit}", sig3(value / scale));
        }
    }
    format!("{} {unit}", sig3(value))
}

/// Seconds in the unit that reads best (s, ms, µs, ns).
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "n/a".into();
    }
    let (scale, unit) = match seconds.abs() {
        s if s >= 1.0 => (1.0, "s"),
        s if s >= 1e-3 => (1e3, "ms"),
        s if s >= 1e-6 => (1e6, "µs"),
        _ => (1e9, "ns"),
    };
    format!("{} {unit}", sig3(seconds * scale))
}

/// Bytes with a binary prefix: 268435456 → `256 MiB`.
pub fn bytes_binary(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{} {}", sig3(value), units[unit])
    }
}

/// A ratio as `2.50×`.
pub fn ratio(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    format!("{}×", sig3(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_precision_everywhere() {
        assert_eq!(sig3(1234.5678), "1235");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(0.012345), "0.0123");
        assert_eq!(sig3(1.5e-7), "1.50e-7");
        assert_eq!(sig3(f64::NAN), "n/a");
        assert_eq!(si(1.234e12, "FLOP/s"), "1.23 TFLOP/s");
        assert_eq!(si(118.4e9, "B/s"), "118 GB/s");
        assert_eq!(duration(0.0015), "1.50 ms");
        assert_eq!(duration(2.5e-6), "2.50 µs");
        assert_eq!(bytes_binary(268_435_456), "256 MiB");
        assert_eq!(bytes_binary(1000), "1000 B");
        assert_eq!(ratio(2.5), "2.50×");
    }
}
