//! The compiled policy: rules indexed by subject, action and literal resource prefix.
//!
//! A check never scans every rule. Rules are bucketed first by subject (any agent, one agent id, one
//! role), then per action by the literal part of their resource: path patterns by the directory
//! before their first wildcard, run patterns by program, network patterns by exact host or domain
//! suffix, tools by exact name. A lookup probes one bucket per directory of the path (or per label
//! of the host), so its cost grows with the depth of the request, not with the number of rules.
//! The common path shapes (`dir/**`, an exact path, a name anywhere) are answered by the lookup
//! itself; only true globs go to a bucket's `GlobSet`, matched together.

use globset::{Candidate, GlobSet, GlobSetBuilder};
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::atom::{Access, Word};
use super::err::InvalidPolicyError;
use super::net::{self, HostPattern, NetPattern, NetTarget};
use super::path::{self, may_match_below, PathMatch};
use super::program::{self, RunPattern};
use super::rule::{Effect, GateDef, Located, Rule};
use super::tool::{self, ToolPattern};
use crate::event::RuleOrigin;

/// What a compiled rule keeps besides its patterns.
#[derive(Clone, Debug)]
pub(crate) struct RuleMeta {
    pub(crate) origin: RuleOrigin,
    /// The origin and the rule's reason, as decisions quote them: ``rule `x` (file:line) (why)``.
    pub(crate) display: String,
    pub(crate) effect: Effect,
    pub(crate) gates: Vec<String>,
    tasks: Option<Vec<String>>,
    agent_globs: Option<GlobSet>,
}

/// A reference to a rule from an index bucket.
#[derive(Clone, Copy, Debug)]
struct Entry {
    rule_idx: u32,
    /// True when the entry sits in the any-agent bucket because of agent globs, which must match.
    check_agent_globs: bool,
}

/// Who is asking: the agent, its roles, its task.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub(crate) agent: &'a str,
    pub(crate) roles: &'a [String],
    pub(crate) task: Option<&'a str>,
}

/// A rule of some compiled set: `(set_idx, rule_idx)`; set 0 is the policy, later sets are grants.
pub(crate) type RuleRef = (u32, u32);

/// The matching rules found for one atom, strongest first by precedence and then by order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fold {
    pub(crate) deny: Option<RuleRef>,
    pub(crate) gates: Vec<RuleRef>,
    pub(crate) allow: Option<RuleRef>,
}

impl Fold {
    fn add(&mut self, effect: Effect, rule: RuleRef) {
        match effect {
            Effect::Deny => self.deny = Some(self.deny.map_or(rule, |known| known.min(rule))),
            Effect::Gate => {
                if !self.gates.contains(&rule) {
                    self.gates.push(rule);
                    self.gates.sort_unstable();
                }
            }
            Effect::Allow => self.allow = Some(self.allow.map_or(rule, |known| known.min(rule))),
        }
    }

    /// Adds the deny and gate rules of `other` (used for what a recursive operation reaches).
    pub(crate) fn add_restrictive(&mut self, other: &Fold) {
        if let Some(deny) = other.deny {
            self.add(Effect::Deny, deny);
        }
        for gate in &other.gates {
            self.add(Effect::Gate, *gate);
        }
    }
}

/// Rules grouped by subject.
#[derive(Debug)]
struct SubjectIndex<I> {
    any: I,
    by_agent: FxHashMap<String, I>,
    by_role: FxHashMap<String, I>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum SubjectKey {
    Any,
    Agent(String),
    Role(String),
}

impl<I> SubjectIndex<I> {
    fn build<P>(
        items: Vec<(SubjectKey, Entry, P)>,
        mut build_one: impl FnMut(Vec<(Entry, P)>) -> I,
    ) -> SubjectIndex<I> {
        let mut grouped: FxHashMap<SubjectKey, Vec<(Entry, P)>> = FxHashMap::default();
        for (key, entry, pattern) in items {
            grouped.entry(key).or_default().push((entry, pattern));
        }
        let any = build_one(grouped.remove(&SubjectKey::Any).unwrap_or_default());
        let mut by_agent = FxHashMap::default();
        let mut by_role = FxHashMap::default();
        for (key, entries) in grouped {
            match key {
                SubjectKey::Agent(agent) => {
                    by_agent.insert(agent, build_one(entries));
                }
                SubjectKey::Role(role) => {
                    by_role.insert(role, build_one(entries));
                }
                SubjectKey::Any => {}
            }
        }
        SubjectIndex {
            any,
            by_agent,
            by_role,
        }
    }

