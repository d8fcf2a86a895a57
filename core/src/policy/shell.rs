//! Parses a shell command line into the simple commands it runs.
//!
//! The command line is parsed with tree-sitter-bash and the whole tree is walked: every simple
//! command anywhere (in pipelines, lists, subshells, `{ }` groups, `$(...)`, backticks, process
//! substitutions, here-document bodies, double-quoted strings and `[[ ]]`) comes out as one
//! [`SimpleCommand`], in source order, inner commands before the command whose words hold them.
//!
//! This is a security boundary, so it fails closed: a syntax error, a construct that is not
//! analysed (control flow, function definitions, declarations) or any node kind not named here
//! is an error, never skipped.

use std::cell::RefCell;

use tree_sitter::{Node, Parser, Tree};

use super::atom::Word;

/// The longest command line that is parsed, in bytes.
const MAX_SCRIPT_BYTES: usize = 100_000;

/// The deepest syntax tree that is walked, so that the recursive walk cannot exhaust the stack.
const MAX_TREE_DEPTH: usize = 200;

/// Tokens that may separate or join statements in a program, list, pipeline or group.
const STATEMENT_TOKENS: &[&str] = &[
    ";", "&", ";;", "&&", "||", "|", "|&", "\n", "{", "}", "(", ")", "!",
];

thread_local! {
    /// One parser per thread: creating a parser is costly and parsing is on a hot path.
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

/// How a redirection opens its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedirectOp {
    /// `<`: the target is read.
    Read,
    /// `>`, `>|`, `&>` or `>&file`: the target is created or truncated.
    Write,
    /// `>>` or `&>>`: the target is appended to.
    Append,
    /// `<>`: the target is opened for reading and writing.
    ReadWrite,
}

/// A redirection to or from a file (file descriptor duplications such as `2>&1` are not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// How the target is opened.
    pub(crate) op: RedirectOp,
    /// The file, as a word of the command line.
    pub(crate) target: Word,
}

/// One simple command: assignments, words and redirections, as bash would run it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    /// The `NAME=value` words before the program (or alone, for a standalone assignment).
    pub(crate) assignments: Vec<(String, Word)>,
    /// The program and its arguments; empty for a standalone assignment or redirection.
    pub(crate) argv: Vec<Word>,
    /// The redirections to and from files, including those of an enclosing group or subshell.
    pub(crate) redirects: Vec<Redirect>,
    /// True when a here-document or here-string feeds the command's standard input.
    pub(crate) stdin_is_script_data: bool,
    /// True when the command reads a pipe: it is not the first command of a pipeline.
    pub(crate) stdin_is_pipe: bool,
}

/// Why a simple command with this argv is refused at parse time, if it is (`alias` rebinds what
/// later words mean, which no single pass can follow).
pub(crate) fn refused_program(argv: &[Word]) -> Option<String> {
    (argv.first().and_then(Word::literal) == Some("alias"))
        .then(|| "`alias` is not analysed".to_string())
}

/// Parses a command line into its simple commands, in source order.
///
/// The error is a one-line lowercase reason: the command line does not parse, or uses a
/// construct that is not analysed.
pub(crate) fn parse(script: &str) -> Result<Vec<SimpleCommand>, String> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(format!("command line longer than {MAX_SCRIPT_BYTES} bytes"));
    }
    match super::plain::split(script) {
        Some(commands) => Ok(commands),
        None => parse_full(script),
    }
}

/// Parses a command line with tree-sitter-bash, whatever it holds (see [`parse`]).
pub(crate) fn parse_full(script: &str) -> Result<Vec<SimpleCommand>, String> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(format!("command line longer than {MAX_SCRIPT_BYTES} bytes"));
    }
    if trips_brace_scanner(script) {
        return Err("a character beyond latin-1 after `{` is not analysed".to_string());
    }
    let tree = parse_tree(script)?;
    let root = tree.root_node();
    if root.has_error() {
        return Err(syntax_error_reason(root, script));
    }
    check_tree_shape(root, script)?;
    let mut walker = Walker {
        source: script,
        commands: Vec::new(),
        stdin: Stdin::default(),
    };
    walker.statement(root)?;
    Ok(walker.commands)
}

