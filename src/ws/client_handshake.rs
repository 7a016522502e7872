//! The opening handshake, client side (RFC 6455, section 4.1): send the upgrade request, read
//! the server's answer and check it.

use std::io::{self, BufRead, BufReader, IoSlice, Read};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client_socket::Primed;
use super::url::{check_host, is_port, WsUrl};
use crate::sys::transport::Socket;
use crate::timer::TimingWheel;

/// The longest response head read: more is an error.
const MAX_HEAD: u64 = 16 * 1024;

/// What the client asks for in its handshake.
#[derive(Clone, Debug)]
pub(crate) struct Offer {
    pub(crate) url: WsUrl,
    pub(crate) protocols: Vec<String>,
    pub(crate) origin: Option<String>,
}

impl Offer {
    /// An offer of `protocols` and `origin` for `url`, each checked, since each goes into the
    /// request as it is.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the value: a subprotocol that is not a token (RFC 6455, section
    /// 4.1: RFC 7230's `token`, so no space, comma, control character or non-ASCII) or is
    /// offered twice; an origin that is not a serialized origin (RFC 6454, section 6.2:
    /// `null`, or `scheme://host[:port]` with no path).
    pub(crate) fn new(
        url: WsUrl,
        protocols: Vec<String>,
        origin: Option<String>,
    ) -> io::Result<Offer> {
        for (i, p) in protocols.iter().enumerate() {
            if p.is_empty() || !p.bytes().all(is_tchar) {
                return Err(invalid(format!(
                    "subprotocol {p:?} is not a token (RFC 6455, section 4.1): letters, \
                     digits and !#$%&'*+-.^_`|~ only"
                )));
            }
            if protocols[..i].contains(p) {
                return Err(invalid(format!("subprotocol {p:?} is offered twice")));
            }
        }
        if let Some(o) = &origin {
            if let Err(why) = check_origin(o) {
                return Err(invalid(format!(
                    "origin {o:?} {why}: it must be a serialized origin (RFC 6454), \
                     \"null\" or scheme://host[:port]"
                )));
            }
        }
        Ok(Offer {
            url,
            protocols,
            origin,
        })
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// `tchar` of RFC 7230 (section 3.2.6): the bytes of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a serialized origin (RFC 6454, section 6.2): `null`, or a scheme (a letter, then
/// letters, digits and `+-.`), `://`, a host as a URL's ([`check_host`]), and an optional
/// `:port`.
fn check_origin(o: &str) -> Result<(), &'static str> {
    if o == "null" {
        return Ok(());
    }
    let (scheme, rest) = o.split_once("://").ok_or("has no scheme://")?;
    let mut sb = scheme.bytes();
    let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err("has an invalid scheme");
    }
    let host_end = rest.rfind(']').map_or(0, |i| i + 1);
    let host = match rest[host_end..].rfind(':') {
        Some(i) => {
            if !is_port(&rest[host_end + i + 1..]) {
                return Err("has a port that is not a number from 0 to 65535");
            }
            &rest[..host_end + i]
        }
        None => rest,
    };
    if host.contains('/') {
        return Err("has a path");
    }
    check_host(host)
}

/// A handshake that failed: `InvalidData` naming what was wrong.
fn refused(url: &WsUrl, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("websocket handshake with {}: {why}", url.host()),
    )
}

/// The request for `offer` with `key`.
fn request(offer: &Offer, key: &str) -> String {
    let mut r = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        offer.url.resource(),
        offer.url.host()
    );
    if !offer.protocols.is_empty() {
        r += &format!("Sec-WebSocket-Protocol: {}\r\n", offer.protocols.join(", "));
    }
    if let Some(o) = &offer.origin {
        r += &format!("Origin: {o}\r\n");
    }
    r + "\r\n"
}

/// Reads from a shared socket.
struct SocketRead<'a>(&'a dyn Socket);

impl Read for SocketRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

fn write_all(sock: &dyn Socket, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match sock.write_vectored(&[IoSlice::new(data)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs the handshake on `sock` within `timeout` (a timer shuts the socket down when it
/// passes, which wakes a blocked read or write). Returns the socket the frames are read
/// from (with whatever arrived after the `101`, kept for the codec) and the subprotocol the
/// server picked.
///
/// # Errors
///
/// `TimedOut` when the server did not answer in time, `UnexpectedEof` when it closed first,
/// `InvalidData` naming what was wrong with its answer, and I/O errors.
pub(crate) fn handshake(
    sock: Arc<dyn Socket>,
    offer: &Offer,
    timeout: Duration,
) -> io::Result<(Arc<dyn Socket>, Option<String>)> {
    let wheel = TimingWheel::try_global()?;
    let expired = Arc::new(AtomicBool::new(false));
    let timer = {
        let (expired, sock) = (Arc::clone(&expired), Arc::clone(&sock));
        wheel.after(timeout, move || {
            expired.store(true, Ordering::SeqCst);
            let _ = sock.shutdown(Shutdown::Both);
        })
    };
    let result = exchange(&*sock, offer);
    if !wheel.cancel(timer) || expired.load(Ordering::SeqCst) {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "websocket handshake with {}: no answer within {timeout:?}",
                offer.url.host()
            ),
        ));
    }
    let (early, protocol) = result?;
    Ok((Primed::wrap(sock, early), protocol))
}

/// Sends the request and checks the answer: the bytes read past its head, and the
/// subprotocol.
fn exchange(sock: &dyn Socket, offer: &Offer) -> io::Result<(Vec<u8>, Option<String>)> {
    let key = super::base64::encode(&super::client_rng::nonce());
    write_all(sock, request(offer, &key).as_bytes())?;
    let mut reader = BufReader::with_capacity(4096, SocketRead(sock));
    let head = read_head(&mut reader, &offer.url)?;
    let protocol = check(&head, &key, offer)?;
    Ok((reader.buffer().to_vec(), protocol))
}

/// The response head's lines, without the empty line that ends it.
fn read_head<R: BufRead>(r: &mut R, url: &WsUrl) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut left = MAX_HEAD;
    loop {
        let mut line = Vec::new();
        let n = r.by_ref().take(left).read_until(b'\n', &mut line)?;
        left -= n as u64;
        if !line.ends_with(b"\n") {
            return Err(if left == 0 {
                refused(url, format!("response head over {MAX_HEAD} bytes"))
            } else {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "websocket handshake with {}: the server closed the connection \
                         before its answer ended",
                        url.host()
                    ),
                )
            });
        }
        let line = String::from_utf8(line).map_err(|_| refused(url, "response not UTF-8"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line.to_string());
    }
}