    fn for_each(&self, subject: Subject<'_>, mut visit: impl FnMut(&I)) {
        visit(&self.any);
        if let Some(index) = self.by_agent.get(subject.agent) {
            visit(index);
        }
        for role in subject.roles {
            if let Some(index) = self.by_role.get(role) {
                visit(index);
            }
        }
    }
}

/// Path rules of one subject and access, bucketed by literal prefix.
#[derive(Debug, Default)]
struct PathIndex {
    buckets: FxHashMap<String, PathBucket>,
    /// Patterns without `/` or wildcards (`.env`), by the component name they match anywhere.
    by_name: FxHashMap<String, Vec<Entry>>,
}

/// The path patterns sharing one literal prefix.
#[derive(Debug, Default)]
struct PathBucket {
    /// Patterns that match the prefix and everything below it.
    at_or_below: Vec<Entry>,
    /// Patterns that match everything strictly below the prefix.
    below: Vec<Entry>,
    /// Every other pattern, matched together by one glob set.
    globs: Option<GlobBucket>,
}

#[derive(Debug)]
struct GlobBucket {
    set: GlobSet,
    /// The entry each glob of `set` belongs to, by glob index.
    owners: Vec<Entry>,
}

impl PathIndex {
    fn build(patterns: Vec<(Entry, path::PathPattern)>) -> Result<PathIndex, String> {
        let mut index = PathIndex::default();
        let mut glob_builders: FxHashMap<String, (GlobSetBuilder, Vec<Entry>)> =
            FxHashMap::default();
        for (entry, pattern) in patterns {
            match pattern.kind {
                PathMatch::NamedAnywhere(name) => {
                    index.by_name.entry(name).or_default().push(entry)
                }
                PathMatch::AtOrBelow => {
                    index.bucket(pattern.literal_prefix).at_or_below.push(entry)
                }
                PathMatch::Below => index.bucket(pattern.literal_prefix).below.push(entry),
                PathMatch::Globs(globs) => {
                    let (builder, owners) = glob_builders
                        .entry(pattern.literal_prefix)
                        .or_insert_with(|| (GlobSetBuilder::new(), Vec::new()));
                    for glob in globs {
                        builder.add(glob);
                        owners.push(entry);
                    }
                }
            }
        }
        for (prefix, (builder, owners)) in glob_builders {
            let set = builder.build().map_err(|error| error.to_string())?;
            index.bucket(prefix).globs = Some(GlobBucket { set, owners });
        }
        Ok(index)
    }

    fn bucket(&mut self, prefix: String) -> &mut PathBucket {
        self.buckets.entry(prefix).or_default()
    }

