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
/// section 3).
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
    /// `InvalidInput` naming what is wrong: another scheme (`wss` included), no host, a
    /// port that is not a number, a fragment, or a `ws+unix` URL without a socket path.
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
        let host = match authority[host_end..].rfind(':') {
            Some(i) => {
                let port = &authority[host_end + i + 1..];
                if port.parse::<u16>().is_err() {
                    return Err(bad(format!("{url:?}: the port is not a number")));
                }
                authority.to_string()
            }
            None => format!("{authority}:80"),
        };
        Ok(WsUrl {
            host,
            resource: resource_or_root(resource),
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
            resource: resource_or_root(resource),
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

fn resource_or_root(r: &str) -> String {
    if r.starts_with('/') {
        r.to_string()
    } else {
        format!("/{r}") // "" or "?query"
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
}
