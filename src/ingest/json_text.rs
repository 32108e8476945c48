//! JSON reading that tolerates what Python's `json.dump` writes.
//!
//! Python writes `NaN`, `Infinity` and `-Infinity` as bare tokens, which strict JSON parsers
//! reject. We read them as missing values — never as numbers — and report each one with its
//! line, column and JSON path so the user sees exactly what was dropped.
//!
//! How: each such token outside a string is replaced by a sentinel *string* before
//! serde_json parses the text; a tree walk then turns sentinels into `null` and records their
//! paths. Syntax errors are mapped back to the original columns.

use serde_json::Value;

/// Marks a non-finite token in the rewritten text; the NUL byte cannot occur in a JSON string
/// written by any tool we read, so a real string never looks like a sentinel.
const SENTINEL_PREFIX: &str = "\u{0}silirep-non-finite:";

#[derive(Debug, Clone, PartialEq)]
pub struct NonFiniteToken {
    /// `NaN`, `Infinity` or `-Infinity`.
    pub token: String,
    pub line: usize,
    pub column: usize,
    /// JSON path such as `$.benchmarks.gemm[3].time_ms`.
    pub path: String,
}

#[derive(Debug)]
pub struct LenientJson {
    pub value: Value,
    pub non_finite: Vec<NonFiniteToken>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct JsonSyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<LenientJson, JsonSyntaxError> {
    let (rewritten, mut tokens, shifts) = replace_non_finite(text);
    let mut value: Value = serde_json::from_str(&rewritten).map_err(|e| {
        let line = e.line();
        let column = original_column(&shifts, line, e.column());
        // serde_json appends " at line L column C" to its message; we report our own.
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        JsonSyntaxError {
            line,
            column,
            message,
        }
    })?;
    let mut paths = Vec::new();
    collect_sentinels(&mut value, "$".to_string(), &mut paths);
    // Objects keep document order (serde_json's preserve_order), so the k-th sentinel found
    // by the walk is the k-th token replaced in the text.
    for (token, path) in tokens.iter_mut().zip(paths) {
        token.path = path;
    }
    Ok(LenientJson {
        value,
        non_finite: tokens,
    })
}

/// A change in length at (line, column in the rewritten text).
struct Shift {
    line: usize,
    rewritten_column: usize,
    delta: isize,
}

fn replace_non_finite(text: &str) -> (String, Vec<NonFiniteToken>, Vec<Shift>) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut tokens = Vec::new();
    let mut shifts = Vec::new();
    let (mut line, mut column, mut out_column) = (1usize, 1usize, 1usize);
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !in_string {
            let rest = &text[i..];
            let token = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t) && !is_ident_byte(bytes.get(i + t.len())));
            if let Some(token) = token
                && (i == 0 || !is_ident_byte(bytes.get(i - 1)))
            {
                let replacement =
                    format!("\"{}{}\"", SENTINEL_PREFIX.replace('\0', "\\u0000"), token);
                tokens.push(NonFiniteToken {
                    token: token.to_string(),
                    line,
                    column,
                    path: String::new(),
                });
                out.push_str(&replacement);
                out_column += replacement.len();
                shifts.push(Shift {
                    line,
                    rewritten_column: out_column,
                    delta: replacement.len() as isize - token.len() as isize,
                });
                column += token.len();
                i += token.len();
                continue;
            }
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        }
        // Copy one UTF-8 character.
        let width = utf8_width(c);
        let end = (i + width).min(bytes.len());
        out.push_str(&text[i..end]);
        if c == b'\n' {
            line += 1;
            column = 1;
            out_column = 1;
        } else {
            column += 1;
            out_column += 1;
        }
        i = end;
    }
    (out, tokens, shifts)
}

fn is_ident_byte(b: Option<&u8>) -> bool {
    matches!(b, Some(b) if b.is_ascii_alphanumeric() || *b == b'_')
}

fn utf8_width(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

fn original_column(shifts: &[Shift], line: usize, column: usize) -> usize {
    let delta: isize = shifts
        .iter()
        .filter(|s| s.line == line && s.rewritten_column <= column)
        .map(|s| s.delta)
        .sum();
    (column as isize - delta).max(1) as usize
}

fn collect_sentinels(value: &mut Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with(SENTINEL_PREFIX) => {
            *value = Value::Null;
            out.push(path);
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                collect_sentinels(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                collect_sentinels(item, join_path(&path, key), out);
            }
        }
        _ => {}
    }
}

/// `$.a.b` for identifier-like keys, `$["odd key"]` otherwise.
pub fn join_path(parent: &str, key: &str) -> String {
    if !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
    {
        format!("{parent}.{key}")
    } else {
        format!(
            "{parent}[{}]",
            serde_json::to_string(key).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_nan_becomes_null_with_location_and_path() {
        let text = "{\n  \"loss\": NaN,\n  \"xs\": [1, -Infinity, Infinity],\n  \"s\": \"NaN\"\n}";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.value["loss"], Value::Null);
        assert_eq!(parsed.value["xs"][1], Value::Null);
        assert_eq!(parsed.value["xs"][0], 1);
        assert_eq!(parsed.value["s"], "NaN", "strings are left alone");
        let found: Vec<_> = parsed
            .non_finite
            .iter()
            .map(|t| (t.token.as_str(), t.line, t.column, t.path.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("NaN", 2, 11, "$.loss"),
                ("-Infinity", 3, 13, "$.xs[1]"),
                ("Infinity", 3, 24, "$.xs[2]"),
            ]
        );
    }

    #[test]
    fn syntax_errors_point_at_the_original_column() {
        // The error (missing comma) comes after a replaced NaN on the same line.
        let err = parse("{\"a\": NaN \"b\": 1}").unwrap_err();
        assert_eq!((err.line, err.column), (1, 11));
        assert!(err.message.contains("expected"), "{}", err.message);
        let err = parse("{\"a\": [1, 2").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("EOF"), "{}", err.message);
    }

    #[test]
    fn identifiers_containing_nan_are_not_tokens() {
        // `NaNx` is invalid JSON and must stay an error, not become null.
        assert!(parse("{\"a\": NaNx}").is_err());
        assert!(parse("[Infinityy]").is_err());
    }

    #[test]
    fn keys_with_odd_characters_are_quoted_in_paths() {
        assert_eq!(join_path("$", "a b"), "$[\"a b\"]");
        assert_eq!(join_path("$", "256"), "$[\"256\"]");
        assert_eq!(join_path("$.x", "time_ms"), "$.x.time_ms");
    }
}