/// True when tree-sitter-bash's brace range scanner would read out of bounds.
///
/// The grammar's external scanner calls the C `isdigit` on the character after `{`, after each
/// digit, and after `..` in a possible `{1..3}`; for a code point above 255 that is undefined
/// behaviour and crashes the process, so such a script never reaches the parser.
fn trips_brace_scanner(script: &str) -> bool {
    let mut characters = script.chars().peekable();
    while let Some(character) = characters.next() {
        if character != '{' {
            continue;
        }
        let mut dots = 0;
        while let Some(&next) = characters.peek() {
            if u32::from(next) > 0xFF {
                return true;
            }
            if next.is_ascii_digit() || (next == '.' && dots < 2) {
                dots += usize::from(next == '.');
                characters.next();
            } else {
                break;
            }
        }
    }
    false
}

/// Parses a script with this thread's parser.
fn parse_tree(script: &str) -> Result<Tree, String> {
    PARSER.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "the shell parser is already in use".to_string())?;
        if slot.is_none() {
            let mut parser = Parser::new();
            parser
                .set_language(&tree_sitter_bash::LANGUAGE.into())
                .map_err(|error| format!("cannot load the bash grammar: {error}"))?;
            *slot = Some(parser);
        }
        let parser = slot
            .as_mut()
            .ok_or_else(|| "cannot create the shell parser".to_string())?;
        // A parse that was stopped half-way would otherwise be resumed.
        parser.reset();
        parser
            .parse(script, None)
            .ok_or_else(|| "the shell parser gave up".to_string())
    })
}

/// Describes the first syntax error of a tree that has one.
fn syntax_error_reason(root: Node, script: &str) -> String {
    let Some(error_node) = first_error(root) else {
        return "the command line does not parse".to_string();
    };
    if error_node.is_missing() {
        return format!(
            "the command line is incomplete: `{}` is missing",
            error_node.kind()
        );
    }
    let text = script.get(error_node.byte_range()).unwrap_or_default();
    if text.contains(['\'', '"', '`']) {
        return "unbalanced quotes".to_string();
    }
    let excerpt: String = text
        .chars()
        .take(30)
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    format!("syntax error near `{}`", excerpt.trim())
}

/// Finds the first `ERROR` or missing node, in document order.
fn first_error(root: Node) -> Option<Node> {
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            return Some(node);
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return None;
            }
        }
    }
}

/// Refuses trees too deep to walk, and space between tokens that bash reads differently.
///
/// Bash separates words only with spaces, tabs and newlines, while tree-sitter-bash also
/// separates them with `\r`, `\v` and `\f`, and splits `r\<newline>m` into two words where
/// bash reads one word `rm`; such command lines are refused rather than misread. Strings and
/// here-document bodies are read from their source text, so their children are not checked.
fn check_tree_shape(root: Node, script: &str) -> Result<(), String> {
    check_gap(script, 0, root.start_byte())?;
    check_gap(script, root.end_byte(), script.len())?;
    let mut cursor = root.walk();
    let mut depth = 0usize;
    loop {
        let node = cursor.node();
        if depth > MAX_TREE_DEPTH {
            return Err("command line nested too deeply".to_string());
        }
        let skip_children = matches!(node.kind(), "string" | "heredoc_body");
        if !skip_children {
            check_child_gaps(node, script)?;
        }
        if !skip_children && cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return Ok(());
            }
            depth = depth.saturating_sub(1);
        }
    }
}

