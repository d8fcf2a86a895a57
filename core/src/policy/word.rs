//! Reads the words of a bash syntax tree, and checks the expansions inside them.
//!
//! A word is a literal when its value is known before the command runs (quotes and escapes
//! removed), and dynamic when the shell computes it: expansions, substitutions, globs, brace
//! expansion and a leading `~`. The commands inside a word (`$(...)`, `<(...)`) are walked as
//! statements, and the forms of expansion that can run code hidden in a variable's value
//! (indirection, transformations, arithmetic on variables) are refused.

use tree_sitter::Node;

use super::atom::Word;
use super::shell::{field_name, is_variable_name, unexpected_token, unknown_kind, Stdin, Walker};

/// Operators allowed inside `${...}`: defaults, alternatives, pattern removal, substitution and
/// case changes. Indirection (`!`), transformations (`@`), substrings (`:`) and assignments
/// (`:=`, `=`) are refused because they can run code hidden in a variable's value.
const EXPANSION_OPERATORS: &[&str] = &[
    "${", "}", ":-", "-", ":?", "?", ":+", "+", "#", "##", "%", "%%", "/", "//", "/#", "/%", "^",
    "^^", ",", ",,",
];

/// Operators of `[[ ]]` and `[ ]` whose operands bash evaluates as arithmetic.
const ARITHMETIC_TEST_OPERATORS: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];

/// Tokens allowed between the operands of `[[ ]]` and `[ ]`.
const TEST_TOKENS: &[&str] = &[
    "[", "]", "[[", "]]", "(", ")", "!", "&&", "||", "==", "=", "!=", "=~", "<", ">",
];

/// One piece of a word, before the pieces are joined.
enum Piece {
    /// Unquoted source text, escapes still in place.
    Unquoted(String),
    /// The value of a quoted part.
    Quoted(String),
    /// A part computed at run time.
    Dynamic,
}

