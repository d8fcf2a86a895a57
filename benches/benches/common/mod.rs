//! Shared inputs of the benches: one deterministic policy of N rules, written both as fourfold rules
//! and as Cedar policies, and the requests the benches time against it.
//!
//! The policy has two global deny rules (`.env` anywhere, writing `.git` anywhere), then rules in
//! runs of ten per project `projects/p{k}`: five agents may read `src/`, one may read and write
//! `src/` and `tests/`, one may run `cargo test` and `cargo fmt`, nobody may read or write
//! `src/secrets/`, one agent may not write `Cargo.lock`, and one may connect to `crates.io`. The
//! rules name 1,000 agents (`agent-0` to `agent-999`), and each agent gets a mix of kinds of rule
//! across projects. Nothing here is random, so every run measures the same policy.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Entities, Entity, EntityUid, PolicySet, RestrictedExpression};
use fourfold::{Effect, Policy, Request, Rule, Verdict};

/// The rule counts the benches run at.
pub const RULE_COUNTS: [usize; 3] = [10, 1_000, 100_000];

/// The workspace root of the fourfold policy (it need not exist: paths are matched lexically).
pub const ROOT: &str = "/work/repo";

const N_AGENTS: usize = 1_000;
const N_GLOBAL_RULES: usize = 2;
const RULES_PER_PROJECT: usize = 10;

/// What a rule lets an agent do, in the words both engines share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Read a file.
    Read,
    /// Write a file.
    Write,
    /// Run a command line.
    Run,
    /// Connect to a host.
    Net,
}

impl Verb {
    fn cedar_action(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::Run => "run",
            Verb::Net => "connect",
        }
    }
}

/// One rule, before it is written for either engine: every verb applies to every pattern.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// The rule id (the Cedar policy carries it as `@id`).
    pub id: String,
    /// Allow or deny.
    pub effect: Effect,
    /// The one agent the rule applies to, or `None` for every agent.
    pub agent: Option<String>,
    /// What the rule matches doing.
    pub verbs: Vec<Verb>,
    /// Path globs (literal, or literal ending in `/**`), run patterns, or hosts, by verb.
    pub patterns: Vec<String>,
}

/// The agent of the generated rule `rule_idx` (counted after the global rules). Agents repeat every
/// 1,000 rules, shifted by one each time, so each agent holds rules of every kind.
fn agent_of(rule_idx: usize) -> String {
    format!("agent-{}", (rule_idx + rule_idx / N_AGENTS) % N_AGENTS)
}

/// The rules of an `n_rules` policy.
pub fn rule_specs(n_rules: usize) -> Vec<RuleSpec> {
    assert!(
        n_rules > N_GLOBAL_RULES,
        "a bench policy needs more than {N_GLOBAL_RULES} rules"
    );
    let mut specs = vec![
        RuleSpec {
            id: "no-env".to_string(),
            effect: Effect::Deny,
            agent: None,
            verbs: vec![Verb::Read, Verb::Write],
            patterns: vec![".env".to_string()],
        },
        RuleSpec {
            id: "no-git-writes".to_string(),
            effect: Effect::Deny,
            agent: None,
            verbs: vec![Verb::Write],
            patterns: vec![".git".to_string()],
        },
    ];
    for rule_idx in 0..n_rules - N_GLOBAL_RULES {
        let project = format!("projects/p{}", rule_idx / RULES_PER_PROJECT);
        let agent = Some(agent_of(rule_idx));
        let spec = match rule_idx % RULES_PER_PROJECT {
            0..=4 => RuleSpec {
                id: format!("read-{rule_idx}"),
                effect: Effect::Allow,
                agent,
                verbs: vec![Verb::Read],
                patterns: vec![format!("{project}/src/**")],
            },
            5 => RuleSpec {
                id: format!("edit-{rule_idx}"),
                effect: Effect::Allow,
                agent,
                verbs: vec![Verb::Read, Verb::Write],
                patterns: vec![format!("{project}/src/**"), format!("{project}/tests/**")],
            },
            6 => RuleSpec {
                id: format!("test-{rule_idx}"),
                effect: Effect::Allow,
                agent,
                verbs: vec![Verb::Run],
                patterns: vec!["cargo test*".to_string(), "cargo fmt*".to_string()],
            },
            7 => RuleSpec {
                id: format!("secrets-{rule_idx}"),
                effect: Effect::Deny,
                agent: None,
                verbs: vec![Verb::Read, Verb::Write],
                patterns: vec![format!("{project}/src/secrets/**")],
            },
            8 => RuleSpec {
                id: format!("lockfile-{rule_idx}"),
                effect: Effect::Deny,
                agent,
                verbs: vec![Verb::Write],
                patterns: vec![format!("{project}/Cargo.lock")],
            },
            _ => RuleSpec {
                id: format!("registry-{rule_idx}"),
                effect: Effect::Allow,
                agent,
                verbs: vec![Verb::Net],
                patterns: vec!["crates.io".to_string()],
            },
        };
        specs.push(spec);
    }
    specs
}

