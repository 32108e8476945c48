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

/// Tokens/s of a decode step, saying when it covers only part of the model and what the
/// whole model implies: `20.9 tokens/s per layer (0.653 tokens/s for all 32 layers)`.
pub fn decode_rate(spec: &silirep_core::KernelSpec, tokens_per_s: f64) -> String {
    match decode_scope(spec, tokens_per_s) {
        Some(scope) => format!("{} tokens/s {scope}", sig3(tokens_per_s)),
        None => format!("{} tokens/s", sig3(tokens_per_s)),
    }
}

/// For a decode through part of its model: `per layer (0.653 tokens/s for all 32 layers)`;
/// `None` for anything else.
pub fn decode_scope(spec: &silirep_core::KernelSpec, tokens_per_s: f64) -> Option<String> {
    let silirep_core::KernelSpec::Decode { layers, .. } = spec else {
        return None;
    };
    let (model_layers, whole) = spec.whole_model_decode_rate(tokens_per_s)?;
    let scope = if *layers == 1 {
        "per layer".to_string()
    } else {
        format!("per {layers} layers")
    };
    Some(format!(
        "{scope} ({} tokens/s for all {model_layers} layers)",
        sig3(whole)
    ))
}

/// A fraction as a percentage with the precision a CI width needs: 0.031 → `3.1%`,
/// 0.01 → `1%`, 0.31 → `31%`, 0.0004 → `0.0400%`.
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "n/a".into();
    }
    let p = fraction * 100.0;
    if p.abs() >= 10.0 {
        format!("{p:.0}%")
    } else if p.abs() >= 0.1 {
        let text = format!("{p:.1}");
        format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
    } else {
        format!("{}%", sig3(p))
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
        assert_eq!(percent(0.031), "3.1%");
        assert_eq!(percent(0.01), "1%");
        assert_eq!(percent(0.3149), "31%");
        assert_eq!(percent(0.0004), "0.0400%");
    }

    #[test]
    fn partial_decodes_say_so_and_give_the_whole_model_rate() {
        let decode = |layers| silirep_core::KernelSpec::Decode {
            batch: 1,
            layers,
            shape: silirep_core::LayerShape::MISTRAL_7B,
            context: 0,
            dtype: silirep_core::Dtype::F32,
        };
        assert_eq!(
            decode_rate(&decode(1), 20.9),
            "20.9 tokens/s per layer (0.653 tokens/s for all 32 layers)"
        );
        assert_eq!(
            decode_rate(&decode(2), 20.0),
            "20.0 tokens/s per 2 layers (1.25 tokens/s for all 32 layers)"
        );
        assert_eq!(decode_rate(&decode(32), 20.0), "20.0 tokens/s");
    }
}