impl Walker<'_> {
    /// Reads a word node into a [`Word`], walking the commands inside it.
    pub(super) fn word(&mut self, node: Node) -> Result<Word, String> {
        let mut pieces = Vec::new();
        self.word_pieces(node, &mut pieces)?;
        let source = self.text(node)?;
        Ok(assemble_word(source, &pieces))
    }

    /// Collects the pieces of a word node.
    fn word_pieces(&mut self, node: Node, pieces: &mut Vec<Piece>) -> Result<(), String> {
        if !node.is_named() {
            return match node.kind() {
                "$" => {
                    pieces.push(Piece::Dynamic);
                    Ok(())
                }
                other => Err(unexpected_token(other)),
            };
        }
        match node.kind() {
            "word" | "number" => pieces.push(Piece::Unquoted(self.text(node)?.to_string())),
            "raw_string" => {
                let text = self.text(node)?;
                let inner = text
                    .strip_prefix('\'')
                    .and_then(|rest| rest.strip_suffix('\''))
                    .ok_or_else(|| "unbalanced quotes".to_string())?;
                pieces.push(Piece::Quoted(inner.to_string()));
            }
            "string" => self.double_quoted(node, pieces)?,
            "concatenation" | "command_name" => {
                let mut cursor = node.walk();
                for child in node.children(&mut cursor) {
                    self.word_pieces(child, pieces)?;
                }
            }
            _ => {
                self.dynamic_part(node)?;
                pieces.push(Piece::Dynamic);
            }
        }
        Ok(())
    }

    /// Reads a double-quoted string: literal when it holds only plain text.
    fn double_quoted(&mut self, node: Node, pieces: &mut Vec<Piece>) -> Result<(), String> {
        let mut plain = true;
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            match (child.is_named(), child.kind()) {
                (true, "string_content") | (false, "\"") => {}
                (false, "$") => plain = false,
                (false, other) => return Err(unexpected_token(other)),
                (true, _) => {
                    self.dynamic_part(child)?;
                    plain = false;
                }
            }
        }
        if !plain {
            pieces.push(Piece::Dynamic);
            return Ok(());
        }
        let text = self.text(node)?;
        let inner = text
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .ok_or_else(|| "unbalanced quotes".to_string())?;
        pieces.push(Piece::Quoted(unescape_double_quoted(inner)));
        Ok(())
    }

    /// Checks a part of a word computed at run time and walks the commands inside it.
    pub(super) fn dynamic_part(&mut self, node: Node) -> Result<(), String> {
        match node.kind() {
            "simple_expansion" => self.simple_expansion(node),
            "expansion" => self.expansion(node),
            "command_substitution" => self.substitution(node, self.stdin),
            "process_substitution" => {
                // The commands of `>(...)` read what the outer command writes.
                let writes_to_it = node.child(0).map(|child| child.kind()) == Some(">(");
                let stdin = Stdin {
                    pipe: self.stdin.pipe || writes_to_it,
                    ..self.stdin
                };
                self.substitution(node, stdin)
            }
            "arithmetic_expansion" => self.arithmetic(node),
            "ansi_c_string" | "brace_expression" => Ok(()),
            "translated_string" | "array" => {
                let mut cursor = node.walk();
                for child in node.children(&mut cursor) {
                    if child.is_named() {
                        self.word(child)?;
                    } else if !matches!(child.kind(), "$" | "(" | ")") {
                        return Err(unexpected_token(child.kind()));
                    }
                }
                Ok(())
            }
            other => Err(unknown_kind(other)),
        }
    }

    /// Checks `$NAME` and `$1`, `$@`, `$?` and the like.
    fn simple_expansion(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            match child.kind() {
                "$" | "variable_name" | "special_variable_name" => {}
                other => return Err(unknown_kind(other)),
            }
        }
        Ok(())
    }

    /// Checks `${...}`, refusing the forms that can run code hidden in a variable's value.
    fn expansion(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if !child.is_named() {
                match child.kind() {
                    operator if EXPANSION_OPERATORS.contains(&operator) => {}
                    "!" => return Err("indirect expansion `${!...}` is not analysed".to_string()),
                    ":" => return Err("substring expansion `${x:...}` is not analysed".to_string()),
                    ":=" | "=" => {
                        return Err("assignment inside `${...}` is not analysed".to_string())
                    }
                    other => {
                        return Err(format!("expansion operator `{other}` is not analysed"));
                    }
                }
                continue;
            }
            match child.kind() {
                "variable_name" | "special_variable_name" | "regex" => {}
                "subscript" => self.subscript(child)?,
                _ => {
                    self.word(child)?;
                }
            }
        }
        Ok(())
    }

    /// Checks an array subscript: only a number, `@` or `*`, since bash evaluates the index as
    /// arithmetic, which can run commands hidden in a variable's value.
    fn subscript(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            match (field_name(node, index), child.kind()) {
                (Some("name"), "variable_name") | (None, "[" | "]") => {}
                (Some("index"), "number") => {}
                (Some("index"), "word") if matches!(self.text(child)?, "@" | "*") => {}
                _ => {
                    return Err(format!(
                        "array index in `{}` is not analysed",
                        self.text(node)?
                    ))
                }
            }
        }
        Ok(())
    }

    /// Walks the commands of `$(...)`, backticks, `<(...)` or `>(...)`.
    fn substitution(&mut self, node: Node, stdin: Stdin) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_named() {
                self.with_stdin(stdin, |walker| walker.statement(child))?;
            } else if !matches!(child.kind(), "$(" | ")" | "`" | "<(" | ">(") {
                return Err(unexpected_token(child.kind()));
            }
        }
        Ok(())
    }

    /// Checks arithmetic (`$((...))`, `$[...]`, `((...))`): only numbers and operators.
    ///
    /// Bash evaluates variables and command output inside arithmetic recursively, and
    /// `a[$(cmd)]` there runs `cmd`, so anything known only at run time is refused.
    pub(super) fn arithmetic(&mut self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if !child.is_named() {
                continue;
            }
            match child.kind() {
                "number" => {}
                "binary_expression"
                | "unary_expression"
                | "postfix_expression"
                | "ternary_expression"
                | "parenthesized_expression" => self.arithmetic(child)?,
                _ => {
                    return Err(format!(
                        "arithmetic on `{}` is not analysed",
                        self.text(child)?
                    ))
                }
            }
        }
        Ok(())
    }

    /// Checks `[[ ... ]]` and `[ ... ]` and walks the commands inside their operands.
    pub(super) fn test_command(&mut self, node: Node) -> Result<(), String> {
        let single_bracket = node.child(0).map(|child| child.kind()) == Some("[");
        self.test_expression_children(node, single_bracket)
    }

    /// Checks the children of a test expression.
    fn test_expression_children(&mut self, node: Node, single_bracket: bool) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_named() {
                self.test_expression(child, single_bracket)?;
            } else if !TEST_TOKENS.contains(&child.kind()) {
                return Err(unexpected_token(child.kind()));
            }
        }
        Ok(())
    }

    /// Checks one test expression or operand.
    fn test_expression(&mut self, node: Node, single_bracket: bool) -> Result<(), String> {
        match node.kind() {
            "binary_expression" => {
                let operator = match node.child_by_field_name("operator") {
                    Some(operator) => self.text(operator)?,
                    None => "",
                };
                if single_bracket && matches!(operator, "<" | ">") {
                    return Err(format!(
                        "`{operator}` inside `[ ]` is a redirection, which is not analysed"
                    ));
                }
                if ARITHMETIC_TEST_OPERATORS.contains(&operator) {
                    self.require_plain_numbers(node)?;
                }
                self.test_expression_children(node, single_bracket)
            }
            "unary_expression" => {
                let operator = match node.child_by_field_name("operator") {
                    Some(operator) => self.text(operator)?,
                    None => "",
                };
                if matches!(operator, "-v" | "-R") {
                    self.require_plain_names(node)?;
                }
                self.test_expression_children(node, single_bracket)
            }
            "parenthesized_expression" => self.test_expression_children(node, single_bracket),
            "test_operator" | "regex" | "extglob_pattern" => Ok(()),
            _ if single_bracket && is_unquoted_expansion(node) => Err(format!(
                "unquoted `{}` inside `[ ]` is not analysed",
                self.text(node)?
            )),
            _ => self.word(node).map(|_| ()),
        }
    }

    /// Refuses an arithmetic comparison whose operands are not plain numbers.
    fn require_plain_numbers(&self, node: Node) -> Result<(), String> {
        for field in ["left", "right"] {
            if let Some(operand) = node.child_by_field_name(field) {
                let text = self.text(operand)?;
                let digits = text.strip_prefix('-').unwrap_or(text);
                let plain = matches!(operand.kind(), "number" | "word")
                    && !digits.is_empty()
                    && digits.chars().all(|character| character.is_ascii_digit());
                if !plain {
                    return Err(format!("arithmetic comparison of `{text}` is not analysed"));
                }
            }
        }
        Ok(())
    }

    /// Refuses `-v` or `-R` on anything but a plain variable name.
    fn require_plain_names(&self, node: Node) -> Result<(), String> {
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            if child.kind() == "test_operator" {
                continue;
            }
            let text = self.text(child)?;
            if child.kind() != "word" || !is_variable_name(text) {
                return Err(format!("test of the variable `{text}` is not analysed"));
            }
        }
        Ok(())
    }
}