    /// Calls `found` with every entry whose pattern matches `path`.
    fn for_each_match(&self, path: &str, mut found: impl FnMut(Entry)) {
        let candidate = Candidate::new(path);
        let mut glob_indices = Vec::new();
        let mut visit = |bucket: &PathBucket, strictly_below: bool| {
            bucket.at_or_below.iter().copied().for_each(&mut found);
            if strictly_below {
                bucket.below.iter().copied().for_each(&mut found);
            }
            if let Some(globs) = &bucket.globs {
                globs
                    .set
                    .matches_candidate_into(&candidate, &mut glob_indices);
                for glob_idx in &glob_indices {
                    if let Some(entry) = globs.owners.get(*glob_idx) {
                        found(*entry);
                    }
                }
            }
        };
        if path.is_empty() {
            // The root itself: only `**` (below the empty prefix) and globs can match it.
            if let Some(bucket) = self.buckets.get("") {
                bucket.below.iter().copied().for_each(&mut found);
                if let Some(globs) = &bucket.globs {
                    globs
                        .set
                        .matches_candidate_into(&candidate, &mut glob_indices);
                    glob_indices
                        .iter()
                        .filter_map(|glob_idx| globs.owners.get(*glob_idx))
                        .copied()
                        .for_each(&mut found);
                }
            }
            return;
        }
        for ancestor in path::ancestors(path) {
            if let Some(bucket) = self.buckets.get(ancestor) {
                visit(bucket, true);
            }
        }
        if let Some(bucket) = self.buckets.get(path) {
            visit(bucket, false);
        }
        if !self.by_name.is_empty() {
            for component in path.split('/') {
                if let Some(entries) = self.by_name.get(component) {
                    entries.iter().copied().for_each(&mut found);
                }
            }
        }
    }

    /// Calls `found` with every entry whose pattern may match something strictly below `dir`.
    fn for_each_below(&self, dir: &str, mut found: impl FnMut(Entry)) {
        // A name that matches anywhere may match below any directory.
        self.by_name
            .values()
            .flatten()
            .copied()
            .for_each(&mut found);
        for (prefix, bucket) in &self.buckets {
            if may_match_below(prefix, dir) {
                let glob_owners = bucket.globs.iter().flat_map(|globs| &globs.owners);
                bucket
                    .at_or_below
                    .iter()
                    .chain(&bucket.below)
                    .chain(glob_owners)
                    .copied()
                    .for_each(&mut found);
            }
        }
    }
}

/// Run rules of one subject, by program key.
#[derive(Debug, Default)]
struct RunIndex {
    by_program: FxHashMap<String, Vec<(Entry, RunPattern)>>,
    any_program: Vec<(Entry, RunPattern)>,
}

/// Network rules of one subject, by host.
#[derive(Debug, Default)]
struct NetIndex {
    exact: FxHashMap<String, Vec<(Entry, NetPattern)>>,
    suffix: FxHashMap<String, Vec<(Entry, NetPattern)>>,
    any_host: Vec<(Entry, NetPattern)>,
}

/// Tool rules of one subject, by exact name.
#[derive(Debug, Default)]
struct ToolIndex {
    exact: FxHashMap<String, Vec<(Entry, ToolPattern)>>,
    globbed: Vec<(Entry, ToolPattern)>,
}

/// Roles given to agents by the policy.
#[derive(Debug, Default)]
pub(crate) struct RoleTable {
    exact: FxHashMap<String, Vec<String>>,
    globbed: Vec<(globset::GlobMatcher, Vec<String>)>,
}

impl RoleTable {
    pub(crate) fn build(agents: &[(String, Vec<String>)]) -> Result<RoleTable, String> {
        let mut table = RoleTable::default();
        for (agent, roles) in agents {
            if agent.contains(['*', '?', '[', '{']) {
                let matcher = globset::Glob::new(agent)
                    .map_err(|error| format!("agent pattern `{agent}`: {error}"))?
                    .compile_matcher();
                table.globbed.push((matcher, roles.clone()));
            } else {
                table
                    .exact
                    .entry(agent.clone())
                    .or_default()
                    .extend(roles.iter().cloned());
            }
        }
        for roles in table.exact.values_mut() {
            roles.sort();
            roles.dedup();
        }
        Ok(table)
    }

