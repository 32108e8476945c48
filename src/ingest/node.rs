//! Reading a JSON tree with the path of every value at hand, so every error and warning
//! can say where in the file the problem is and what was expected there.

use super::json_text::join_path;
use serde_json::{Map, Value};

/// A value inside a document, with its JSON path.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: &'a Value,
    path: String,
}

/// The problem with one value: where it is, what we expected, what we found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: expected {expected}, found {found}")]
pub struct ShapeError {
    pub path: String,
    pub expected: String,
    pub found: String,
}

pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Node<'a> {
        Node {
            value,
            path: "$".to_string(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn error(&self, expected: &str) -> ShapeError {
        ShapeError {
            path: self.path.clone(),
            expected: expected.to_string(),
            found: describe(self.value),
        }
    }

    pub fn object(&self) -> Result<&'a Map<String, Value>, ShapeError> {
        self.value
            .as_object()
            .ok_or_else(|| self.error("an object"))
    }

    pub fn array(&self) -> Result<Vec<Node<'a>>, ShapeError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.error("an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                value,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    /// Entries of an object in document order.
    pub fn entries(&self) -> Result<Vec<(&'a str, Node<'a>)>, ShapeError> {
        Ok(self
            .object()?
            .iter()
            .map(|(key, value)| {
                (
                    key.as_str(),
                    Node {
                        value,
                        path: join_path(&self.path, key),
                    },
                )
            })
            .collect())
    }

    /// A member that must be present (it may be null).
    pub fn get(&self, key: &str) -> Result<Node<'a>, ShapeError> {
        let map = self.object()?;
        let path = join_path(&self.path, key);
        match map.get(key) {
            Some(value) => Ok(Node { value, path }),
            None => Err(ShapeError {
                path,
                expected: "a member".into(),
                found: "nothing (missing)".into(),
            }),
        }
    }

    /// A member that may be absent or null.
    pub fn opt(&self, key: &str) -> Option<Node<'a>> {
        let value = self.value.as_object()?.get(key)?;
        if value.is_null() {
            return None;
        }
        Some(Node {
            value,
            path: join_path(&self.path, key),
        })
    }

    pub fn has(&self, key: &str) -> bool {
        self.value.as_object().is_some_and(|m| m.contains_key(key))
    }

    /// A number; `Ok(None)` for null (which is how a `NaN` token arrives).
    pub fn f64_or_missing(&self) -> Result<Option<f64>, ShapeError> {
        match self.value {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_f64()),
            _ => Err(self.error("a number")),
        }
    }

    pub fn f64(&self) -> Result<f64, ShapeError> {
        self.f64_or_missing()?.ok_or_else(|| self.error("a number"))
    }

    /// A non-negative integer; integral floats such as `20.0` are accepted.
    pub fn u64(&self) -> Result<u64, ShapeError> {
        if let Some(v) = self.value.as_u64() {
            return Ok(v);
        }
        match self.value.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 2f64.powi(63) => Ok(f as u64),
            _ => Err(self.error("a non-negative integer")),
        }
    }

    pub fn str(&self) -> Result<&'a str, ShapeError> {
        self.value.as_str().ok_or_else(|| self.error("a string"))
    }
}

/// A short description of a value for error messages: its type and, for scalars, the value.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let ellipsis = if s.chars().count() > 40 { "…" } else { "" };
            format!("the string {shown:?}{ellipsis}")
        }
        other => kind_of(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_path_expected_and_found() {
        let doc = json!({"benchmarks": {"gemm": [{"time_ms": "fast"}]}});
        let root = Node::root(&doc);
        let gemm = root.get("benchmarks").unwrap().get("gemm").unwrap();
        let item = gemm.array().unwrap().remove(0);
        let err = item.get("time_ms").unwrap().f64().unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.benchmarks.gemm[0].time_ms: expected a number, found the string \"fast\""
        );
        let err = item.get("dtype").unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.benchmarks.gemm[0].dtype: expected a member, found nothing (missing)"
        );
    }

    #[test]
    fn integers_accept_integral_floats_only() {
        let doc = json!([20.0, 2.5, -1]);
        let items = Node::root(&doc).array().unwrap();
        assert_eq!(items[0].u64(), Ok(20));
        assert!(items[1].u64().is_err());
        assert!(items[2].u64().is_err());
    }
}