/// True for an unquoted expansion or substitution, which word splitting may turn into several
/// words (in `[ ]`, an option such as `-v` and a name).
fn is_unquoted_expansion(node: Node) -> bool {
    let is_expansion = |kind: &str| {
        matches!(
            kind,
            "simple_expansion" | "expansion" | "command_substitution" | "arithmetic_expansion"
        )
    };
    if is_expansion(node.kind()) {
        return true;
    }
    let mut cursor = node.walk();
    let has_expansion = node.kind() == "concatenation"
        && node
            .children(&mut cursor)
            .any(|child| is_expansion(child.kind()));
    has_expansion
}

/// Joins the pieces of a word: a literal unless some piece or unquoted character is expanded at
/// run time (globs, brace expansion, a leading `~`).
fn assemble_word(source: &str, pieces: &[Piece]) -> Word {
    let mut value = String::new();
    // The unquoted characters that the shell may expand, with `_` for everything else.
    let mut skeleton = String::new();
    for piece in pieces {
        match piece {
            Piece::Dynamic => return Word::Dynamic(source.to_string()),
            Piece::Quoted(text) => {
                value.push_str(text);
                skeleton.push('_');
            }
            Piece::Unquoted(raw) => {
                let (unescaped, raw_skeleton) = unescape_unquoted(raw);
                value.push_str(&unescaped);
                skeleton.push_str(&raw_skeleton);
            }
        }
    }
    if skeleton_expands(&skeleton) {
        Word::Dynamic(source.to_string())
    } else {
        Word::Literal(value)
    }
}

/// Removes the backslashes of unquoted text, and returns it with its skeleton: the text with
/// every escaped character replaced by `_`.
fn unescape_unquoted(raw: &str) -> (String, String) {
    let mut value = String::new();
    let mut skeleton = String::new();
    let mut characters = raw.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            value.push(character);
            skeleton.push(character);
            continue;
        }
        match characters.next() {
            Some('\n') => {}
            Some(escaped) => {
                value.push(escaped);
                skeleton.push('_');
            }
            None => {
                value.push('\\');
                skeleton.push('_');
            }
        }
    }
    (value, skeleton)
}

