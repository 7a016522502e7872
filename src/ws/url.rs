//! WebSocket URLs (RFC 6455, section 3): `ws://host[:port][/path][?query]`, and
//! `ws+unix://SOCKET_PATH[:/path]` for a Unix-domain socket.

use std::io;
use std::path::PathBuf;

/// Where a WebSocket client connects, and what its handshake asks for: a parsed `ws://` or
/// `ws+unix://` URL.
///
/// * `ws://host[:port][/path][?query]`: TCP, port 80 unless given; the host may be a name, an
///   IPv4 address or an IPv6 address in brackets (`ws://[::1]:9000/`).
/// * `ws+unix:///run/app.sock:/chat`: the Unix-domain socket at `/run/app.sock`, asking for
///   `/chat` (the path after the last `:/`; `/` when there is none). The `Host` header says
///   `localhost`. (The convention of Node's `ws` package.)
///
/// `wss://` is refused (TLS is not in the standard library), and so is a fragment (`#...`,
/// section 3). Since the host and the resource go into the handshake as they are, both are
/// checked (RFC 3986): the host is a name (letters, digits, `-._~` and `!$&'()*+,;=`), an
/// IPv4 address or a bracketed IPv6 address, with a decimal port; the path and query hold
/// only the characters a URL may (letters, digits, `-._~!$&'()*+,;=:@/?`) and well-formed
/// percent escapes (`%E2%82%AC`). A space, a control character (CR, LF), a quote or
/// anything outside ASCII is refused, not escaped: percent-encode it first.
///
/// ```
/// use threadnet::ws::WsUrl;
///
/// let url = WsUrl::parse("ws://127.0.0.1:9000/chat?room=1")?;
/// assert_eq!(url.host(), "127.0.0.1:9000");
/// assert_eq!(url.resource(), "/chat?room=1");
///
/// let unix = WsUrl::parse("ws+unix:///tmp/app.sock:/chat")?;
/// assert_eq!(unix.unix_path(), Some(std::path::Path::new("/tmp/app.sock")));
/// assert_eq!(unix.resource(), "/chat");
///
/// // Nothing that would write into the request: CR, LF, spaces, bad escapes.
/// let e = WsUrl::parse("ws://h/x\r\nX-Evil: 1").unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
/// assert!(WsUrl::parse("ws://h/a b").is_err());
/// assert!(WsUrl::parse("ws://h/%zz").is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    host: String,
    resource: String,
    unix: Option<PathBuf>,
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.into())
}

impl WsUrl {
    /// Parses `url`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming what is wrong: another scheme (`wss` included), no host, an
    /// invalid host, a port that is not a number from 0 to 65535, a character a path or
    /// query may not hold or a malformed percent escape, a fragment, or a `ws+unix` URL
    /// without a socket path.
    pub fn parse(url: &str) -> io::Result<WsUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(format!("{url:?}: not a ws:// URL")))?;
        if rest.contains('#') {
            return Err(bad(format!("{url:?}: a WebSocket URL has no fragment")));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "ws" => Self::parse_tcp(url, rest),
            "ws+unix" => Self::parse_unix(url, rest),
            "wss" => Err(bad(format!("{url:?}: wss (TLS) is not supported"))),
            _ => Err(bad(format!("{url:?}: the scheme must be ws or ws+unix"))),
        }
    }

    fn parse_tcp(url: &str, rest: &str) -> io::Result<WsUrl> {
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(bad(format!("{url:?}: no host, or a user name")));
        }
        // The port follows the last ':' outside an IPv6 address's brackets.
        let host_end = authority.rfind(']').map_or(0, |i| i + 1);
        let (host, port) = match authority[host_end..].rfind(':') {
            Some(i) => (
                &authority[..host_end + i],
                Some(&authority[host_end + i + 1..]),
            ),
            None => (authority, None),
        };
        if let Err(why) = check_host(host) {
            return Err(bad(format!("{url:?}: the host {host:?} {why}")));
        }
        let host = match port {
            Some(port) if !is_port(port) => {
                return Err(bad(format!(
                    "{url:?}: the port is not a number from 0 to 65535"
                )))
            }
            Some(_) => authority.to_string(),
            None => format!("{authority}:80"),
        };
        Ok(WsUrl {
            host,
            resource: checked_resource(url, resource)?,
            unix: None,
        })
    }

    fn parse_unix(url: &str, rest: &str) -> io::Result<WsUrl> {
        let (path, resource) = match rest.rfind(":/") {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, "/"),
        };
        if path.is_empty() {
            return Err(bad(format!("{url:?}: no socket path")));
        }
        Ok(WsUrl {
            host: "localhost".to_string(),
            resource: checked_resource(url, resource)?,
            unix: Some(PathBuf::from(path)),
        })
    }

    /// The `Host` header: `host:port` (the port made explicit), or `localhost` for a Unix
    /// socket. For TCP it is also the address dialled.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The resource asked for in the request line: the path and query, `/` when empty.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The Unix-domain socket's path, for a `ws+unix` URL.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix.as_deref()
    }
}