/// The rules as a fourfold policy rooted at [`ROOT`].
pub fn fourfold_policy(specs: &[RuleSpec]) -> Policy {
    let mut builder = Policy::builder().root(ROOT);
    for spec in specs {
        let mut rule = match spec.effect {
            Effect::Deny => Rule::deny(&spec.id),
            _ => Rule::allow(&spec.id),
        };
        if let Some(agent) = &spec.agent {
            rule = rule.agents([agent]);
        }
        for verb in &spec.verbs {
            for pattern in &spec.patterns {
                rule = match verb {
                    Verb::Read => rule.read(pattern),
                    Verb::Write => rule.write(pattern),
                    Verb::Run => rule.run(pattern),
                    Verb::Net => rule.net(pattern),
                };
            }
        }
        builder = builder.rule(rule);
    }
    builder.build().expect("the bench policy compiles")
}

/// The rules as Cedar policy text: one policy per rule, `permit` for allow and `forbid` for deny.
pub fn cedar_policy_text(specs: &[RuleSpec]) -> String {
    let mut text = String::with_capacity(specs.len() * 200);
    for spec in specs {
        let effect = match spec.effect {
            Effect::Deny => "forbid",
            _ => "permit",
        };
        let principal = match &spec.agent {
            Some(agent) => format!("principal == Agent::\"{agent}\""),
            None => "principal".to_string(),
        };
        let action = match spec.verbs.as_slice() {
            [verb] => format!("action == Action::\"{}\"", verb.cedar_action()),
            verbs => {
                let actions: Vec<String> = verbs
                    .iter()
                    .map(|verb| format!("Action::\"{}\"", verb.cedar_action()))
                    .collect();
                format!("action in [{}]", actions.join(", "))
            }
        };
        let (resource, condition) = cedar_resource(spec);
        text.push_str(&format!(
            "@id(\"{}\")\n{effect}({principal}, {action}, {resource}){condition};\n",
            spec.id
        ));
    }
    text
}

/// The resource scope and `when` clause of a rule's Cedar policy.
fn cedar_resource(spec: &RuleSpec) -> (String, String) {
    let is_path_rule = spec
        .verbs
        .iter()
        .all(|verb| matches!(verb, Verb::Read | Verb::Write));
    match (spec.verbs.first(), spec.patterns.as_slice()) {
        // One exact file: the entity itself, as a Cedar user would write it.
        (Some(Verb::Read | Verb::Write), [pattern])
            if pattern.contains('/') && !pattern.contains('*') =>
        {
            (format!("resource == File::\"{pattern}\""), String::new())
        }
        (Some(Verb::Net), [host]) => (format!("resource == Host::\"{host}\""), String::new()),
        (Some(Verb::Run), patterns) => {
            let alternatives: Vec<String> = patterns
                .iter()
                .map(|pattern| cedar_command_condition(pattern))
                .collect();
            (
                "resource".to_string(),
                format!(" when {{ {} }}", alternatives.join(" || ")),
            )
        }
        _ => {
            assert!(
                is_path_rule,
                "rule `{}` mixes path and non-path verbs",
                spec.id
            );
            let alternatives: Vec<String> = spec
                .patterns
                .iter()
                .map(|pattern| cedar_path_condition(pattern))
                .collect();
            (
                "resource".to_string(),
                format!(" when {{ {} }}", alternatives.join(" || ")),
            )
        }
    }
}

/// A fourfold path glob as a Cedar condition on `resource.path`, with fourfold's meaning: a pattern
/// with a `/` is anchored at the root, one without matches at any depth, and either matches what it
/// names and everything below it. Cedar's `*` also matches `/`, as fourfold's `**` does.
fn cedar_path_condition(pattern: &str) -> String {
    let literal = pattern.strip_suffix("/**").unwrap_or(pattern);
    assert!(
        !literal.contains(['*', '?', '[', '{']),
        "pattern `{pattern}` has a wildcard the Cedar encoding does not handle"
    );
    if literal.contains('/') {
        format!("resource.path == \"{literal}\" || resource.path like \"{literal}/*\"")
    } else {
        format!(
            "resource.path == \"{literal}\" || resource.path like \"*/{literal}\" || resource.path like \"{literal}/*\" || resource.path like \"*/{literal}/*\""
        )
    }
}

