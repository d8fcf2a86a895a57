//! Shell analysis: being replaced by the tree-sitter-bash analysis. Until then every command line is
//! denied (fail closed).
use super::atom::ShellAtom;
pub(crate) struct ShellOptions {
    pub allowed_env: Vec<String>,
}
pub(crate) fn analyse(_command_line: &str, _options: &ShellOptions) -> Vec<ShellAtom> {
    vec![ShellAtom::Uncertain {
        reason: "shell analysis is not built yet".to_string(),
    }]
}
