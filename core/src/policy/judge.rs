//! Judging a request: turning it into atoms and each atom into an effect, by precedence.
//!
//! Every atom must be allowed for the request to be allowed. Within one atom, deny beats gate beats
//! allow, and no match is deny. Across atoms, the first denied atom decides; otherwise the gates of
//! every gated atom are joined.

use serde_json::Value;

use super::atom::{Access, ShellAtom, Word};
use super::builder::PolicyState;
use super::command;
use super::compiled::{CompiledRules, Fold, RuleMeta, RuleRef, Subject};
use super::net::{self, NetTarget};
use super::path;
use super::{Action, Request};

/// A rule set granted at run time to one agent for one task.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) id: String,
    pub(crate) agent: String,
    pub(crate) task: String,
    pub(crate) rules: Vec<super::Rule>,
    pub(crate) compiled: CompiledRules,
}

/// The effect a request is judged to have, before gates are consulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Judgement {
    Allow {
        rule: Option<RuleRef>,
        reason: String,
    },
    Deny {
        rule: Option<RuleRef>,
        reason: String,
    },
    Gate {
        rule: RuleRef,
        gates: Vec<String>,
        reason: String,
    },
}

/// An atom ready for matching: paths normalised, hosts parsed.
enum Resolved<'a> {
    Path {
        access: Access,
        path: String,
        recursive: bool,
    },
    Exec {
        argv: &'a [Word],
        open_tail: bool,
    },
    Net(NetTarget),
    Tool {
        name: &'a str,
        arguments: &'a Value,
    },
}

impl Resolved<'_> {
    /// Writes what the atom asks, such as ``read `src/lib.rs` ``, to `out`.
    fn describe_into(&self, out: &mut String) {
        use std::fmt::Write;
        // INVARIANT: writing to a `String` cannot fail.
        let _ = match self {
            Resolved::Path {
                access,
                path,
                recursive,
            } => {
                let shown = if path.is_empty() { "." } else { path };
                let below = if *recursive {
                    " and everything below it"
                } else {
                    ""
                };
                write!(out, "{} `{shown}`{below}", access.name())
            }
            Resolved::Exec { argv, .. } => {
                out.push_str("run `");
                for (word_idx, word) in argv.iter().enumerate() {
                    if word_idx > 0 {
                        out.push(' ');
                    }
                    out.push_str(word.display());
                }
                write!(out, "`")
            }
            Resolved::Net(target) => match target.port {
                Some(port) => write!(
                    out,
                    "connect to `{}://{}:{port}`",
                    target.scheme, target.host
                ),
                None => write!(out, "connect to `{}://{}`", target.scheme, target.host),
            },
            Resolved::Tool { name, .. } => write!(out, "call tool `{name}`"),
        };
    }

    fn describe(&self) -> String {
        let mut out = String::with_capacity(64);
        self.describe_into(&mut out);
        out
    }

    /// ``<what the atom asks><verb><rule>``, built in one buffer.
    fn sentence(&self, verb: &str, rule: &str) -> String {
        let mut out = String::with_capacity(64 + verb.len() + rule.len());
        self.describe_into(&mut out);
        out.push_str(verb);
        out.push_str(rule);
        out
    }
}

pub(crate) struct Judge<'a> {
    pub(crate) state: &'a PolicyState,
    pub(crate) grants: &'a [std::sync::Arc<Grant>],
}

