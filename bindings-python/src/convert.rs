//! Conversions at the edge: serde values to and from Python objects, and the holder that lets a
//! binding object stand for a control owned by a `Fourfold`.

use std::sync::Arc;

use pyo3::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::invalid_request;

/// A core value as plain Python data (dicts, lists, strings, numbers), through its serde form.
pub(crate) fn to_python<'py, T: Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(pythonize::pythonize(py, value)?)
}

/// A core value from plain Python data; a mismatch is `fourfold.InvalidRequest`.
pub(crate) fn from_python<T: DeserializeOwned>(data: &Bound<'_, PyAny>) -> PyResult<T> {
    pythonize::depythonize(data).map_err(|error| invalid_request(error.to_string()))
}

/// A control that the binding object owns, or one that lives inside a `Fourfold` (so that
/// `fourfold.policy` is the very policy the sessions check against).
pub(crate) enum Holder<T> {
    /// Built on its own.
    Own(Arc<T>),
    /// Part of this `Fourfold`.
    Of(fourfold::Fourfold),
}

impl<T> Holder<T> {
    /// The control; `part` picks it out of a `Fourfold`.
    pub(crate) fn get<'a>(&'a self, part: impl FnOnce(&'a fourfold::Fourfold) -> &'a T) -> &'a T {
        match self {
            Holder::Own(value) => value,
            Holder::Of(fourfold) => part(fourfold),
        }
    }
}

/// `text` as Python's `repr` shows a string.
pub(crate) fn repr(text: &str) -> String {
    let mut shown = String::with_capacity(text.len() + 2);
    shown.push('\'');
    for character in text.chars() {
        match character {
            '\'' => shown.push_str("\\'"),
            '\\' => shown.push_str("\\\\"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            character if character.is_control() => {
                shown.push_str(&format!("\\x{:02x}", u32::from(character)))
            }
            character => shown.push(character),
        }
    }
    shown.push('\'');
    shown
}

/// An optional string as Python's `repr` shows it (`None` or `'text'`).
pub(crate) fn repr_opt(text: Option<&str>) -> String {
    text.map_or_else(|| "None".to_string(), repr)
}

/// A list of strings as Python's `repr` shows it.
pub(crate) fn repr_list<S: AsRef<str>>(items: &[S]) -> String {
    let shown: Vec<String> = items.iter().map(|item| repr(item.as_ref())).collect();
    format!("[{}]", shown.join(", "))
}

/// A bool as Python shows it.
pub(crate) fn python_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// What a `with` block's `__exit__` records as the error: the exception's repr, or `None`.
pub(crate) fn exception_text(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    value.map(|value| Ok(value.repr()?.to_string())).transpose()
}
