//! File paths: normalising requested paths and compiling path patterns.
//!
//! A requested path is normalised lexically (`.`, `..`, repeated `/`, trailing `/`) and made relative
//! to the workspace root before any rule sees it; a path that escapes the root, or that is spelled in
//! a way some layer might decode differently (NUL bytes, backslashes, percent-encoded `.` or `/`), is
//! denied outright. Patterns are globs relative to the root, with gitignore's conventions: a pattern
//! without `/` matches at any depth, and a pattern matches everything below the path it names.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder};

/// How a compiled path pattern matches, relative to its literal prefix.
#[derive(Clone, Debug)]
pub(crate) enum PathMatch {
    /// The path is the literal prefix or below it: a pattern without wildcards (`src/lib.rs`).
    AtOrBelow,
    /// The path is strictly below the literal prefix (`src/auth/**`); with an empty prefix (`**`),
    /// every path, the root included.
    Below,
    /// Some component of the path is this name: a pattern without `/` or wildcards (`.env`).
    NamedAnywhere(String),
    /// Anything else, matched by these globs.
    Globs(Vec<Glob>),
}

/// A path pattern compiled for matching.
#[derive(Clone, Debug)]
pub(crate) struct PathPattern {
    /// The directory part of the pattern before its first wildcard, relative to the root, without a
    /// trailing `/` (empty for patterns that start with a wildcard). Rules are indexed by it.
    pub(crate) literal_prefix: String,
    /// How the rest matches. The common shapes need no glob engine: the index lookup by prefix is
    /// the whole match.
    pub(crate) kind: PathMatch,
}

const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

/// Compiles `pattern` against the workspace `root` (absolute, normalised).
pub(crate) fn compile_pattern(root: &str, pattern: &str) -> Result<PathPattern, String> {
    if pattern.is_empty() {
        return Err("empty path pattern".to_string());
    }
    if pattern.contains('\0') {
        return Err(format!(
            "path pattern `{}` has a NUL byte",
            pattern.escape_debug()
        ));
    }
    let relative = if let Some(absolute) = pattern.strip_prefix('/') {
        let root_relative = root.trim_start_matches('/');
        match absolute.strip_prefix(root_relative) {
            Some("") => "**",
            Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
            _ => {
                return Err(format!(
                    "path pattern `{pattern}` can never match: it is outside the workspace root `{root}`"
                ))
            }
        }
    } else {
        pattern
    };
    let mut components: Vec<&str> = Vec::new();
    for component in relative.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                return Err(format!(
                "path pattern `{pattern}` can never match: `..` never appears in a normalised path"
            ))
            }
            _ => components.push(component),
        }
    }
    // As in gitignore, a trailing `/` neither anchors the pattern nor narrows what it matches (the
    // policy cannot tell files from directories that do not exist yet): `secrets/` is `secrets`.
    if components.is_empty() {
        components.push("**");
    }
    let anchored = components.len() > 1
        || components[0] == "**"
        || pattern.starts_with('/')
        || pattern.starts_with("./");
    let is_literal = |component: &&str| !component.contains(GLOB_META);
    if !anchored && is_literal(&components[0]) {
        return Ok(PathPattern {
            literal_prefix: String::new(),
            kind: PathMatch::NamedAnywhere(components[0].to_string()),
        });
    }
    if anchored && components.iter().all(is_literal) {
        return Ok(PathPattern {
            literal_prefix: components.join("/"),
            kind: PathMatch::AtOrBelow,
        });
    }
    if let Some((&"**", parents)) = components.split_last() {
        if parents.iter().all(is_literal) {
            return Ok(PathPattern {
                literal_prefix: parents.join("/"),
                kind: PathMatch::Below,
            });
        }
    }
    let body = components.join("/");
    let base = if anchored { body } else { format!("**/{body}") };
    let mut glob_texts = vec![base.clone()];
    if !base.ends_with("/**") && base != "**" {
        glob_texts.push(format!("{base}/**"));
    }
    let literal_prefix = if anchored {
        components
            .iter()
            .take_while(|component| is_literal(component))
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    } else {
        String::new()
    };
    let globs = glob_texts
        .iter()
        .map(|text| build_glob(text).map_err(|error| format!("path pattern `{pattern}`: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PathPattern {
        literal_prefix,
        kind: PathMatch::Globs(globs),
    })
}