/// The values of header `name` in `head`, split at commas and trimmed.
fn tokens<'a>(head: &'a [String], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    head[1..]
        .iter()
        .filter_map(move |l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v)
        })
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Checks the answer (section 4.1, the client's checks 1 to 6); the subprotocol picked.
fn check(head: &[String], key: &str, offer: &Offer) -> io::Result<Option<String>> {
    let url = &offer.url;
    let status = head.first().map_or("", String::as_str);
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(refused(url, format!("not an HTTP response: {status:?}")));
    }
    if code != "101" {
        return Err(refused(
            url,
            format!("the server answered {status:?}, not 101 Switching Protocols"),
        ));
    }
    let has = |name: &str, token: &str| tokens(head, name).any(|t| t.eq_ignore_ascii_case(token));
    if !has("upgrade", "websocket") {
        return Err(refused(url, "no \"Upgrade: websocket\" in the 101"));
    }
    if !has("connection", "upgrade") {
        return Err(refused(url, "no \"Connection: Upgrade\" in the 101"));
    }
    let expected = super::accept_key(key);
    let accept: Vec<&str> = tokens(head, "sec-websocket-accept").collect();
    if accept != [expected.as_str()] {
        return Err(refused(
            url,
            format!("Sec-WebSocket-Accept is {accept:?}, expected {expected:?}"),
        ));
    }
    if let Some(ext) = tokens(head, "sec-websocket-extensions").next() {
        return Err(refused(url, format!("extension {ext:?} was not offered")));
    }
    let picked: Vec<&str> = tokens(head, "sec-websocket-protocol").collect();
    match picked.as_slice() {
        [] => Ok(None),
        [p] if offer.protocols.iter().any(|o| o == p) => Ok(Some(p.to_string())),
        _ => Err(refused(
            url,
            format!(
                "subprotocol {picked:?} was not offered (offered {:?})",
                offer.protocols
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(protocols: &[&str]) -> Offer {
        Offer {
            url: WsUrl::parse("ws://h:1/p").unwrap(),
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            origin: None,
        }
    }

    fn head(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    #[test]
    fn rfc_example_accepted_with_its_subprotocol() {
        let h = head(&[
            "HTTP/1.1 101 Switching Protocols",
            "upgrade: WebSocket",
            "Connection: keep-alive, Upgrade",
            ACCEPT,
            "Sec-WebSocket-Protocol: chat",
        ]);
        assert_eq!(
            check(&h, KEY, &offer(&["superchat", "chat"])).unwrap(),
            Some("chat".into())
        );
    }

    #[test]
    fn each_missing_part_is_named() {
        let ok = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            ACCEPT,
        ];
        for (drop, why) in [
            (1, "Upgrade: websocket"),
            (2, "Connection: Upgrade"),
            (3, "Sec-WebSocket-Accept"),
        ] {
            let mut h = head(&ok);
            h.remove(drop);
            let e = check(&h, KEY, &offer(&[])).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let mut h = head(&ok);
        h.push("Sec-WebSocket-Protocol: chat".into());
        let e = check(&h, KEY, &offer(&[])).unwrap_err();
        assert!(e.to_string().contains("not offered"), "{e}");
        let mut h = head(&ok);
        h.push("Sec-WebSocket-Extensions: permessage-deflate".into());
        assert!(check(&h, KEY, &offer(&[])).is_err());
    }

    #[test]
    fn request_carries_offer() {
        let mut o = offer(&["a", "b"]);
        o.origin = Some("http://h".into());
        let r = request(&o, KEY);
        assert!(r.starts_with("GET /p HTTP/1.1\r\nHost: h:1\r\n"), "{r}");
        for part in [
            "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Protocol: a, b\r\n",
            "Origin: http://h\r\n",
        ] {
            assert!(r.contains(part), "{part} missing from {r}");
        }
        assert!(r.ends_with("\r\n\r\n"));
    }
}
