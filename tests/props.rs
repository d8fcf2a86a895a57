//! Properties of the policy, checked with proptest against simple models: default deny, deny wins
//! whatever the rule order, normalised paths stay inside their pattern's root, a compound command is
//! allowed only if every part is, and no input (policy text or request) makes it panic.

use fourfold::{Policy, Request, Rule, Verdict};
use proptest::prelude::*;

use crate::util::{self, ROOT};

/// A path pattern of a small language the model understands: exactly a path (and what is below
/// it), or everything.
#[derive(Clone, Debug)]
enum ModelPattern {
    Under(Vec<String>),
    Everything,
}

impl ModelPattern {
    fn text(&self) -> String {
        match self {
            ModelPattern::Under(components) => format!("./{}", components.join("/")),
            ModelPattern::Everything => "**".to_string(),
        }
    }

    fn matches(&self, path: &[String]) -> bool {
        match self {
            ModelPattern::Under(components) => path.starts_with(components),
            ModelPattern::Everything => true,
        }
    }
}

fn component() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "src", ".env"]).prop_map(str::to_string)
}

fn model_pattern() -> impl Strategy<Value = ModelPattern> {
    prop_oneof![
        1 => Just(ModelPattern::Everything),
        5 => prop::collection::vec(component(), 1..4).prop_map(ModelPattern::Under),
    ]
}

fn model_rules() -> impl Strategy<Value = Vec<(bool, ModelPattern)>> {
    prop::collection::vec((any::<bool>(), model_pattern()), 0..8)
}

fn build(rules: &[(bool, ModelPattern)]) -> Policy {
    let mut builder = Policy::builder().root(ROOT);
    for (rule_idx, (is_deny, pattern)) in rules.iter().enumerate() {
        let id = format!("r{rule_idx}");
        let rule = if *is_deny {
            Rule::deny(id)
        } else {
            Rule::allow(id)
        };
        builder = builder.rule(rule.read(pattern.text()));
    }
    builder.build().expect("model policies compile")
}

/// The model: deny if a deny rule matches, else allow if an allow rule matches, else deny.
fn model_verdict(rules: &[(bool, ModelPattern)], path: &[String]) -> Verdict {
    let matching = |deny: bool| {
        rules
            .iter()
            .any(|(is_deny, pattern)| *is_deny == deny && pattern.matches(path))
    };
    if matching(true) || !matching(false) {
        Verdict::Deny
    } else {
        Verdict::Allow
    }
}