/// Checks the space between a node's children, and before and after them.
fn check_child_gaps(node: Node, script: &str) -> Result<(), String> {
    let mut cursor = node.walk();
    let mut previous_end = node.start_byte();
    for child in node.children(&mut cursor) {
        check_gap(script, previous_end, child.start_byte())?;
        previous_end = child.end_byte();
    }
    if node.child_count() > 0 {
        check_gap(script, previous_end, node.end_byte())?;
    }
    Ok(())
}

/// Accepts space between tokens only when bash reads it as tree-sitter does: spaces, tabs and
/// newlines, with line continuations only beside them.
fn check_gap(script: &str, start: usize, end: usize) -> Result<(), String> {
    let gap = script
        .get(start..end)
        .ok_or_else(|| "cannot read the space between words".to_string())?;
    if gap.is_empty() {
        return Ok(());
    }
    let without_continuations = gap.replace("\\\n", "");
    if without_continuations.is_empty() {
        return Err("a line continuation inside a word is not analysed".to_string());
    }
    match without_continuations
        .chars()
        .find(|character| !matches!(character, ' ' | '\t' | '\n'))
    {
        Some(character) => Err(format!(
            "the character `{}` between words is not analysed",
            character.escape_default()
        )),
        None => Ok(()),
    }
}

/// Where the commands being walked read their standard input from.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Stdin {
    /// A here-document or here-string feeds them.
    pub(super) script_data: bool,
    /// A pipe feeds them.
    pub(super) pipe: bool,
}

/// What the redirections of one statement amount to.
#[derive(Default)]
struct RedirectEffects<'tree> {
    /// The redirections to and from files.
    redirects: Vec<Redirect>,
    /// True when a here-document or here-string feeds the statement.
    script_data: bool,
    /// Statements tree-sitter hangs under a here-document, with true for pipeline stages.
    continuations: Vec<(Node<'tree>, bool)>,
}

/// Walks a syntax tree and collects its simple commands.
pub(super) struct Walker<'source> {
    /// The command line the tree was parsed from.
    pub(super) source: &'source str,
    /// The simple commands found so far, in source order.
    pub(super) commands: Vec<SimpleCommand>,
    /// Where the commands being walked read their standard input from.
    pub(super) stdin: Stdin,
}