/// True when the unquoted characters of a word make the shell expand it: a glob character, a
/// `$` or backtick, a `~` at the start or after `=` or `:`, or a brace expansion.
fn skeleton_expands(skeleton: &str) -> bool {
    skeleton.contains(['*', '?', '[', '$', '`'])
        || skeleton.starts_with('~')
        || skeleton.contains("=~")
        || skeleton.contains(":~")
        || has_brace_expansion(skeleton)
}

/// True when a skeleton holds `{`, then `,` or `..`, then `}`.
fn has_brace_expansion(skeleton: &str) -> bool {
    let Some(open) = skeleton.find('{') else {
        return false;
    };
    let after_open = skeleton.get(open + 1..).unwrap_or_default();
    let Some(close) = after_open.rfind('}') else {
        return false;
    };
    let inside = after_open.get(..close).unwrap_or_default();
    inside.contains(',') || inside.contains("..")
}

/// Removes the backslashes that are special inside double quotes: before `"`, `\`, `$`, a
/// backtick or a newline.
fn unescape_double_quoted(inner: &str) -> String {
    let mut value = String::new();
    let mut characters = inner.chars().peekable();
    while let Some(character) = characters.next() {
        if character != '\\' {
            value.push(character);
            continue;
        }
        match characters.peek() {
            Some('"' | '\\' | '$' | '`') => {
                if let Some(escaped) = characters.next() {
                    value.push(escaped);
                }
            }
            Some('\n') => {
                characters.next();
            }
            _ => value.push('\\'),
        }
    }
    value
}

#[cfg(test)]
mod tests {
    //! Tests of word reading, through the parser: one line of input and its simple commands
    //! (see `shell.rs`).

    use super::super::shell::tests::check;

    #[test]
    fn words() {
        check("\\rm x", "rm x");
        check("/bin/rm x", "/bin/rm x");
        check("\"r\"m x", "rm x");
        check("a\"b\"'c'", "abc");
        check("echo 'a b' \"c\\\"d\\$e\\\\f\\n\"", "echo a b c\"d$e\\f\\n");
        check("echo \"a\nb\"", "echo a\nb");
        check("echo a\\ b x\\*y 'x'\\''y'", "echo a b x*y x'y");
        check(
            "echo $X ${X} $'x' $\"y\" $((1+2))",
            "echo «$X» «${X}» «$'x'» «$\"y\"» «$((1+2))»",
        );
        check("ls *.rs a?b [ab]c", "ls «*.rs» «a?b» «[ab]c»");
        check(
            "echo {a,b} x{1..3} {} @{u}",
            "echo «{a,b}» «x{1..3}» {} @{u}",
        );
        check("ls ~/x ~ a~b x=~/y", "ls «~/x» «~» a~b «x=~/y»");
        check("echo \\\n  foo", "echo foo");
        check("$\"ls\" x", "«$\"ls\"» x");
        check("echo $ a$", "echo «$» «a$»");
    }

    #[test]
    fn run_time_evaluation_is_refused() {
        check(
            "echo ${!x}",
            "error: indirect expansion `${!...}` is not analysed",
        );
        check(
            "echo ${x@P}",
            "error: expansion operator `@` is not analysed",
        );
        check(
            "echo ${x:1}",
            "error: substring expansion `${x:...}` is not analysed",
        );
        check(
            "echo ${x:=y}",
            "error: assignment inside `${...}` is not analysed",
        );
        check(
            "echo ${a[$i]}",
            "error: array index in `a[$i]` is not analysed",
        );
        check("echo ${a[1]} ${a[@]}", "echo «${a[1]}» «${a[@]}»");
        check("echo $((x))", "error: arithmetic on `x` is not analysed");
        check(
            "(( $(a) + 1 ))",
            "error: arithmetic on `$(a)` is not analysed",
        );
        check("(( 1 + 2 ))", "");
        check(
            "[[ $x -eq 1 ]]",
            "error: arithmetic comparison of `$x` is not analysed",
        );
        check(
            "[[ 1 -eq 'a[$(id)]' ]]",
            "error: arithmetic comparison of `'a[$(id)]'` is not analysed",
        );
        check(
            "[[ -v a[1] ]]",
            "error: test of the variable `a[1]` is not analysed",
        );
        check(
            "[ a > b ]",
            "error: `>` inside `[ ]` is a redirection, which is not analysed",
        );
        check("[[ a > b ]] && [ 1 -lt 2 ]", "");
        check(
            "[ -n $X ]",
            "error: unquoted `$X` inside `[ ]` is not analysed",
        );
        check(
            "[ -n a$X ]",
            "error: unquoted `a$X` inside `[ ]` is not analysed",
        );
        check("[ -n \"$X\" ] && [[ -n $X ]]", "");
    }
}