fn build_glob(text: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(text)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// Why a requested path was refused before any rule was consulted.
pub(crate) fn suspicious_spelling(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("the path is empty");
    }
    let bytes = path.as_bytes();
    for (byte_idx, byte) in bytes.iter().enumerate() {
        match byte {
            b'\0' => return Some("the path has a NUL byte"),
            b'\\' => return Some("the path has a backslash, which some tools read as a separator"),
            b'%' => {
                let encoded = bytes
                    .get(byte_idx + 1..byte_idx + 3)
                    .map(<[u8]>::to_ascii_lowercase);
                if matches!(encoded.as_deref(), Some(b"2e" | b"2f" | b"5c" | b"00")) {
                    return Some("the path has a percent-encoded `.`, `/`, `\\` or NUL");
                }
            }
            _ => {}
        }
    }
    None
}

/// Normalises `path`, as requested from the directory `cwd` (relative to the root, normalised), into
/// a path relative to `root` (empty for the root itself). Errors say why the path is refused.
pub(crate) fn normalize(root: &str, cwd: &str, path: &str) -> Result<String, String> {
    if let Some(reason) = suspicious_spelling(path) {
        return Err(format!("{reason}: `{}`", path.escape_debug()));
    }
    let mut components: Vec<&str> = Vec::new();
    let relative_part = if let Some(absolute) = path.strip_prefix('/') {
        // Normalise the whole absolute path first, then require the root as its prefix.
        let mut absolute_components: Vec<&str> = Vec::new();
        push_components(&mut absolute_components, absolute)
            .map_err(|()| format!("`{path}` escapes the file system root"))?;
        let root_components: Vec<&str> = root.split('/').filter(|c| !c.is_empty()).collect();
        if !absolute_components.starts_with(&root_components) {
            return Err(format!("`{path}` is outside the workspace root `{root}`"));
        }
        return Ok(absolute_components[root_components.len()..].join("/"));
    } else {
        path
    };
    push_components(&mut components, cwd)
        .map_err(|()| format!("the working directory `{cwd}` escapes the workspace root"))?;
    push_components(&mut components, relative_part)
        .map_err(|()| format!("`{path}` escapes the workspace root"))?;
    Ok(components.join("/"))
}

fn push_components<'a>(components: &mut Vec<&'a str>, path: &'a str) -> Result<(), ()> {
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                components.pop().ok_or(())?;
            }
            _ => components.push(component),
        }
    }
    Ok(())
}

/// Resolves symbolic links in `relative` (a normalised path below `root`) and returns the resolved
/// path relative to the resolved root. The part of the path that does not exist yet is kept as is.
pub(crate) fn resolve_symlinks(root: &str, relative: &str) -> Result<String, String> {
    let root_path = Path::new(root);
    let canonical_root = root_path
        .canonicalize()
        .map_err(|error| format!("cannot resolve the workspace root `{root}`: {error}"))?;
    let full = root_path.join(relative);
    let mut existing = full.clone();
    let mut missing: Vec<std::ffi::OsString> = Vec::new();
    let canonical = loop {
        match existing.canonicalize() {
            Ok(canonical) => break canonical,
            Err(_) => {
                let Some(name) = existing.file_name().map(ToOwned::to_owned) else {
                    return Err(format!("cannot resolve `{relative}`"));
                };
                missing.push(name);
                if !existing.pop() {
                    return Err(format!("cannot resolve `{relative}`"));
                }
            }
        }
    };
    let mut resolved: PathBuf = canonical;
    resolved.extend(missing.iter().rev());
    let inside = resolved.strip_prefix(&canonical_root).map_err(|_| {
        format!(
            "`{relative}` resolves to `{}`, outside the workspace root",
            resolved.display()
        )
    })?;
    let mut parts = Vec::new();
    for component in inside.components() {
        match component {
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| format!("`{relative}` resolves to a path that is not UTF-8"))?
                    .to_string(),
            ),
            _ => return Err(format!("`{relative}` resolves outside the workspace root")),
        }
    }
    Ok(parts.join("/"))
}

