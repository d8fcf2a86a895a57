//! Core values as JS values: serde JSON with camelCase keys, as JS code expects.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Fallible, FourfoldError, FOURFOLD_ERROR};

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `snake_case` as `camelCase`.
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for character in name.chars() {
        if character == '_' {
            upper = true;
        } else if upper {
            out.extend(character.to_uppercase());
            upper = false;
        } else {
            out.push(character);
        }
    }
    out
}

/// `value` with every object key in camelCase, recursively, and every integer a JS number.
pub fn camel_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (camel(&key), camel_keys(value)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        // Integers past 2^53 (nanosecond timestamps) would become BigInts, which `JSON.stringify`
        // refuses; as numbers they keep about a quarter of a microsecond of precision.
        Value::Number(number) => match number.as_u64() {
            Some(big) if big > MAX_SAFE_INTEGER => serde_json::Number::from_f64(big as f64)
                .map(Value::Number)
                .unwrap_or(Value::Number(number)),
            _ => Value::Number(number),
        },
        other => other,
    }
}

/// `value` as JSON with camelCase keys.
pub fn to_json(value: &impl Serialize) -> Fallible<Value> {
    serde_json::to_value(value)
        .map(camel_keys)
        .map_err(|error| {
            FourfoldError::new(FOURFOLD_ERROR, format!("cannot convert to JS: {error}"))
        })
}