impl<'source> Walker<'source> {
    /// The source text of a node.
    pub(super) fn text(&self, node: Node) -> Result<&'source str, String> {
        self.source
            .get(node.byte_range())
            .ok_or_else(|| format!("cannot read the text of `{}`", node.kind()))
    }

    /// Walks `body` with the commands' standard input set to `stdin`.
    pub(super) fn with_stdin<T>(
        &mut self,
        stdin: Stdin,
        body: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        let saved = self.stdin;
        self.stdin = stdin;
        let result = body(self);
        self.stdin = saved;
        result
    }

    /// Walks one statement node.
    pub(super) fn statement(&mut self, node: Node) -> Result<(), String> {
        match node.kind() {
            "program" | "list" | "subshell" => self.statements_in(node),
            "compound_statement" => self.compound_statement(node),
            "pipeline" => self.pipeline(node),
            "negated_command" => self.statements_in(node),
            "redirected_statement" => self.redirected_statement(node),
            "command" => self.command(node),
            "variable_assignment" | "variable_assignments" => self.standalone_assignments(node),
            "test_command" => self.test_command(node),
            "comment" => Ok(()),
            "function_definition" => Err("function definitions are not analysed".to_string()),
            "for_statement"
            | "c_style_for_statement"
            | "while_statement"
            | "if_statement"
            | "case_statement" => Err(format!(
                "control flow (`{}`) is not analysed",
                self.first_token(node)?
            )),
            "declaration_command" => Err(format!(
                "declaration command `{}` is not analysed",
                self.first_token(node)?
            )),
            "unset_command" => Err(format!("`{}` is not analysed", self.first_token(node)?)),
            other => Err(unknown_kind(other)),
        }
    }

    /// The text of a node's first child, such as the keyword of a compound command.
    fn first_token(&self, node: Node) -> Result<&'source str, String> {
        match node.child(0) {
            Some(child) => self.text(child),
            None => Ok(node.kind()),
        }
    }

    /// Walks the statements of a program, list, subshell or negation, in order.
    fn statements_in(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_named() {
                self.statement(child)?;
            } else if !STATEMENT_TOKENS.contains(&child.kind()) {
                return Err(unexpected_token(child.kind()));
            }
        }
        Ok(())
    }

    /// Walks a `{ ...; }` group, or checks a `(( ... ))` arithmetic command.
    fn compound_statement(&mut self, node: Node) -> Result<(), String> {
        if node.child(0).map(|child| child.kind()) == Some("((") {
            return self.arithmetic(node);
        }
        self.statements_in(node)
    }

    /// Walks a pipeline: every stage after the first reads a pipe.
    fn pipeline(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        let mut stage_index = 0usize;
        for child in node.children(&mut cursor) {
            if !child.is_named() {
                if !STATEMENT_TOKENS.contains(&child.kind()) {
                    return Err(unexpected_token(child.kind()));
                }
                continue;
            }
            let stdin = Stdin {
                pipe: self.stdin.pipe || stage_index > 0,
                ..self.stdin
            };
            self.with_stdin(stdin, |walker| walker.statement(child))?;
            if child.kind() != "comment" {
                stage_index += 1;
            }
        }
        Ok(())
    }

    /// Walks a statement with redirections, which apply to every command of its body.
    fn redirected_statement(&mut self, node: Node) -> Result<(), String> {
        let mut effects = RedirectEffects::default();
        let mut body = None;
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            match field_name(node, index) {
                Some("body") => body = Some(child),
                Some("redirect") => self.redirect(child, &mut effects)?,
                _ if child.kind() == "comment" => {}
                _ => return Err(unexpected_token(child.kind())),
            }
        }
        let stdin = Stdin {
            script_data: self.stdin.script_data || effects.script_data,
            ..self.stdin
        };
        let first_command = self.commands.len();
        if let Some(body) = body {
            self.with_stdin(stdin, |walker| walker.statement(body))?;
        }
        self.attach_redirects(first_command, effects.redirects, stdin);
        self.continuations(effects.continuations)
    }

    /// Attaches redirections to the first command walked since `first_command`, or to a new
    /// command without words when there is none, so that no redirection is lost.
    fn attach_redirects(&mut self, first_command: usize, redirects: Vec<Redirect>, stdin: Stdin) {
        if redirects.is_empty() {
            return;
        }
        match self.commands.get_mut(first_command) {
            Some(command) => command.redirects.extend(redirects),
            None => self.commands.push(SimpleCommand {
                redirects,
                stdin_is_script_data: stdin.script_data,
                stdin_is_pipe: stdin.pipe,
                ..SimpleCommand::default()
            }),
        }
    }

    /// Walks the statements tree-sitter hangs under a here-document (`cat <<EOF | sh`).
    fn continuations(&mut self, continuations: Vec<(Node, bool)>) -> Result<(), String> {
        for (node, is_pipeline_stage) in continuations {
            let stdin = Stdin {
                pipe: self.stdin.pipe || is_pipeline_stage,
                ..self.stdin
            };
            self.with_stdin(stdin, |walker| walker.statement(node))?;
        }
        Ok(())
    }

    /// Walks a simple command: assignments, program, arguments and redirections.
    fn command(&mut self, node: Node) -> Result<(), String> {
        let mut command = SimpleCommand {
            stdin_is_script_data: self.stdin.script_data,
            stdin_is_pipe: self.stdin.pipe,
            ..SimpleCommand::default()
        };
        let mut effects = RedirectEffects::default();
        // Words with their byte ranges, to join pieces tree-sitter splits (`$"..."`).
        let mut words: Vec<(usize, usize, Word)> = Vec::new();
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            match (field_name(node, index), child.kind()) {
                (_, "variable_assignment") => command.assignments.push(self.assignment(child)?),
                (Some("redirect"), _) => self.redirect(child, &mut effects)?,
                (Some("name" | "argument"), _) => {
                    let word = self.word(child)?;
                    self.push_word(&mut words, child, word)?;
                }
                (_, "comment") => {}
                (_, kind) => return Err(unknown_kind(kind)),
            }
        }
        command.argv = words.into_iter().map(|(_, _, word)| word).collect();
        if let Some(reason) = refused_program(&command.argv) {
            return Err(reason);
        }
        command.redirects = effects.redirects;
        command.stdin_is_script_data |= effects.script_data;
        self.commands.push(command);
        self.continuations(effects.continuations)
    }

    /// Adds a word, joining it to the previous one when no space separates them.
    fn push_word(
        &self,
        words: &mut Vec<(usize, usize, Word)>,
        node: Node,
        word: Word,
    ) -> Result<(), String> {
        if let Some((start, end, previous)) = words.last_mut() {
            if *end == node.start_byte() {
                let joined = self
                    .source
                    .get(*start..node.end_byte())
                    .ok_or_else(|| "cannot read a word".to_string())?;
                *previous = Word::Dynamic(joined.to_string());
                *end = node.end_byte();
                return Ok(());
            }
        }
        words.push((node.start_byte(), node.end_byte(), word));
        Ok(())
    }

    /// Walks standalone assignments (`X=1`, `X=1 Y=2`) into a command without words.
    fn standalone_assignments(&mut self, node: Node) -> Result<(), String> {
        let mut assignments = Vec::new();
        if node.kind() == "variable_assignment" {
            assignments.push(self.assignment(node)?);
        } else {
            let mut cursor = node.walk();
            for child in node.children(&mut cursor) {
                match child.kind() {
                    "variable_assignment" => assignments.push(self.assignment(child)?),
                    "comment" => {}
                    other => return Err(unknown_kind(other)),
                }
            }
        }
        self.commands.push(SimpleCommand {
            assignments,
            stdin_is_script_data: self.stdin.script_data,
            stdin_is_pipe: self.stdin.pipe,
            ..SimpleCommand::default()
        });
        Ok(())
    }

    /// Reads one `NAME=value` or `NAME+=value` assignment.
    fn assignment(&mut self, node: Node) -> Result<(String, Word), String> {
        let mut name = None;
        let mut value = None;
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            match (field_name(node, index), child.kind()) {
                (Some("name"), "variable_name") => name = Some(self.text(child)?.to_string()),
                (Some("name"), "subscript") => {
                    return Err("assignment to an array element is not analysed".to_string())
                }
                (Some("value"), _) if value.is_none() => value = Some(self.word(child)?),
                (None, "=" | "+=") => {}
                (_, kind) => return Err(unknown_kind(kind)),
            }
        }
        let name = name.ok_or_else(|| "an assignment without a name".to_string())?;
        Ok((name, value.unwrap_or_else(|| Word::Literal(String::new()))))
    }

    /// Reads one redirection node into `effects`.
    fn redirect<'tree>(
        &mut self,
        node: Node<'tree>,
        effects: &mut RedirectEffects<'tree>,
    ) -> Result<(), String> {
        match node.kind() {
            "file_redirect" => {
                if let Some(redirect) = self.file_redirect(node)? {
                    effects.redirects.push(redirect);
                }
                Ok(())
            }
            "herestring_redirect" => {
                effects.script_data = true;
                let mut cursor = node.walk();
                for child in node.children(&mut cursor) {
                    if child.kind() != "<<<" {
                        self.word(child)?;
                    }
                }
                Ok(())
            }
            "heredoc_redirect" => self.heredoc_redirect(node, effects),
            other => Err(unknown_kind(other)),
        }
    }

    /// Reads a redirection to or from a file; `None` for a file descriptor duplication.
    fn file_redirect(&mut self, node: Node) -> Result<Option<Redirect>, String> {
        let mut operator = None;
        let mut destinations = Vec::new();
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            match field_name(node, index) {
                Some("descriptor") => {}
                Some("destination") => destinations.push(child),
                _ if !child.is_named() && operator.is_none() => operator = Some(child.kind()),
                _ => return Err(unknown_kind(child.kind())),
            }
        }
        let operator = operator.ok_or_else(|| "a redirection without an operator".to_string())?;
        let destination = match destinations.as_slice() {
            [] if matches!(operator, ">&-" | "<&-") => return Ok(None),
            [destination] => *destination,
            _ => {
                return Err(format!(
                    "redirection `{}` is not analysed",
                    self.text(node)?
                ))
            }
        };
        let target = self.word(destination)?;
        let op = match operator {
            "<" => RedirectOp::Read,
            ">" | ">|" | "&>" => RedirectOp::Write,
            ">>" | "&>>" => RedirectOp::Append,
            "<>" => RedirectOp::ReadWrite,
            ">&" | "<&" if is_descriptor_target(destination.kind(), &target) => return Ok(None),
            ">&" => RedirectOp::Write,
            "<&" => RedirectOp::Read,
            other => return Err(format!("redirection `{other}` is not analysed")),
        };
        Ok(Some(Redirect { op, target }))
    }

    /// Reads a here-document: its body's substitutions run, and statements may hang under it.
    fn heredoc_redirect<'tree>(
        &mut self,
        node: Node<'tree>,
        effects: &mut RedirectEffects<'tree>,
    ) -> Result<(), String> {
        effects.script_data = true;
        let mut body_expands = true;
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            match (field_name(node, index), child.kind()) {
                (_, "<<" | "<<-" | "heredoc_end") => {}
                (_, "heredoc_start") => {
                    body_expands = !self.text(child)?.contains(['\'', '"', '\\']);
                }
                (_, "heredoc_body") if body_expands => self.heredoc_body(child)?,
                (_, "heredoc_body") => {}
                (Some("redirect"), _) => self.redirect(child, effects)?,
                (Some("operator"), "&&" | "||") => {}
                (Some("right"), _) => effects.continuations.push((child, false)),
                (_, "pipeline") => self.pipeline_continuation(child, effects)?,
                (_, kind) => return Err(unknown_kind(kind)),
            }
        }
        Ok(())
    }

    /// Collects the stages of a pipeline that continues after a here-document.
    fn pipeline_continuation<'tree>(
        &mut self,
        node: Node<'tree>,
        effects: &mut RedirectEffects<'tree>,
    ) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_named() {
                effects.continuations.push((child, true));
            } else if !matches!(child.kind(), "|" | "|&") {
                return Err(unexpected_token(child.kind()));
            }
        }
        Ok(())
    }

    /// Walks the expansions of an unquoted here-document body.
    fn heredoc_body(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            match child.kind() {
                "heredoc_content" => {}
                _ => {
                    self.dynamic_part(child)?;
                }
            }
        }
        Ok(())
    }
}