/// The directories strictly above a normalised relative path, root (empty) first: `a/b/c` gives
/// ``, `a`, `a/b`. Rules are indexed under these and the path itself.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").filter(move |_| !path.is_empty()).chain(
        path.match_indices('/')
            .map(move |(slash_idx, _)| &path[..slash_idx]),
    )
}

/// Whether a pattern with this literal prefix may match something strictly below `dir`.
pub(crate) fn may_match_below(literal_prefix: &str, dir: &str) -> bool {
    literal_prefix.is_empty()
        || dir.is_empty()
        || literal_prefix == dir
        || is_below(literal_prefix, dir)
        || is_below(dir, literal_prefix)
}

fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;
    use globset::GlobSetBuilder;

    const ROOT: &str = "/work/repo";

    fn check_normalize(cwd: &str, path: &str, expected: Result<&str, &str>) {
        let actual = normalize(ROOT, cwd, path);
        match expected {
            Ok(want) => assert_eq!(actual.as_deref(), Ok(want), "{path:?} from {cwd:?}"),
            Err(fragment) => {
                let error = actual.expect_err(path);
                assert!(error.contains(fragment), "{path:?}: {error}");
            }
        }
    }

    #[test]
    fn normalizes_paths() {
        check_normalize("", "src/lib.rs", Ok("src/lib.rs"));
        check_normalize("", "./src//lib.rs", Ok("src/lib.rs"));
        check_normalize("", "src/./a/../lib.rs", Ok("src/lib.rs"));
        check_normalize("", "src/", Ok("src"));
        check_normalize("", ".", Ok(""));
        check_normalize("src", "lib.rs", Ok("src/lib.rs"));
        check_normalize("src", "../.env", Ok(".env"));
        check_normalize("", "/work/repo/src/lib.rs", Ok("src/lib.rs"));
        check_normalize("", "/work/repo", Ok(""));
        check_normalize("", "/work/repo/../repo/x", Ok("x"));
        check_normalize("", "..", Err("escapes the workspace root"));
        check_normalize("", "src/../../x", Err("escapes"));
        check_normalize("src", "../../x", Err("escapes"));
        check_normalize("", "/etc/passwd", Err("outside the workspace root"));
        check_normalize("", "/work/repository/x", Err("outside"));
        check_normalize("", "/work/repo/../other/x", Err("outside"));
        check_normalize("", "%2e%2e/x", Err("percent-encoded"));
        check_normalize("", "a%2Fb", Err("percent-encoded"));
        check_normalize("", "..\\x", Err("backslash"));
        check_normalize("", "a\0b", Err("NUL"));
        check_normalize("", "", Err("empty"));
    }

    /// The reference meaning of a compiled pattern, written plainly.
    fn matches(pattern: &str, path: &str) -> bool {
        let compiled = compile_pattern(ROOT, pattern).unwrap();
        let prefix = compiled.literal_prefix.as_str();
        match compiled.kind {
            PathMatch::AtOrBelow => path == prefix || is_below(path, prefix),
            PathMatch::Below => prefix.is_empty() || is_below(path, prefix),
            PathMatch::NamedAnywhere(name) => path.split('/').any(|component| component == name),
            PathMatch::Globs(globs) => {
                let mut builder = GlobSetBuilder::new();
                for glob in globs {
                    builder.add(glob);
                }
                builder.build().unwrap().is_match(path)
            }
        }
    }

    #[test]
    fn patterns_follow_gitignore_conventions() {
        let cases: &[(&str, &str, bool)] = &[
            ("src/auth/**", "src/auth/login.rs", true),
            ("src/auth/**", "src/auth/deep/x.rs", true),
            ("src/auth/**", "src/authx/login.rs", false),
            ("src/auth/**", "src/lib.rs", false),
            ("src/auth/", "src/auth/login.rs", true),
            ("src/auth/", "src/auth", true),
            ("secrets/", "secrets", true),
            ("secrets/", "config/secrets/key", true),
            ("src/auth", "src/auth/login.rs", true),
            ("src/auth", "src/auth", true),
            ("src/*.rs", "src/lib.rs", true),
            ("src/*.rs", "src/a/lib.rs", false),
            (".env", ".env", true),
            (".env", "config/.env", true),
            (".env", ".envrc", false),
            ("*.pem", "keys/server.pem", true),
            ("/work/repo/secrets/**", "secrets/a", true),
            ("./docs/**", "docs/a.md", true),
            ("./.env", "config/.env", false),
            ("/work/repo/secrets", "a/secrets", false),
            ("**", "anything/at/all", true),
            ("**", "", true),
            ("src/auth/**", "src/auth", false),
            ("src/lib.rs", "src/lib.rs/x", true),
            ("src/lib.rs", "src/lib.rsx", false),
            (".env", "a/.env/b", true),
            (".env", "a/x.env", false),
            ("*.pem", "a/b.pem", true),
            ("src/?.rs", "src/a.rs", true),
            ("src/[ab].rs", "src/c.rs", false),
            ("src/{a,b}.rs", "src/b.rs", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(matches(pattern, path), *expected, "{pattern} vs {path}");
        }
    }

    #[test]
    fn patterns_that_can_never_match_are_errors() {
        for pattern in [
            "",
            "../x",
            "src/../../x",
            "/etc/**",
            "/work/repository/x",
            "a[",
            "a\0",
        ] {
            assert!(compile_pattern(ROOT, pattern).is_err(), "{pattern:?}");
        }
    }

    #[test]
    fn literal_prefixes_index_patterns() {
        let prefix = |pattern: &str| compile_pattern(ROOT, pattern).unwrap().literal_prefix;
        assert_eq!(prefix("src/auth/**"), "src/auth");
        assert_eq!(prefix("src/a*/x"), "src");
        assert_eq!(prefix("src/lib.rs"), "src/lib.rs");
        assert_eq!(prefix(".env"), "");
        assert_eq!(prefix("**/x"), "");
    }

    #[test]
    fn ancestors_cover_every_directory_above() {
        let ancestors_of = |path| ancestors(path).collect::<Vec<_>>();
        assert_eq!(ancestors_of("a/b/c"), vec!["", "a", "a/b"]);
        assert_eq!(ancestors_of("a"), vec![""]);
        assert!(ancestors_of("").is_empty());
    }

    #[test]
    fn common_shapes_need_no_glob_engine() {
        let kind = |pattern: &str| compile_pattern(ROOT, pattern).unwrap().kind;
        assert!(matches!(kind("src/lib.rs"), PathMatch::AtOrBelow));
        assert!(matches!(kind("src/auth/**"), PathMatch::Below));
        assert!(matches!(kind("src/auth/"), PathMatch::AtOrBelow));
        assert!(matches!(kind("secrets/"), PathMatch::NamedAnywhere(_)));
        assert!(matches!(kind("**"), PathMatch::Below));
        assert!(matches!(kind(".env"), PathMatch::NamedAnywhere(_)));
        assert!(matches!(kind("*.pem"), PathMatch::Globs(_)));
        assert!(matches!(kind("src/*.rs"), PathMatch::Globs(_)));
    }

    #[test]
    fn below_checks_respect_component_boundaries() {
        assert!(may_match_below("", "src"));
        assert!(may_match_below("src/secret", "src"));
        assert!(may_match_below("src", "src/a"));
        assert!(!may_match_below("srcx", "src"));
        assert!(!may_match_below("docs", "src"));
    }

    #[test]
    fn symlinks_are_resolved_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("src"), root.join("alias")).unwrap();
        let root = root.to_str().unwrap();
        assert!(resolve_symlinks(root, "link/secret").is_err());
        assert_eq!(
            resolve_symlinks(root, "alias/new.rs").unwrap(),
            "src/new.rs"
        );
        assert_eq!(resolve_symlinks(root, "src/a/b").unwrap(), "src/a/b");
    }
}
