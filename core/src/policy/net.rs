//! Network destinations: parsing targets and patterns, with hosts normalised by the `url` crate.
//!
//! Hosts go through the WHATWG host parser before any rule sees them, so IDNs become punycode,
//! percent-encoding is decoded, and IPv4 literals in any spelling (`0x7f.1`, `2130706433`, `127.1`)
//! become dotted quads. A suffix rule `*.example.com` matches `a.example.com` and `a.b.example.com`
//! on label boundaries only, never `evil-example.com`, and not `example.com` itself.

use url::{Host, Url};

/// A destination a request connects to, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NetTarget {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) is_domain: bool,
    pub(crate) port: Option<u16>,
}

/// The host part of a network pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// Exactly this host.
    Exact(String),
    /// Any host ending in `.suffix`.
    Suffix(String),
    /// Any host.
    Any,
}

/// A network pattern: `[scheme://]host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NetPattern {
    pub(crate) scheme: Option<String>,
    pub(crate) host: HostPattern,
    pub(crate) port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ssh" | "sftp" | "scp" => Some(22),
        "git" => Some(9418),
        "ftp" => Some(21),
        _ => None,
    }
}

/// Normalises a host name or IP literal; returns the host and whether it is a domain name.
fn normalize_host(raw: &str) -> Result<(String, bool), String> {
    if raw.is_empty() {
        return Err("the destination has no host".to_string());
    }
    let host = Host::parse(raw).map_err(|error| format!("`{raw}` is not a valid host: {error}"))?;
    Ok(match host {
        Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.').to_string();
            if domain.is_empty() || domain.split('.').any(str::is_empty) {
                return Err(format!("`{raw}` is not a valid host: empty label"));
            }
            (domain, true)
        }
        Host::Ipv4(address) => (address.to_string(), false),
        // An IPv4-mapped IPv6 address reaches the IPv4 host, so it is judged as that host.
        Host::Ipv6(address) => match address.to_ipv4_mapped() {
            Some(mapped) => (mapped.to_string(), false),
            None => (format!("[{address}]"), false),
        },
    })
}

fn has_forbidden_chars(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Splits `host[:port]` (the host may be a bracketed IPv6 literal).
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port_text) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| format!("`{authority}` has an unclosed `[`"))?;
        let after = &rest[close + 1..];
        (&authority[..close + 2], after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = port_text
        .map(|text| {
            text.parse::<u16>()
                .map_err(|_| format!("`{text}` is not a port number"))
        })
        .transpose()?;
    Ok((host, port))
}

/// Parses what a request or a command line names as a destination: a URL, `host`, `host:port`,
/// `user@host`, or scp-style `[user@]host:path`.
pub(crate) fn parse_target(
    target: &str,
    default_scheme: &str,
    port: Option<u16>,
) -> Result<NetTarget, String> {
    if has_forbidden_chars(target) {
        return Err(format!(
            "destination `{}` has spaces or control characters",
            target.escape_debug()
        ));
    }
    if target.contains("://") {
        let url = Url::parse(target)
            .map_err(|error| format!("`{target}` is not a valid url: {error}"))?;
        let raw_host = url
            .host_str()
            .ok_or_else(|| format!("`{target}` has no host"))?;
        // `Host::parse` percent-decodes, so `evil%2ecom` is `evil.com` whatever the scheme.
        let (host, is_domain) = normalize_host(raw_host)?;
        let scheme = url.scheme().to_ascii_lowercase();
        let port = port.or(url.port()).or_else(|| default_port(&scheme));
        return Ok(NetTarget {
            scheme,
            host,
            is_domain,
            port,
        });
    }
    let without_user = target.rsplit_once('@').map_or(target, |(_, host)| host);
    let (host, parsed_port) = if without_user.starts_with('[') {
        split_host_port(without_user)?
    } else {
        match without_user.split_once(':') {
            // `host:123` is a port; `host:path` is scp style.
            Some((host, rest)) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
                split_host_port(without_user).map(|(_, port)| (host, port))?
            }
            Some((host, _path)) => (host, None),
            None => (without_user, None),
        }
    };
    let (host, is_domain) = normalize_host(host)?;
    let scheme = default_scheme.to_ascii_lowercase();
    let port = port.or(parsed_port).or_else(|| default_port(&scheme));
    Ok(NetTarget {
        scheme,
        host,
        is_domain,
        port,
    })
}

/// Compiles a network pattern: `[scheme://]host[:port]`, where host is a name, an IP literal,
/// `*.suffix` or `*`. A pattern with a scheme and no port means the scheme's default port.
pub(crate) fn compile_pattern(pattern: &str) -> Result<NetPattern, String> {
    if pattern.is_empty() || has_forbidden_chars(pattern) {
        return Err(format!(
            "network pattern `{}` is empty or has spaces",
            pattern.escape_debug()
        ));
    }
    let (scheme, rest) = match pattern.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, pattern),
    };
    if rest.contains('/') || rest.contains('@') {
        return Err(format!(
            "network pattern `{pattern}` must be `[scheme://]host[:port]`, without a path or user"
        ));
    }
    let (host_text, port) = split_host_port(rest)?;
    let host = if host_text == "*" {
        HostPattern::Any
    } else if let Some(suffix) = host_text.strip_prefix("*.") {
        HostPattern::Suffix(normalize_host(suffix)?.0)
    } else if host_text.contains('*') {
        return Err(format!(
            "network pattern `{pattern}`: a `*` is only allowed as the whole host or as a leading `*.`"
        ));
    } else {
        HostPattern::Exact(normalize_host(host_text)?.0)
    };
    let port = port.or_else(|| scheme.as_deref().and_then(default_port));
    Ok(NetPattern { scheme, host, port })
}

