//! The opening handshake, server side (RFC 6455, section 4.2): checks an upgrade request and
//! makes the `101` that accepts it, or the status that refuses it.

use std::sync::Arc;

use crate::http::{Request, Response, Version};

/// Decides whether a request's `Origin` is accepted: see [`WsUpgrade::check_origin`](super::WsUpgrade::check_origin).
pub type OriginCheck = Arc<dyn Fn(&Request) -> bool + Send + Sync>;

/// Picks at most one of the offered subprotocols: see
/// [`WsUpgrade::subprotocol`](super::WsUpgrade::subprotocol).
pub type SubprotocolPick = Arc<dyn Fn(&Request, &[&str]) -> Option<String> + Send + Sync>;

/// True if the comma-separated header `name` has `token` (case-insensitive).
fn has_token(req: &Request, name: &str, token: &str) -> bool {
    req.headers().any(|(n, v)| {
        n.eq_ignore_ascii_case(name) && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// True if `req` asks for a WebSocket (`Upgrade: websocket`); whether it asks correctly is
/// [`accept`]'s question.
pub(crate) fn is_upgrade(req: &Request) -> bool {
    has_token(req, "upgrade", "websocket")
}

/// The default origin check: no `Origin` (not a browser), or an origin whose host and port
/// are the request's `Host`.
pub(crate) fn same_host(req: &Request) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let Some(host) = req.host() else {
        return false;
    };
    let authority = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .trim_end_matches('/');
    authority.eq_ignore_ascii_case(host.trim())
}

fn refuse(status: u16, why: &str) -> Response {
    Response::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Connection", "close")
        .body(format!("{why}\n"))
}

/// The `101 Switching Protocols` for `req`, or the response that refuses it: 400 for a
/// request that is not a valid handshake, 426 (with `Sec-WebSocket-Version: 13`) for another
/// version, 403 for an origin `origin` refuses.
pub(crate) fn accept(
    req: &Request,
    origin: &OriginCheck,
    pick: &SubprotocolPick,
) -> Result<Response, Response> {
    if req.method() != "GET" || req.version() != Version::Http11 {
        return Err(refuse(400, "a WebSocket handshake is a GET over HTTP/1.1"));
    }
    if !has_token(req, "connection", "upgrade") {
        return Err(refuse(400, "Connection: Upgrade missing"));
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(refuse(426, "WebSocket version 13 only").header("Sec-WebSocket-Version", "13"));
    }
    let key = req.header("sec-websocket-key").map(str::trim).unwrap_or("");
    if !super::is_valid_key(key) {
        return Err(refuse(400, "Sec-WebSocket-Key missing or invalid"));
    }
    if !origin(req) {
        return Err(refuse(403, "origin refused"));
    }
    let offered: Vec<&str> = req
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut resp = Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", super::accept_key(key));
    if let Some(p) = pick(req, &offered).filter(|p| offered.contains(&p.as_str())) {
        resp = resp.header("Sec-WebSocket-Protocol", p);
    }
    Ok(resp)
}
