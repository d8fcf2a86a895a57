//! Tool patterns: a tool name glob plus argument conditions, for MCP-style and framework tools.

use globset::{Glob, GlobMatcher};
use serde_json::Value;

use super::rule::ToolRule;

/// A compiled tool pattern.
#[derive(Clone, Debug)]
pub(crate) struct ToolPattern {
    /// The exact name, when the name has no wildcard (such patterns are indexed by name).
    pub(crate) exact_name: Option<String>,
    name: GlobMatcher,
    arg_equals: Vec<(String, Value)>,
    arg_globs: Vec<(String, GlobMatcher)>,
}

/// Turns a dotted field name (`options.force`) into a JSON pointer (`/options/force`).
fn field_pointer(field: &str) -> Result<String, String> {
    if field.is_empty() || field.split('.').any(str::is_empty) {
        return Err(format!("argument field `{field}` has an empty part"));
    }
    Ok(field
        .split('.')
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect())
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    Glob::new(pattern)
        .map(|glob| glob.compile_matcher())
        .map_err(|error| format!("tool pattern `{pattern}`: {error}"))
}

/// Compiles a [`ToolRule`].
pub(crate) fn compile_pattern(tool: &ToolRule) -> Result<ToolPattern, String> {
    if tool.name.is_empty() {
        return Err("empty tool name".to_string());
    }
    let exact_name = (!tool.name.contains(['*', '?', '[', '{', '\\'])).then(|| tool.name.clone());
    let arg_equals = tool
        .arg_equals
        .iter()
        .map(|(field, value)| Ok((field_pointer(field)?, value.clone())))
        .collect::<Result<Vec<_>, String>>()?;
    let arg_globs = tool
        .arg_globs
        .iter()
        .map(|(field, pattern)| Ok((field_pointer(field)?, glob(pattern)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ToolPattern {
        exact_name,
        name: glob(&tool.name)?,
        arg_equals,
        arg_globs,
    })
}

impl ToolPattern {
    /// Whether the pattern matches a call of `name` with `arguments`.
    pub(crate) fn matches(&self, name: &str, arguments: &Value) -> bool {
        let name_matches = match &self.exact_name {
            Some(exact) => exact == name,
            None => self.name.is_match(name),
        };
        name_matches
            && self
                .arg_equals
                .iter()
                .all(|(pointer, expected)| arguments.pointer(pointer) == Some(expected))
            && self.arg_globs.iter().all(|(pointer, matcher)| {
                arguments
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .is_some_and(|text| matcher.is_match(text))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(tool: ToolRule, name: &str, arguments: Value, expected: bool) {
        let pattern = compile_pattern(&tool).unwrap();
        assert_eq!(
            pattern.matches(name, &arguments),
            expected,
            "{name} {arguments}"
        );
    }

    #[test]
    fn names_and_arguments() {
        check(
            ToolRule::new("github.create_issue"),
            "github.create_issue",
            json!({}),
            true,
        );
        check(
            ToolRule::new("github.create_issue"),
            "github.create_issuex",
            json!({}),
            false,
        );
        check(
            ToolRule::new("mcp__github__*"),
            "mcp__github__push",
            json!({}),
            true,
        );
        check(
            ToolRule::new("mcp__github__*"),
            "mcp__gitlab__push",
            json!({}),
            false,
        );
        let force = || ToolRule::new("git_push").arg_equals("options.force", json!(true));
        check(
            force(),
            "git_push",
            json!({"options": {"force": true}}),
            true,
        );
        check(
            force(),
            "git_push",
            json!({"options": {"force": false}}),
            false,
        );
        check(force(), "git_push", json!({}), false);
        let path = || ToolRule::new("fs_write").arg_glob("path", "src/**");
        check(path(), "fs_write", json!({"path": "src/a/b.rs"}), true);
        check(path(), "fs_write", json!({"path": "docs/a.md"}), false);
        check(path(), "fs_write", json!({"path": 7}), false);
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(compile_pattern(&ToolRule::new("")).is_err());
        assert!(compile_pattern(&ToolRule::new("a[")).is_err());
        assert!(compile_pattern(&ToolRule::new("t").arg_equals("a..b", json!(1))).is_err());
        assert!(compile_pattern(&ToolRule::new("t").arg_glob("a", "[")).is_err());
    }
}