    /// The roles of `agent`, sorted and without repeats.
    pub(crate) fn roles_of(&self, agent: &str) -> std::borrow::Cow<'_, [String]> {
        let exact = self.exact.get(agent).map(Vec::as_slice).unwrap_or_default();
        if self.globbed.is_empty() {
            return std::borrow::Cow::Borrowed(exact);
        }
        let mut roles: Vec<String> = exact.to_vec();
        for (matcher, globbed_roles) in &self.globbed {
            if matcher.is_match(agent) {
                roles.extend(globbed_roles.iter().cloned());
            }
        }
        roles.sort();
        roles.dedup();
        std::borrow::Cow::Owned(roles)
    }

    pub(crate) fn defines_role(&self, role: &str) -> bool {
        self.exact
            .values()
            .chain(self.globbed.iter().map(|(_, roles)| roles))
            .any(|roles| roles.iter().any(|known| known == role))
    }
}

/// A compiled set of rules.
#[derive(Debug)]
pub(crate) struct CompiledRules {
    pub(crate) rules: Vec<RuleMeta>,
    paths: [SubjectIndex<PathIndex>; 3],
    run: SubjectIndex<RunIndex>,
    net: SubjectIndex<NetIndex>,
    tools: SubjectIndex<ToolIndex>,
}

/// What the rules are compiled against.
pub(crate) struct CompileContext<'a> {
    pub(crate) root: &'a str,
    pub(crate) file: Option<&'a str>,
    pub(crate) gates: &'a FxHashMap<String, GateDef>,
    pub(crate) roles: &'a RoleTable,
}

fn access_slot(access: Access) -> usize {
    match access {
        Access::Read => 0,
        Access::Write => 1,
        Access::Delete => 2,
    }
}

fn located_error(reason: String, line: Option<u32>) -> InvalidPolicyError {
    InvalidPolicyError::new(reason).at_line(line)
}

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// Checks what a rule says about itself, apart from its patterns.
fn validate_rule(rule: &Rule, context: &CompileContext<'_>) -> Result<(), InvalidPolicyError> {
    if rule.id.is_empty() {
        return Err(InvalidPolicyError::new("a rule has an empty id"));
    }
    let n_patterns = rule.read.len()
        + rule.write.len()
        + rule.delete.len()
        + rule.run.len()
        + rule.net.len()
        + rule.tools.len();
    if n_patterns == 0 {
        return Err(InvalidPolicyError::new(
            "the rule names no action (read, write, delete, run, net or tools), so it can never match",
        ));
    }
    for (field, list) in [
        ("agents", &rule.agents),
        ("roles", &rule.roles),
        ("tasks", &rule.tasks),
    ] {
        if list.as_ref().is_some_and(Vec::is_empty) {
            return Err(InvalidPolicyError::new(format!(
                "`{field}` is an empty list, so the rule can never match; leave it out to mean every one"
            )));
        }
        if let Some(value) = list.iter().flatten().find(|value| value.is_empty()) {
            return Err(InvalidPolicyError::new(format!(
                "`{field}` has an empty name `{value}`"
            )));
        }
    }
    for role in rule.roles.iter().flatten() {
        if !context.roles.defines_role(role) {
            return Err(InvalidPolicyError::new(format!(
                "role `{role}` is given to no agent, so the rule can never match"
            )));
        }
    }
    match rule.effect {
        Effect::Gate if rule.gates.is_empty() => Err(InvalidPolicyError::new(
            "effect `gate` needs `gates`: the names of the gates that must pass",
        )),
        Effect::Allow | Effect::Deny if !rule.gates.is_empty() => {
            Err(InvalidPolicyError::new(format!(
                "`gates` only applies to effect `gate`, not `{}`",
                rule.effect.name()
            )))
        }
        _ => {
            if let Some(unknown) = rule
                .gates
                .iter()
                .find(|gate| !context.gates.contains_key(*gate))
            {
                return Err(InvalidPolicyError::new(format!(
                    "unknown gate `{unknown}`: declare it under [gates] or use `human-review`"
                )));
            }
            Ok(())
        }
    }
}