impl Judge<'_> {
    pub(crate) fn rule_meta(&self, rule: RuleRef) -> Option<&RuleMeta> {
        let (set_idx, rule_idx) = rule;
        let compiled = match set_idx {
            0 => &self.state.rules,
            _ => &self.grants.get(set_idx as usize - 1)?.compiled,
        };
        compiled.rules.get(rule_idx as usize)
    }

    /// The rule sets that apply to the request: the policy, then grants for this agent and task.
    fn rule_sets<'s>(
        &'s self,
        request: &'s Request,
    ) -> impl Iterator<Item = (u32, &'s CompiledRules)> + 's {
        let grants = self.grants.iter().enumerate().filter(move |(_, grant)| {
            grant.agent == request.agent && request.task.as_deref() == Some(grant.task.as_str())
        });
        std::iter::once((0, &self.state.rules))
            .chain(grants.map(|(grant_idx, grant)| (grant_idx as u32 + 1, &grant.compiled)))
    }

    pub(crate) fn judge(&self, request: &Request) -> Judgement {
        let deny = |reason: String| Judgement::Deny { rule: None, reason };
        let cwd = match request.cwd.as_deref() {
            Some(cwd) => match path::normalize(&self.state.root, "", cwd) {
                Ok(cwd) => cwd,
                Err(reason) => return deny(format!("working directory refused: {reason}")),
            },
            None => String::new(),
        };
        let roles = self.state.roles.roles_of(&request.agent);
        let subject = Subject {
            agent: &request.agent,
            roles: &roles,
            task: request.task.as_deref(),
        };
        let shell_atoms;
        let mut resolved = Vec::new();
        match &request.action {
            Action::Read { path } | Action::Write { path } | Action::Delete { path } => {
                let access = request.action.access().unwrap_or(Access::Read);
                match self.resolve_path(request, &cwd, path) {
                    Ok(path) => resolved.push(Resolved::Path {
                        access,
                        path,
                        recursive: false,
                    }),
                    Err(reason) => return deny(reason),
                }
            }
            Action::Run { command } => {
                shell_atoms = command::analyse(command, &self.state.shell);
                if shell_atoms.is_empty() {
                    return deny("the command line runs nothing".to_string());
                }
                for atom in &shell_atoms {
                    match self.resolve_shell_atom(request, &cwd, atom, &mut resolved) {
                        Ok(()) => {}
                        Err(reason) => return deny(reason),
                    }
                }
            }
            Action::Net { url } => match net::parse_target(url, "https", None) {
                Ok(target) => resolved.push(Resolved::Net(target)),
                Err(reason) => return deny(reason),
            },
            Action::Tool { name, args } => {
                if !(args.is_object() || args.is_null()) {
                    return deny(format!(
                        "the arguments of tool `{name}` are not a JSON object"
                    ));
                }
                resolved.push(Resolved::Tool {
                    name,
                    arguments: args,
                });
            }
        }
        self.combine(request, subject, &resolved)
    }

    fn resolve_path(&self, request: &Request, cwd: &str, raw: &str) -> Result<String, String> {
        let normalized = path::normalize(&self.state.root, cwd, raw)?;
        if self.state.resolve_symlinks || request.resolve_symlinks {
            return path::resolve_symlinks(&self.state.root, &normalized);
        }
        Ok(normalized)
    }

    fn resolve_shell_atom<'a>(
        &self,
        request: &Request,
        cwd: &str,
        atom: &'a ShellAtom,
        resolved: &mut Vec<Resolved<'a>>,
    ) -> Result<(), String> {
        match atom {
            ShellAtom::Uncertain { reason } => Err(format!(
                "the command line cannot be judged with certainty: {reason}"
            )),
            ShellAtom::Exec { argv, open_tail } => match argv.first() {
                Some(Word::Literal(_)) => {
                    resolved.push(Resolved::Exec {
                        argv,
                        open_tail: *open_tail,
                    });
                    Ok(())
                }
                Some(Word::Dynamic(source)) => {
                    Err(format!("the program `{source}` is known only at run time"))
                }
                None => Ok(()),
            },
            ShellAtom::Path {
                access,
                path,
                cd_dirs,
                recursive,
            } => {
                // A relative path is judged from the request's directory and from every directory a
                // `cd` on the line may have moved to (the analysis already lists joined `cd`s).
                let mut bases = vec![cwd.to_string()];
                if !path.starts_with('/') {
                    for cd_dir in cd_dirs {
                        bases.push(path::normalize(&self.state.root, cwd, cd_dir)?);
                    }
                    bases.sort();
                    bases.dedup();
                }
                for base in bases {
                    let normalized = self.resolve_path(request, &base, path)?;
                    resolved.push(Resolved::Path {
                        access: *access,
                        path: normalized,
                        recursive: *recursive,
                    });
                }
                Ok(())
            }
            ShellAtom::Net {
                target,
                default_scheme,
                port,
            } => {
                resolved.push(Resolved::Net(net::parse_target(
                    target,
                    default_scheme,
                    *port,
                )?));
                Ok(())
            }
        }
    }

    /// The matching rules of `atom`, and whether its deny comes only from what lies below a
    /// recursive operation's directory.
    fn fold(&self, request: &Request, subject: Subject<'_>, atom: &Resolved<'_>) -> (Fold, bool) {
        let mut fold = Fold::default();
        let mut below = Fold::default();
        for (set_idx, rules) in self.rule_sets(request) {
            match atom {
                Resolved::Path {
                    access,
                    path,
                    recursive,
                } => {
                    rules.match_path(set_idx, *access, path, subject, &mut fold);
                    if *recursive {
                        rules.match_below(set_idx, *access, path, subject, &mut below);
                    }
                }
                Resolved::Exec { argv, open_tail } => {
                    rules.match_run(set_idx, argv, *open_tail, subject, &mut fold)
                }
                Resolved::Net(target) => rules.match_net(set_idx, target, subject, &mut fold),
                Resolved::Tool { name, arguments } => {
                    rules.match_tool(set_idx, name, arguments, subject, &mut fold)
                }
            }
        }
        let deny_only_below = fold.deny.is_none() && below.deny.is_some();
        fold.add_restrictive(&below);
        (fold, deny_only_below)
    }

    fn by_rule(&self, rule: RuleRef) -> &str {
        self.rule_meta(rule)
            .map_or("an unknown rule", |meta| meta.display.as_str())
    }

    fn combine(
        &self,
        request: &Request,
        subject: Subject<'_>,
        atoms: &[Resolved<'_>],
    ) -> Judgement {
        if atoms.is_empty() {
            return Judgement::Deny {
                rule: None,
                reason: "the request asks for nothing that can be judged".to_string(),
            };
        }
        let mut first_gate: Option<(RuleRef, String)> = None;
        let mut all_gates: Vec<String> = Vec::new();
        let mut first_allow: Option<RuleRef> = None;
        for atom in atoms {
            let (fold, deny_only_below) = self.fold(request, subject, atom);
            if let Some(rule) = fold.deny {
                let verb = if deny_only_below {
                    " may reach paths denied by "
                } else {
                    " is denied by "
                };
                return Judgement::Deny {
                    rule: Some(rule),
                    reason: atom.sentence(verb, self.by_rule(rule)),
                };
            }
            if let Some(&rule) = fold.gates.first() {
                for gate_rule in &fold.gates {
                    for gate in self
                        .rule_meta(*gate_rule)
                        .map(|meta| meta.gates.as_slice())
                        .unwrap_or_default()
                    {
                        if !all_gates.contains(gate) {
                            all_gates.push(gate.clone());
                        }
                    }
                }
                first_gate.get_or_insert_with(|| (rule, atom.describe()));
                continue;
            }
            match fold.allow {
                Some(rule) => {
                    first_allow.get_or_insert(rule);
                }
                None => {
                    let task = request
                        .task
                        .as_deref()
                        .map_or(String::new(), |task| format!(" on task `{task}`"));
                    return Judgement::Deny {
                        rule: None,
                        reason: format!(
                            "no rule allows agent `{}`{task} to {}",
                            request.agent,
                            atom.describe()
                        ),
                    };
                }
            }
        }
        if let Some((rule, description)) = first_gate {
            let reason = format!(
                "{description} is held by {} until {} passes",
                self.by_rule(rule),
                all_gates.join(" and ")
            );
            return Judgement::Gate {
                rule,
                gates: all_gates,
                reason,
            };
        }
        // INVARIANT: `atoms` is not empty and none was denied or gated, so every atom set `first_allow`.
        let reason = match (first_allow, atoms) {
            (Some(rule), [only]) => only.sentence(" is allowed by ", self.by_rule(rule)),
            (Some(rule), _) => format!(
                "all {} parts are allowed, the first by {}",
                atoms.len(),
                self.by_rule(rule)
            ),
            (None, _) => {
                return Judgement::Deny {
                    rule: None,
                    reason: "no rule allows the request".to_string(),
                }
            }
        };
        Judgement::Allow {
            rule: first_allow,
            reason,
        }
    }
}
