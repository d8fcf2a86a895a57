//! The policy file format (TOML): parsing it into a [`PolicyBuilder`], with line numbers.
//!
//! The format is documented in `docs/policy.md`. Unknown fields, effects and gate kinds are errors,
//! so that a typo can never turn into a rule that silently matches nothing.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::builder::PolicyBuilder;
use super::err::InvalidPolicyError;
use super::rule::{Effect, GateDef, GateKind, Located, Rule, ToolRule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    version: Option<Spanned<u32>>,
    workspace: Option<WorkspaceDef>,
    shell: Option<ShellDef>,
    approvals: Option<ApprovalsDef>,
    #[serde(default)]
    agents: BTreeMap<String, AgentDef>,
    #[serde(default)]
    gates: BTreeMap<String, Spanned<GateFileDef>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceDef {
    root: Option<String>,
    resolve_symlinks: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellDef {
    allowed_env: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsDef {
    store: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentDef {
    roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFileDef {
    kind: Spanned<String>,
    expires_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    effect: Spanned<String>,
    agents: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    tasks: Option<Vec<String>>,
    #[serde(default)]
    read: Vec<Spanned<String>>,
    #[serde(default)]
    write: Vec<Spanned<String>>,
    #[serde(default)]
    delete: Vec<Spanned<String>>,
    #[serde(default)]
    run: Vec<Spanned<String>>,
    #[serde(default)]
    net: Vec<Spanned<String>>,
    #[serde(default)]
    tools: Vec<Spanned<ToolDef>>,
    #[serde(default)]
    gates: Vec<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolDef {
    name: String,
    #[serde(default)]
    equals: BTreeMap<String, toml::Value>,
    #[serde(default)]
    glob: BTreeMap<String, String>,
}

/// Maps byte offsets of the policy text to 1-based line numbers.
struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    fn line_of(&self, span: Range<usize>) -> Option<u32> {
        let prefix = self.text.get(..span.start)?;
        u32::try_from(prefix.bytes().filter(|b| *b == b'\n').count() + 1).ok()
    }

    fn located(&self, spanned: Spanned<String>) -> Located<String> {
        let line = self.line_of(spanned.span());
        Located {
            value: spanned.into_inner(),
            line,
        }
    }
}

/// Parses a duration such as `90s`, `30m`, `12h` or `7d` into nanoseconds.
fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration `{text}` needs a unit: s, m, h or d"))?;
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("duration `{text}` does not start with a number"))?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "duration `{text}` has unknown unit `{unit}`: use s, m, h or d"
            ))
        }
    };
    if amount == 0 {
        return Err(format!("duration `{text}` is zero"));
    }
    Ok(amount
        .saturating_mul(unit_seconds)
        .saturating_mul(1_000_000_000))
}

fn parse_effect(effect: &str) -> Result<Effect, String> {
    match effect {
        "allow" => Ok(Effect::Allow),
        "deny" => Ok(Effect::Deny),
        "gate" => Ok(Effect::Gate),
        _ => Err(format!(
            "unknown effect `{effect}`: use `allow`, `deny` or `gate`"
        )),
    }
}

fn parse_gate_kind(kind: &str) -> Result<GateKind, String> {
    match kind {
        "human" => Ok(GateKind::Human),
        "plugin" => Ok(GateKind::Plugin),
        _ => Err(format!(
            "unknown gate kind `{kind}`: use `human` or `plugin`"
        )),
    }
}