impl CompiledRules {
    /// Compiles `rules`; the first invalid one fails the whole set.
    pub(crate) fn compile(
        rules: &[Rule],
        context: &CompileContext<'_>,
    ) -> Result<CompiledRules, InvalidPolicyError> {
        let mut metas = Vec::with_capacity(rules.len());
        let mut path_items: [Vec<(SubjectKey, Entry, path::PathPattern)>; 3] = Default::default();
        let mut run_items = Vec::new();
        let mut net_items = Vec::new();
        let mut tool_items = Vec::new();
        let mut seen_ids: FxHashMap<&str, Option<u32>> = FxHashMap::default();
        for (rule_idx, rule) in rules.iter().enumerate() {
            let in_rule = |error: InvalidPolicyError| error.in_rule(&rule.id).at_line(rule.line);
            if let Some(first_line) = seen_ids.insert(&rule.id, rule.line) {
                let first =
                    first_line.map_or(String::new(), |line| format!(" (first at line {line})"));
                return Err(in_rule(InvalidPolicyError::new(format!(
                    "duplicate rule id{first}"
                ))));
            }
            validate_rule(rule, context).map_err(in_rule)?;
            let rule_idx = u32::try_from(rule_idx)
                .map_err(|_| InvalidPolicyError::new("more than 4 billion rules"))?;
            let (keys, agent_globs) =
                subject_keys(rule).map_err(|reason| in_rule(InvalidPolicyError::new(reason)))?;
            let entries: Vec<(SubjectKey, Entry)> = keys
                .into_iter()
                .map(|(key, check_agent_globs)| {
                    (
                        key,
                        Entry {
                            rule_idx,
                            check_agent_globs,
                        },
                    )
                })
                .collect();
            for (access, patterns) in [
                (Access::Read, &rule.read),
                (Access::Write, &rule.write),
                (Access::Delete, &rule.delete),
            ] {
                for pattern in patterns {
                    let compiled = path::compile_pattern(context.root, &pattern.value)
                        .map_err(|reason| in_rule(located_error(reason, pattern.line)))?;
                    push_for_subjects(&mut path_items[access_slot(access)], &entries, &compiled);
                }
            }
            compile_each(
                &rule.run,
                program::compile_pattern,
                &entries,
                &mut run_items,
            )
            .map_err(in_rule)?;
            compile_each(&rule.net, net::compile_pattern, &entries, &mut net_items)
                .map_err(in_rule)?;
            for tool in &rule.tools {
                let compiled = tool::compile_pattern(tool)
                    .map_err(|reason| in_rule(located_error(reason, tool.line)))?;
                push_for_subjects(&mut tool_items, &entries, &compiled);
            }
            let origin = RuleOrigin {
                id: rule.id.clone(),
                file: context.file.map(str::to_string),
                line: rule.line,
            };
            let display = match &rule.reason {
                Some(why) => format!("{origin} ({why})"),
                None => origin.to_string(),
            };
            metas.push(RuleMeta {
                origin,
                display,
                effect: rule.effect,
                gates: rule.gates.clone(),
                tasks: rule.tasks.clone(),
                agent_globs,
            });
        }
        let mut glob_error = None;
        let [read_items, write_items, delete_items] = path_items;
        let mut build_paths = |items| {
            SubjectIndex::build(items, |patterns| {
                PathIndex::build(patterns).unwrap_or_else(|error| {
                    glob_error = Some(error);
                    PathIndex::default()
                })
            })
        };
        let paths = [
            build_paths(read_items),
            build_paths(write_items),
            build_paths(delete_items),
        ];
        if let Some(error) = glob_error {
            return Err(InvalidPolicyError::new(error));
        }
        Ok(CompiledRules {
            rules: metas,
            paths,
            run: SubjectIndex::build(run_items, build_run_index),
            net: SubjectIndex::build(net_items, build_net_index),
            tools: SubjectIndex::build(tool_items, build_tool_index),
        })
    }