/// The field name of a node's child, by index.
pub(super) fn field_name(node: Node, index: usize) -> Option<&'static str> {
    u32::try_from(index)
        .ok()
        .and_then(|index| node.field_name_for_child(index))
}

/// The error for a node kind the walker does not handle.
pub(super) fn unknown_kind(kind: &str) -> String {
    format!("shell syntax `{kind}` is not analysed")
}

/// The error for a token the walker does not expect where it appears.
pub(super) fn unexpected_token(kind: &str) -> String {
    format!(
        "shell token `{}` is not analysed here",
        kind.escape_default()
    )
}

/// True when a `>&` or `<&` target names a file descriptor (`2>&1`, `>&-`) rather than a file.
fn is_descriptor_target(kind: &str, target: &Word) -> bool {
    if kind == "number" {
        return true;
    }
    match target.literal() {
        Some(text) => {
            let digits = text.strip_suffix('-').unwrap_or(text);
            text == "-" || (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
        }
        None => false,
    }
}

/// True for a shell variable name (`PATH`, `_x1`).
pub(crate) fn is_variable_name(text: &str) -> bool {
    let mut characters = text.chars();
    matches!(characters.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

#[cfg(test)]
pub(crate) mod tests {
    //! Tests of the command line parser: one line of input, its simple commands in a compact
    //! notation (`X=1 rm «$y» >out`), or `error: ...`.

    use super::*;

    /// Formats a word: literals as they are, dynamic words in `«»`.
    pub(crate) fn format_word(word: &Word) -> String {
        match word {
            Word::Literal(text) => text.clone(),
            Word::Dynamic(text) => format!("«{text}»"),
        }
    }

    /// Formats one simple command compactly.
    fn format_command(command: &SimpleCommand) -> String {
        let mut parts = Vec::new();
        for (name, value) in &command.assignments {
            parts.push(format!("{name}={}", format_word(value)));
        }
        parts.extend(command.argv.iter().map(format_word));
        for redirect in &command.redirects {
            let operator = match redirect.op {
                RedirectOp::Read => "<",
                RedirectOp::Write => ">",
                RedirectOp::Append => ">>",
                RedirectOp::ReadWrite => "<>",
            };
            parts.push(format!("{operator}{}", format_word(&redirect.target)));
        }
        if command.stdin_is_script_data {
            parts.push("<<data".to_string());
        }
        if command.stdin_is_pipe {
            parts.push("<|".to_string());
        }
        parts.join(" ")
    }

    /// Parses `input` and compares its commands, joined by ` | `, with `expected`.
    #[track_caller]
    pub(crate) fn check(input: &str, expected: &str) {
        let actual = match parse(input) {
            Ok(commands) => commands
                .iter()
                .map(format_command)
                .collect::<Vec<_>>()
                .join(" | "),
            Err(reason) => format!("error: {reason}"),
        };
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn lists_and_pipelines() {
        check("", "");
        check("# only a comment", "");
        check("cargo test", "cargo test");
        check("cargo test; rm -rf /", "cargo test | rm -rf /");
        check("a && b || c", "a | b | c");
        check("a & b", "a | b");
        check("a\nb # trailing", "a | b");
        check("a | b |& c", "a | b <| | c <|");
        check("! a | b", "a | b <|");
        check("cat x | (a; sh)", "cat x | a <| | sh <|");
        check("(rm x)", "rm x");
        check("{ rm x; }", "rm x");
    }

    #[test]
    fn substitutions() {
        check("echo $(rm x)", "rm x | echo «$(rm x)»");
        check("echo `rm x`", "rm x | echo «`rm x`»");
        check(
            "echo \"a $(cat .env)\"",
            "cat .env | echo «\"a $(cat .env)\"»",
        );
        check("diff <(cat .env) x", "cat .env | diff «<(cat .env)» x");
        check("tee >(sh)", "sh <| | tee «>(sh)»");
        check("echo \"${x:-$(rm y)}\"", "rm y | echo «\"${x:-$(rm y)}\"»");
        check("[[ -f x && $(rm y) ]]", "rm y");
        check("X=$(rm y)", "rm y | X=«$(rm y)»");
        check("a=( $(rm x) b )", "rm x | a=«( $(rm x) b )»");
        check("cat <<< $(rm x)", "rm x | cat <<data");
    }

    #[test]
    fn assignments() {
        check("X=1 Y=$Z cmd", "X=1 Y=«$Z» cmd");
        check("X=1", "X=1");
        check("X=1 Y=", "X=1 Y=");
        check("X+=1 cmd", "X=1 cmd");
        check("X=~/a cmd", "X=«~/a» cmd");
        check(
            "a[1]=x",
            "error: assignment to an array element is not analysed",
        );
    }

    #[test]
    fn redirections() {
        check(
            "a 2>&1 > out >> app < in &> both &>> all >| clobber >&2 <&0 >&- >&file 3<three",
            "a >out >>app <in >both >>all >clobber >file <three",
        );
        check("2>x cmd", "cmd >x");
        check("> out", ">out");
        check("echo hi > $(f)", "f | echo hi >«$(f)»");
        check("{ a; b; } > out", "a >out | b");
        check("(a) 2> err", "a >err");
        check("a >out | b", "a >out | b <|");
        check("[ -f x ] > out", ">out");
        check("a <> rw", "error: syntax error near `>`");
        check("cat <<< \"$x y\"", "cat <<data");
    }

    #[test]
    fn here_documents() {
        check("cat <<EOF\n$(rm x) $Y\nEOF\n", "rm x | cat <<data");
        check("cat <<'EOF'\n$(rm x)\nEOF\n", "cat <<data");
        check("bash <<EOF\nrm x\nEOF\n", "bash <<data");
        check("cat <<EOF | sh\nrm x\nEOF\n", "cat <<data | sh <|");
        check("cat <<EOF && rm y\nx\nEOF\n", "cat <<data | rm y");
        check("cat <<EOF > out\nx\nEOF\n", "cat >out <<data");
        check("{ sh; } <<EOF\nrm x\nEOF\n", "sh <<data");
        check("cat <<EOF\nx\nEOF\nrm y", "cat <<data | rm y");
        check(
            "cat <<EOF; rm y\nx\nEOF\n",
            "error: the command line is incomplete: `heredoc_end` is missing",
        );
    }

    #[test]
    fn refused_constructs() {
        check(
            "for i in a; do rm $i; done",
            "error: control flow (`for`) is not analysed",
        );
        check(
            "for ((i=0;i<3;i++)); do :; done",
            "error: control flow (`for`) is not analysed",
        );
        check(
            "select x in a; do b; done",
            "error: control flow (`select`) is not analysed",
        );
        check(
            "if a; then b; fi",
            "error: control flow (`if`) is not analysed",
        );
        check(
            "while a; do b; done",
            "error: control flow (`while`) is not analysed",
        );
        check(
            "until a; do b; done",
            "error: control flow (`until`) is not analysed",
        );
        check(
            "case x in a) b;; esac",
            "error: control flow (`case`) is not analysed",
        );
        check(
            "f() { rm x; }",
            "error: function definitions are not analysed",
        );
        check(
            "export X=1",
            "error: declaration command `export` is not analysed",
        );
        check(
            "local x",
            "error: declaration command `local` is not analysed",
        );
        check(
            "readonly x",
            "error: declaration command `readonly` is not analysed",
        );
        check("unset X", "error: `unset` is not analysed");
        check("alias ls=rm", "error: `alias` is not analysed");
        check("cat 'unbalanced", "error: unbalanced quotes");
        check("cat \"unbalanced", "error: unbalanced quotes");
        check("echo hi >", "error: syntax error near `>`");
        check(
            "r\\\nm x",
            "error: a line continuation inside a word is not analysed",
        );
        check("cat \0x", "error: syntax error near ``");
        check(
            "RUST_LOG=1\rcargo /tmp/evil.sh",
            "error: the character `\\r` between words is not analysed",
        );
        check(
            "cat\x0b.env",
            "error: the character `\\u{b}` between words is not analysed",
        );
        check(
            "a\x0cb",
            "error: the character `\\u{c}` between words is not analysed",
        );
        check(
            "cargo test\r\n",
            "error: the character `\\r` between words is not analysed",
        );
        check(
            "\u{78146}{\u{fcb0b}",
            "error: a character beyond latin-1 after `{` is not analysed",
        );
        check(
            "echo {1..\u{100}",
            "error: a character beyond latin-1 after `{` is not analysed",
        );
        check("echo '{é' {é", "echo {é {é");
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_SCRIPT_BYTES + 1);
        check(&long, "error: command line longer than 100000 bytes");
        let nested = format!("{}x{}", "$(".repeat(300), ")".repeat(300));
        check(&nested, "error: command line nested too deeply");
    }
}