/// A path made of components, `.`, `..` and empty parts, and its lexical normal form (or `None`
/// when it climbs above the root).
fn messy_path() -> impl Strategy<Value = (String, Option<Vec<String>>)> {
    let part = prop_oneof![
        4 => component(),
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => Just(String::new()),
    ];
    prop::collection::vec(part, 1..7).prop_map(|parts| {
        let mut stack: Vec<String> = Vec::new();
        let mut escaped = false;
        for part in &parts {
            match part.as_str() {
                "" | "." => {}
                ".." => escaped |= stack.pop().is_none(),
                _ => stack.push(part.clone()),
            }
        }
        (parts.join("/"), (!escaped).then_some(stack))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_empty_policy_denies_everything(path in ".*", command in ".*", url in ".*") {
        let policy = Policy::builder().root(ROOT).build().unwrap();
        for request in [
            Request::read("a", path.clone()),
            Request::write("a", path.clone()),
            Request::delete("a", path),
            Request::run("a", command),
            Request::net("a", url),
        ] {
            prop_assert_eq!(util::verdict(&policy, &request), Verdict::Deny);
        }
    }

    #[test]
    fn the_policy_agrees_with_the_model_whatever_the_rule_order(
        rules in model_rules(),
        path in prop::collection::vec(component(), 1..5),
        rotation in 0usize..8,
    ) {
        let expected = model_verdict(&rules, &path);
        let mut rotated = rules.clone();
        if !rotated.is_empty() {
            let by = rotation % rotated.len();
            rotated.rotate_left(by);
        }
        rotated.reverse();
        for order in [&rules, &rotated] {
            let policy = build(order);
            let request = Request::read("a", path.join("/"));
            prop_assert_eq!(util::verdict(&policy, &request), expected, "rules {:?}", order);
        }
    }

    #[test]
    fn a_normalised_path_never_matches_outside_its_pattern_root(
        (path, normal_form) in messy_path(),
        cwd in prop::collection::vec(component(), 0..3),
    ) {
        let policy = Policy::builder().root(ROOT).rule(Rule::allow("src").write("src/**")).build().unwrap();
        let request = Request::write("a", path).cwd(cwd.join("/"));
        let decision = policy.check(&request).unwrap();
        if decision.verdict == Verdict::Allow {
            // The model's normal form, from the working directory.
            let mut stack = cwd.clone();
            let mut escaped = false;
            for part in request_path(&request).split('/') {
                match part {
                    "" | "." => {}
                    ".." => escaped |= stack.pop().is_none(),
                    _ => stack.push(part.to_string()),
                }
            }
            prop_assert!(!escaped, "allowed an escaping path: {:?}", request);
            prop_assert!(stack.len() > 1 && stack[0] == "src", "allowed {:?} outside src/", stack);
        }
        if cwd.is_empty() && normal_form.is_none() {
            prop_assert_eq!(decision.verdict, Verdict::Deny);
        }
    }

    #[test]
    fn a_compound_command_is_allowed_only_if_every_part_is(
        parts in prop::collection::vec(prop::sample::select(vec![
            "cargo test", "cargo test --release", "git status", "rm -rf src", "cargo testx", "curl evil.com", "ls",
        ]), 1..5),
        operators in prop::collection::vec(prop::sample::select(vec![" && ", " || ", "; ", " | ", " & ", "\n"]), 4),
    ) {
        let policy = Policy::builder()
            .root(ROOT)
            .rule(Rule::allow("dev").run("cargo test*").run("git status").run("ls"))
            .build()
            .unwrap();
        let mut command = parts[0].to_string();
        for (part, operator) in parts[1..].iter().zip(&operators) {
            command.push_str(operator);
            command.push_str(part);
        }
        let every_part_allowed = parts
            .iter()
            .all(|part| util::verdict(&policy, &Request::run("a", *part)) == Verdict::Allow);
        let expected = if every_part_allowed { Verdict::Allow } else { Verdict::Deny };
        prop_assert_eq!(util::verdict(&policy, &Request::run("a", command.clone())), expected, "{}", command);
    }

    #[test]
    fn arbitrary_policy_text_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(builder) = Policy::builder_from_toml(&text) {
            let _ = builder.root(ROOT).build();
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, &bytes).unwrap();
        let _ = Policy::from_file(&file);
    }

    #[test]
    fn arbitrary_policy_like_text_never_panics(
        lines in prop::collection::vec(prop::sample::select(vec![
            "[[rule]]", "id = \"a\"", "id = \"b\"", "effect = \"allow\"", "effect = \"gate\"", "effect = \"deny\"",
            "read = [\"**\"]", "write = [\"src/[\"]", "run = [\"cargo test*\"]", "net = [\"*.x.com\"]",
            "gates = [\"human-review\"]", "agents = []", "roles = [\"r\"]", "[agents.a]", "roles = [\"r\"]",
            "[gates.g]", "kind = \"plugin\"", "tools = [{ name = \"t\", equals = { a = 1 } }]", "]", "= =",
        ]), 0..20),
    ) {
        if let Ok(builder) = Policy::builder_from_toml(&lines.join("\n")) {
            let _ = builder.root(ROOT).build();
        }
    }

    #[test]
    fn arbitrary_requests_never_panic(text in ".*", agent in ".*", cwd in ".*") {
        let policy = util::policy(include_str!("../examples/demo/policy.toml"));
        for request in [
            Request::read(agent.clone(), text.clone()),
            Request::run(agent.clone(), text.clone()),
            Request::net(agent.clone(), text.clone()),
            Request::tool(agent.clone(), text.clone(), serde_json::json!({"path": text.clone()})),
        ] {
            let _ = policy.check(&request.cwd(cwd.clone()));
        }
    }
}

fn request_path(request: &Request) -> &str {
    match &request.action {
        fourfold::Action::Write { path } => path,
        _ => "",
    }
}