    fn consider(
        &self,
        set_idx: u32,
        entry: Entry,
        subject: Subject<'_>,
        restrictive_only: bool,
        fold: &mut Fold,
    ) {
        let Some(meta) = self.rules.get(entry.rule_idx as usize) else {
            return;
        };
        if restrictive_only && meta.effect == Effect::Allow {
            return;
        }
        if let Some(tasks) = &meta.tasks {
            if !subject
                .task
                .is_some_and(|task| tasks.iter().any(|known| known == task))
            {
                return;
            }
        }
        if entry.check_agent_globs
            && !meta
                .agent_globs
                .as_ref()
                .is_some_and(|globs| globs.is_match(subject.agent))
        {
            return;
        }
        fold.add(meta.effect, (set_idx, entry.rule_idx));
    }

    /// Adds the rules matching access to `path` (normalised, relative to the root).
    pub(crate) fn match_path(
        &self,
        set_idx: u32,
        access: Access,
        path: &str,
        subject: Subject<'_>,
        fold: &mut Fold,
    ) {
        self.paths[access_slot(access)].for_each(subject, |index| {
            index.for_each_match(path, |entry| {
                self.consider(set_idx, entry, subject, false, fold)
            });
        });
    }

    /// Adds the deny and gate rules that may match something strictly below `dir`.
    pub(crate) fn match_below(
        &self,
        set_idx: u32,
        access: Access,
        dir: &str,
        subject: Subject<'_>,
        fold: &mut Fold,
    ) {
        self.paths[access_slot(access)].for_each(subject, |index| {
            index.for_each_below(dir, |entry| {
                self.consider(set_idx, entry, subject, true, fold)
            });
        });
    }

    /// Adds the rules matching running `argv`.
    pub(crate) fn match_run(
        &self,
        set_idx: u32,
        argv: &[Word],
        open_tail: bool,
        subject: Subject<'_>,
        fold: &mut Fold,
    ) {
        let Some((Word::Literal(program_text), arguments)) = argv.split_first() else {
            return;
        };
        let key = program::program_key(program_text);
        let basename = program::program_basename(program_text);
        self.run.for_each(subject, |index| {
            let mut consider_all = |patterns: &[(Entry, RunPattern)], restrictive_only: bool| {
                for (entry, pattern) in patterns {
                    if pattern.matches_arguments(arguments, open_tail) {
                        self.consider(set_idx, *entry, subject, restrictive_only, fold);
                    }
                }
            };
            if let Some(patterns) = index.by_program.get(&key) {
                consider_all(patterns, false);
            }
            if basename != key {
                if let Some(patterns) = index.by_program.get(basename) {
                    consider_all(patterns, true);
                }
            }
            consider_all(&index.any_program, false);
        });
    }

    /// Adds the rules matching a connection to `target`.
    pub(crate) fn match_net(
        &self,
        set_idx: u32,
        target: &NetTarget,
        subject: Subject<'_>,
        fold: &mut Fold,
    ) {
        self.net.for_each(subject, |index| {
            let mut consider_all = |patterns: &[(Entry, NetPattern)]| {
                for (entry, pattern) in patterns {
                    if pattern.matches_scheme_and_port(target) {
                        self.consider(set_idx, *entry, subject, false, fold);
                    }
                }
            };
            if let Some(patterns) = index.exact.get(&target.host) {
                consider_all(patterns);
            }
            if target.is_domain {
                for suffix in net::domain_suffixes(&target.host) {
                    if let Some(patterns) = index.suffix.get(suffix) {
                        consider_all(patterns);
                    }
                }
            }
            consider_all(&index.any_host);
        });
    }