/// The resource of the request line: `r` checked, `/` before it when it has none.
fn checked_resource(url: &str, r: &str) -> io::Result<String> {
    if let Err(why) = check_chars(r, |b| is_pchar(b) || b == b'/' || b == b'?') {
        return Err(bad(format!("{url:?}: the path or query {why}")));
    }
    Ok(if r.starts_with('/') {
        r.to_string()
    } else {
        format!("/{r}") // "" or "?query"
    })
}

/// `unreserved` of RFC 3986: letters, digits and `-._~`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `sub-delims` of RFC 3986.
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// `pchar` of RFC 3986, but for `%`, which [`check_chars`] takes as an escape.
fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

/// Checks that every byte of `s` is `allowed` or begins a well-formed percent escape
/// (`%` and two hex digits); otherwise says what is wrong.
fn check_chars(s: &str, allowed: impl Fn(u8) -> bool) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let escape = b.get(i + 1..i + 3);
            if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                let end = (i + 3).min(b.len());
                return Err(format!(
                    "has a malformed percent escape {:?}",
                    String::from_utf8_lossy(&b[i..end])
                ));
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            let c = s[i..].chars().next().unwrap_or_default();
            return Err(format!(
                "holds {c:?}, which a URL may not (RFC 3986): percent-encode it"
            ));
        }
    }
    Ok(())
}