/// Parses policy `text`. `file` is the path it was read from (for messages, and as the base of
/// relative paths in it); without one, relative paths are relative to the current directory.
pub(crate) fn parse(text: &str, file: Option<&Path>) -> Result<PolicyBuilder, InvalidPolicyError> {
    let file_label = file.map(|path| path.display().to_string());
    let in_file = |error: InvalidPolicyError| error.in_file(file_label.as_deref());
    let lines = Lines { text };
    let definition: FileDef = toml::from_str(text).map_err(|error| {
        let line = error.span().and_then(|span| lines.line_of(span));
        in_file(InvalidPolicyError::new(error.message().trim().replace('\n', " ")).at_line(line))
    })?;
    let base_dir: PathBuf = file
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();

    let mut builder = PolicyBuilder::new();
    if let Some(version) = &definition.version {
        if *version.get_ref() != 1 {
            return Err(in_file(
                InvalidPolicyError::new(format!(
                    "unsupported policy version {}: this fourfold reads version 1",
                    version.get_ref()
                ))
                .at_line(lines.line_of(version.span())),
            ));
        }
    }
    let workspace = definition.workspace.unwrap_or(WorkspaceDef {
        root: None,
        resolve_symlinks: None,
    });
    builder = builder.root(base_dir.join(workspace.root.as_deref().unwrap_or(".")));
    builder = builder.resolve_symlinks(workspace.resolve_symlinks.unwrap_or(false));
    if let Some(shell) = definition.shell {
        builder = builder.allowed_env(shell.allowed_env);
    }
    if let Some(store) = definition.approvals.and_then(|approvals| approvals.store) {
        builder = builder.store_dir(base_dir.join(store));
    }
    for (agent, agent_def) in definition.agents {
        builder = builder.agent_roles(agent, agent_def.roles);
    }
    for (name, gate) in definition.gates {
        let line = lines.line_of(gate.span());
        let gate = gate.into_inner();
        let kind = parse_gate_kind(gate.kind.get_ref()).map_err(|reason| {
            in_file(InvalidPolicyError::new(format!("gate `{name}`: {reason}")).at_line(line))
        })?;
        let mut gate_def = GateDef::new(name.clone(), kind);
        gate_def.line = line;
        if let Some(expires_after) = gate.expires_after {
            let expiry_line = lines.line_of(expires_after.span());
            gate_def.expires_after_ns = Some(parse_duration_ns(expires_after.get_ref()).map_err(
                |reason| {
                    in_file(
                        InvalidPolicyError::new(format!("gate `{name}`: {reason}"))
                            .at_line(expiry_line),
                    )
                },
            )?);
        }
        builder = builder.gate(gate_def);
    }
    for spanned_rule in definition.rule {
        let line = lines.line_of(spanned_rule.span());
        let rule_def = spanned_rule.into_inner();
        let effect_line = lines.line_of(rule_def.effect.span());
        let effect = parse_effect(rule_def.effect.get_ref()).map_err(|reason| {
            in_file(
                InvalidPolicyError::new(reason)
                    .in_rule(&rule_def.id)
                    .at_line(effect_line),
            )
        })?;
        let mut rule = Rule::new(rule_def.id.clone(), effect);
        rule.line = line;
        rule.agents = rule_def.agents;
        rule.roles = rule_def.roles;
        rule.tasks = rule_def.tasks;
        rule.gates = rule_def.gates;
        rule.reason = rule_def.reason;
        let locate_all = |patterns: Vec<Spanned<String>>| -> Vec<Located<String>> {
            patterns
                .into_iter()
                .map(|pattern| lines.located(pattern))
                .collect()
        };
        rule.read = locate_all(rule_def.read);
        rule.write = locate_all(rule_def.write);
        rule.delete = locate_all(rule_def.delete);
        rule.run = locate_all(rule_def.run);
        rule.net = locate_all(rule_def.net);
        for spanned_tool in rule_def.tools {
            let tool_line = lines.line_of(spanned_tool.span());
            let tool_def = spanned_tool.into_inner();
            let mut tool = ToolRule::new(tool_def.name);
            tool.line = tool_line;
            for (field, value) in tool_def.equals {
                let value = serde_json::to_value(value).map_err(|error| {
                    in_file(
                        InvalidPolicyError::new(format!("tool argument `{field}`: {error}"))
                            .in_rule(&rule_def.id)
                            .at_line(tool_line),
                    )
                })?;
                tool = tool.arg_equals(field, value);
            }
            for (field, pattern) in tool_def.glob {
                tool = tool.arg_glob(field, pattern);
            }
            rule.tools.push(tool);
        }
        builder = builder.rule(rule);
    }
    Ok(builder.source_file(file.map(Path::to_path_buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, line: Option<u32>, fragment: &str) {
        let error = parse(text, Some(Path::new("policy.toml")))
            .and_then(|builder| builder.compile_for_test())
            .expect_err(text);
        assert_eq!(error.line(), line, "{error}");
        assert!(error.to_string().contains(fragment), "{error}");
        assert!(error.to_string().starts_with("policy.toml:"), "{error}");
    }

    #[test]
    fn bad_policies_say_where_and_why() {
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"permit\"\nread = [\"**\"]\n",
            Some(3),
            "unknown effect `permit`",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\nreed = [\"**\"]\n",
            Some(4),
            "unknown field `reed`",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\n",
            Some(1),
            "names no action",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\n\nread = [\n  \"ok/**\",\n  \"a[\",\n]\n",
            Some(7),
            "a[",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\nread = [\"../x\"]\n",
            Some(4),
            "can never match",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"gate\"\ngates = [\"nobody\"]\nrun = [\"x\"]\n",
            Some(1),
            "unknown gate `nobody`",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"gate\"\nrun = [\"x\"]\n",
            Some(1),
            "needs `gates`",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\nagents = []\nrun = [\"x\"]\n",
            Some(1),
            "empty list",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\nroles = [\"ghost\"]\nrun = [\"x\"]\n",
            Some(1),
            "role `ghost`",
        );
        check_error("[[rule]]\nid = \"a\"\neffect = \"allow\"\nrun = [\"x\"]\n[[rule]]\nid = \"a\"\neffect = \"deny\"\nrun = [\"y\"]\n", Some(5), "duplicate rule id");
        check_error(
            "[gates.ci]\nkind = \"robot\"\n",
            Some(1),
            "unknown gate kind",
        );
        check_error(
            "[gates.ci]\nkind = \"plugin\"\nexpires_after = \"5 minutes\"\n",
            Some(3),
            "duration",
        );
        check_error("version = 2\n", Some(1), "unsupported policy version");
        check_error("[[rule]\n", Some(1), "");
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\nrun = [\"cargo test; rm -rf /\"]\n",
            Some(4),
            "one rule per command",
        );
        check_error(
            "[[rule]]\nid = \"a\"\neffect = \"allow\"\nnet = [\"evil*.com\"]\n",
            Some(4),
            "network pattern",
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("90s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("2h"), Ok(7_200_000_000_000));
        for bad in ["", "5", "m", "0s", "5w", "-5m"] {
            assert!(parse_duration_ns(bad).is_err(), "{bad:?}");
        }
    }
}