    /// Adds the rules matching a call of tool `name` with `arguments`.
    pub(crate) fn match_tool(
        &self,
        set_idx: u32,
        name: &str,
        arguments: &Value,
        subject: Subject<'_>,
        fold: &mut Fold,
    ) {
        self.tools.for_each(subject, |index| {
            let exact = index.exact.get(name).map(Vec::as_slice).unwrap_or_default();
            for (entry, pattern) in exact.iter().chain(&index.globbed) {
                if pattern.matches(name, arguments) {
                    self.consider(set_idx, *entry, subject, false, fold);
                }
            }
        });
    }
}

/// The subject keys a rule is indexed under, each with whether agent globs must be checked.
type SubjectKeys = Vec<(SubjectKey, bool)>;

/// The subject keys of a rule, and its agent globs.
fn subject_keys(rule: &Rule) -> Result<(SubjectKeys, Option<GlobSet>), String> {
    if rule.agents.is_none() && rule.roles.is_none() {
        return Ok((vec![(SubjectKey::Any, false)], None));
    }
    let mut keys = Vec::new();
    let mut globs = GlobSetBuilder::new();
    let mut n_globs = 0;
    for agent in rule.agents.iter().flatten() {
        if agent == "*" {
            keys.push((SubjectKey::Any, false));
        } else if is_glob(agent) {
            globs.add(
                globset::Glob::new(agent)
                    .map_err(|error| format!("agent pattern `{agent}`: {error}"))?,
            );
            n_globs += 1;
        } else {
            keys.push((SubjectKey::Agent(agent.clone()), false));
        }
    }
    let agent_globs = if n_globs > 0 {
        keys.push((SubjectKey::Any, true));
        Some(globs.build().map_err(|error| error.to_string())?)
    } else {
        None
    };
    for role in rule.roles.iter().flatten() {
        keys.push((SubjectKey::Role(role.clone()), false));
    }
    Ok((keys, agent_globs))
}

fn push_for_subjects<P: Clone>(
    items: &mut Vec<(SubjectKey, Entry, P)>,
    entries: &[(SubjectKey, Entry)],
    pattern: &P,
) {
    for (key, entry) in entries {
        items.push((key.clone(), *entry, pattern.clone()));
    }
}

fn compile_each<P: Clone>(
    patterns: &[Located<String>],
    compile: fn(&str) -> Result<P, String>,
    entries: &[(SubjectKey, Entry)],
    items: &mut Vec<(SubjectKey, Entry, P)>,
) -> Result<(), InvalidPolicyError> {
    for pattern in patterns {
        let compiled =
            compile(&pattern.value).map_err(|reason| located_error(reason, pattern.line))?;
        push_for_subjects(items, entries, &compiled);
    }
    Ok(())
}

fn build_run_index(patterns: Vec<(Entry, RunPattern)>) -> RunIndex {
    let mut index = RunIndex::default();
    for (entry, pattern) in patterns {
        if pattern.program == "*" {
            index.any_program.push((entry, pattern));
        } else {
            index
                .by_program
                .entry(pattern.program.clone())
                .or_default()
                .push((entry, pattern));
        }
    }
    index
}

fn build_net_index(patterns: Vec<(Entry, NetPattern)>) -> NetIndex {
    let mut index = NetIndex::default();
    for (entry, pattern) in patterns {
        match &pattern.host {
            HostPattern::Exact(host) => index
                .exact
                .entry(host.clone())
                .or_default()
                .push((entry, pattern)),
            HostPattern::Suffix(suffix) => index
                .suffix
                .entry(suffix.clone())
                .or_default()
                .push((entry, pattern)),
            HostPattern::Any => index.any_host.push((entry, pattern)),
        }
    }
    index
}

fn build_tool_index(patterns: Vec<(Entry, ToolPattern)>) -> ToolIndex {
    let mut index = ToolIndex::default();
    for (entry, pattern) in patterns {
        match pattern.exact_name.clone() {
            Some(name) => index.exact.entry(name).or_default().push((entry, pattern)),
            None => index.globbed.push((entry, pattern)),
        }
    }
    index
}