/// A port: 1 to 5 decimal digits, at most 65535 (no sign, no space).
pub(crate) fn is_port(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

/// Checks a URL's host without its port (RFC 3986, section 3.2.2): an IPv6 address in
/// brackets, or a name (an IPv4 address is one) of letters, digits, `-._~` and sub-delims.
/// Percent escapes are refused: a host is dialled by name, and no name has one.
pub(crate) fn check_host(host: &str) -> Result<(), &'static str> {
    if let Some(inside) = host.strip_prefix('[') {
        let v6 = inside
            .strip_suffix(']')
            .ok_or("is missing the ']' of its IPv6 address")?;
        return match v6.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err("is not an IPv6 address in brackets"),
        };
    }
    if host.is_empty() {
        return Err("is empty");
    }
    if host.bytes().all(|b| is_unreserved(b) || is_sub_delim(b)) {
        Ok(())
    } else {
        Err(
            "is not a name (letters, digits, -._~ and !$&'()*+,;=), an IPv4 address or \
             an IPv6 address in brackets",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_urls() {
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!((u.host(), u.resource()), ("example.com:80", "/"));
        let u = WsUrl::parse("WS://[::1]:9000?x=1").unwrap();
        assert_eq!((u.host(), u.resource()), ("[::1]:9000", "/?x=1"));
        let u = WsUrl::parse("ws://[::1]/a/b").unwrap();
        assert_eq!((u.host(), u.resource()), ("[::1]:80", "/a/b"));
        assert_eq!(u.unix_path(), None);
    }

    #[test]
    fn unix_urls() {
        let u = WsUrl::parse("ws+unix:///tmp/s.sock").unwrap();
        assert_eq!(u.unix_path(), Some(std::path::Path::new("/tmp/s.sock")));
        assert_eq!((u.host(), u.resource()), ("localhost", "/"));
    }

    #[test]
    fn refused() {
        for (url, why) in [
            ("wss://x/", "TLS"),
            ("http://x/", "scheme"),
            ("ws://x/#frag", "fragment"),
            ("ws:///path", "no host"),
            ("ws://x:http/", "port"),
            ("ws://user@x/", "user"),
            ("ws+unix://:/chat", "socket path"),
            ("x", "not a ws"),
        ] {
            let e = WsUrl::parse(url).unwrap_err();
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn good_urls_with_queries_escapes_ipv6_and_unix_parse() {
        for (url, host, resource) in [
            ("ws://h/a/b?x=1&y=%2F", "h:80", "/a/b?x=1&y=%2F"),
            (
                "ws://h:9/%E2%82%AC/~user/a-b_c.d",
                "h:9",
                "/%E2%82%AC/~user/a-b_c.d",
            ),
            (
                "ws://h/p;v=1/a:b@c!$&'()*+,=?q/?:@",
                "h:80",
                "/p;v=1/a:b@c!$&'()*+,=?q/?:@",
            ),
            ("ws://h?only=query", "h:80", "/?only=query"),
            ("ws://[::1]:9000/x?y", "[::1]:9000", "/x?y"),
            (
                "ws://[2001:db8::ff00:42:8329]/",
                "[2001:db8::ff00:42:8329]:80",
                "/",
            ),
            ("ws://127.0.0.1:0/", "127.0.0.1:0", "/"),
            ("ws://my-host.example.com./", "my-host.example.com.:80", "/"),
        ] {
            let u = WsUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((u.host(), u.resource()), (host, resource), "{url}");
        }
        let u = WsUrl::parse("ws+unix:///tmp/a dir/s.sock:/chat?room=%41").unwrap();
        assert_eq!(
            u.unix_path(),
            Some(std::path::Path::new("/tmp/a dir/s.sock"))
        );
        assert_eq!((u.host(), u.resource()), ("localhost", "/chat?room=%41"));
    }

    #[test]
    fn what_would_write_into_the_request_is_refused() {
        for (url, why) in [
            ("ws://h/x\r\nX-Evil: 1", "path"),
            ("ws://h/x\nX-Evil: 1", "path"),
            ("ws://h/x\rX", "path"),
            ("ws://h/a b", "path"),
            ("ws://h/a\tb", "path"),
            ("ws://h/a\0b", "path"),
            ("ws://h/a\x7fb", "path"),
            ("ws://h/caf\u{e9}", "path"),
            ("ws://h/a\"b", "path"),
            ("ws://h/a<b>", "path"),
            ("ws://h/a%", "percent"),
            ("ws://h/a%4", "percent"),
            ("ws://h/a%zz", "percent"),
            ("ws://h/?q=a b", "path"),
            ("ws://h/?q=\r\nX-Evil: 1", "path"),
            ("ws://h\r\nX-Evil: 1/", "host"),
            ("ws://h x/", "host"),
            ("ws://h%0d%0a/", "host"),
            ("ws://h\t:80/", "host"),
            ("ws://[::1/", "host"),
            ("ws://[not-v6]/", "host"),
            ("ws://[::1]x:80/", "host"),
            ("ws://h:8\r0/", "port"),
            ("ws://h:99999/", "port"),
            ("ws+unix:///s.sock:/x\r\nX-Evil: 1", "path"),
            ("ws+unix:///s.sock:/a b", "path"),
        ] {
            let e = WsUrl::parse(url).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{url:?}");
            assert!(e.to_string().contains(why), "{url:?}: {e}");
        }
    }
}