impl NetPattern {
    /// Whether the scheme and port of `target` fit the pattern (the host is matched by the index).
    pub(crate) fn matches_scheme_and_port(&self, target: &NetTarget) -> bool {
        self.scheme
            .as_deref()
            .is_none_or(|scheme| scheme == target.scheme)
            && self.port.is_none_or(|port| target.port == Some(port))
    }
}

/// The suffixes a domain is indexed under for `*.suffix` rules: `a.b.c` gives `b.c`, then `c`.
pub(crate) fn domain_suffixes(host: &str) -> impl Iterator<Item = &str> {
    host.match_indices('.')
        .map(move |(dot_idx, _)| &host[dot_idx + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_target(target: &str, expected: Result<(&str, &str, Option<u16>), &str>) {
        let actual = parse_target(target, "https", None);
        match expected {
            Ok((scheme, host, port)) => {
                let actual = actual.unwrap_or_else(|error| panic!("{target}: {error}"));
                assert_eq!(
                    (actual.scheme.as_str(), actual.host.as_str(), actual.port),
                    (scheme, host, port),
                    "{target}"
                );
            }
            Err(fragment) => {
                let error = actual.expect_err(target);
                assert!(error.contains(fragment), "{target}: {error}");
            }
        }
    }

    #[test]
    fn targets_are_normalised() {
        check_target(
            "https://API.GitHub.com/x",
            Ok(("https", "api.github.com", Some(443))),
        );
        check_target(
            "http://example.com:8080",
            Ok(("http", "example.com", Some(8080))),
        );
        check_target("example.com", Ok(("https", "example.com", Some(443))));
        check_target("example.com.", Ok(("https", "example.com", Some(443))));
        check_target("example.com:22", Ok(("https", "example.com", Some(22))));
        check_target(
            "git@github.com:org/repo.git",
            Ok(("https", "github.com", Some(443))),
        );
        check_target(
            "ssh://git@github.com:2222/x",
            Ok(("ssh", "github.com", Some(2222))),
        );
        check_target("http://0x7f.1/", Ok(("http", "127.0.0.1", Some(80))));
        check_target("http://2130706433/", Ok(("http", "127.0.0.1", Some(80))));
        check_target("127.1", Ok(("https", "127.0.0.1", Some(443))));
        check_target("http://[::1]:8080/", Ok(("http", "[::1]", Some(8080))));
        check_target(
            "http://[::ffff:169.254.169.254]/",
            Ok(("http", "169.254.169.254", Some(80))),
        );
        check_target(
            "http://[::ffff:a9fe:a9fe]/",
            Ok(("http", "169.254.169.254", Some(80))),
        );
        check_target(
            "http://0251.0376.0251.0376/",
            Ok(("http", "169.254.169.254", Some(80))),
        );
        check_target(
            "http://169.254.43518/",
            Ok(("http", "169.254.169.254", Some(80))),
        );
        check_target(
            "https://bücher.example/",
            Ok(("https", "xn--bcher-kva.example", Some(443))),
        );
        check_target(
            "https://g\u{0456}thub.com/",
            Ok(("https", "xn--gthub-n2e.com", Some(443))),
        );
        check_target("https://evil%2ecom/", Ok(("https", "evil.com", Some(443))));
        check_target("ssh://evil%2ecom/", Ok(("ssh", "evil.com", Some(22))));
        check_target("https://exa mple.com", Err("spaces"));
        check_target("file:///etc/passwd", Err("no host"));
        check_target("a..b", Err("empty label"));
    }

    #[test]
    fn patterns_compile_or_say_why_not() {
        let pattern = compile_pattern("https://*.example.com").unwrap();
        assert_eq!(pattern.host, HostPattern::Suffix("example.com".into()));
        assert_eq!(pattern.port, Some(443));
        let pattern = compile_pattern("github.com").unwrap();
        assert_eq!(pattern.host, HostPattern::Exact("github.com".into()));
        assert_eq!((pattern.scheme, pattern.port), (None, None));
        assert_eq!(compile_pattern("*").unwrap().host, HostPattern::Any);
        assert_eq!(
            compile_pattern("http://0x7f.0.0.1:8080").unwrap().host,
            HostPattern::Exact("127.0.0.1".into())
        );
        for bad in [
            "",
            "evil*.com",
            "https://a.com/path",
            "user@a.com",
            "a.com:notaport",
            "a b",
        ] {
            assert!(compile_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn suffixes_are_label_boundaries() {
        let suffixes: Vec<&str> = domain_suffixes("a.b.example.com").collect();
        assert_eq!(suffixes, vec!["b.example.com", "example.com", "com"]);
        assert!(!domain_suffixes("evil-example.com").any(|suffix| suffix == "example.com"));
    }
}