/// A fourfold run pattern (`cargo test*`: those words, then any arguments) as a Cedar condition on
/// the command line. Cedar cannot parse a shell line, so this is only a string match.
fn cedar_command_condition(pattern: &str) -> String {
    match pattern.strip_suffix('*') {
        Some(words) => format!("resource.line == \"{words}\" || resource.line like \"{words} *\""),
        None => format!("resource.line == \"{pattern}\""),
    }
}

/// The Cedar policies of `specs`, parsed.
pub fn cedar_policy_set(specs: &[RuleSpec]) -> PolicySet {
    PolicySet::from_str(&cedar_policy_text(specs)).expect("the bench policy parses as Cedar")
}

/// One timed case: the same request for both engines, and the verdict both must reach.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case name in bench ids and the results table.
    pub name: &'static str,
    /// The request as fourfold takes it.
    pub request: Request,
    /// The verdict the policy must reach.
    pub expected: Verdict,
}

/// The cases of an `n_rules` policy. They all concern the middle project, so the matching rules sit
/// in the middle of the policy, not at its start.
pub fn cases(n_rules: usize) -> Vec<Case> {
    let n_projects = (n_rules - N_GLOBAL_RULES).div_ceil(RULES_PER_PROJECT);
    let project_idx = n_projects / 2;
    let first_rule_idx = project_idx * RULES_PER_PROJECT;
    // INVARIANT: rule `first_rule_idx + 3` lets `reader` read `src/`, rule `first_rule_idx + 6` lets
    // `runner` run `cargo test` and `cargo fmt`, and rule `first_rule_idx + 7` denies `src/secrets/`
    // to everyone; `reader` holds no rule on the next project.
    let reader = agent_of(first_rule_idx + 3);
    let runner = agent_of(first_rule_idx + 6);
    let project = format!("projects/p{project_idx}");
    let next_project = format!("projects/p{}", project_idx + 1);
    vec![
        Case {
            name: "allow_hit",
            request: Request::read(&reader, format!("{project}/src/lib.rs")),
            expected: Verdict::Allow,
        },
        Case {
            name: "deny_hit",
            request: Request::read(&reader, format!("{project}/src/secrets/api.key")),
            expected: Verdict::Deny,
        },
        Case {
            name: "no_match",
            request: Request::read(&reader, format!("{next_project}/src/lib.rs")),
            expected: Verdict::Deny,
        },
        Case {
            name: "compound_command",
            request: Request::run(&runner, "cargo test && cargo fmt --check"),
            expected: Verdict::Allow,
        },
        Case {
            // Quotes and a redirection: this line takes the full tree-sitter-bash parse.
            name: "shell_command",
            request: Request::run(&runner, "cargo test -p \"core\" 2>&1 && cargo fmt --check"),
            expected: Verdict::Allow,
        },
    ]
}

/// A fourfold request as a Cedar request: `Agent::"{agent}"`, `Action::"read"`, `File::"{path}"`.
/// Only file reads and writes have a Cedar counterpart here.
pub fn cedar_request(request: &Request) -> Option<cedar_policy::Request> {
    let (action, path) = match &request.action {
        fourfold::Action::Read { path } => ("read", path),
        fourfold::Action::Write { path } => ("write", path),
        _ => return None,
    };
    let cedar_request = cedar_policy::Request::new(
        entity_uid("Agent", &request.agent),
        entity_uid("Action", action),
        entity_uid("File", path),
        cedar_policy::Context::empty(),
        None,
    )
    .expect("a request without a schema is valid");
    Some(cedar_request)
}

/// The Cedar entities the cases need: each requested file, with its `path` attribute.
pub fn cedar_entities(cases: &[Case]) -> Entities {
    let mut seen = HashSet::new();
    let mut entities = Vec::new();
    for case in cases {
        let (fourfold::Action::Read { path } | fourfold::Action::Write { path }) =
            &case.request.action
        else {
            continue;
        };
        if !seen.insert(path.clone()) {
            continue;
        }
        let attrs = HashMap::from([(
            "path".to_string(),
            RestrictedExpression::new_string(path.clone()),
        )]);
        entities.push(
            Entity::new(entity_uid("File", path), attrs, HashSet::new())
                .expect("a file entity is valid"),
        );
    }
    Entities::from_entities(entities, None).expect("the file entities are distinct")
}

fn entity_uid(type_name: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        type_name.parse().expect("a valid entity type name"),
        cedar_policy::EntityId::new(id),
    )
}
