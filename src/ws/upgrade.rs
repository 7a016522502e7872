//! HTTP/1.1 that switches to WebSocket frames: one codec for a port that serves pages and
//! sockets.

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use super::codec::{Message, WsCodec};
use super::error::WsError;
use super::handshake::{self, OriginCheck, SubprotocolPick};
use crate::codec::Codec;
use crate::http::{self, Http1, Request, Response};

/// What [`WsUpgrade`] reads.
#[derive(Debug)]
pub enum Incoming {
    /// A plain HTTP request (or `100 Continue`, or a refused request), as [`Http1`] reads it.
    Http(http::Incoming),
    /// A valid WebSocket handshake: `response` is the `101` to send first. The codec reads
    /// frames from now on.
    Open {
        /// The upgrade request (path, headers, cookies).
        request: Request,
        /// The `101 Switching Protocols` that accepts it.
        response: Response,
    },
    /// A WebSocket handshake refused (400, 403 or 426): send the response and shut down. The
    /// codec parses nothing more.
    Refused(Response),
    /// A WebSocket message, or a protocol error to answer with a close frame (as
    /// [`WsCodec`] reads them).
    Ws(Result<Message, WsError>),
}

/// What [`WsUpgrade`] writes: a response before the handshake, frames after it.
#[derive(Debug)]
pub enum Outgoing {
    /// An HTTP response.
    Http(Response),
    /// A WebSocket frame.
    Ws(Message),
}

impl From<Message> for Outgoing {
    fn from(m: Message) -> Outgoing {
        Outgoing::Ws(m)
    }
}

impl From<Response> for Outgoing {
    fn from(r: Response) -> Outgoing {
        Outgoing::Http(r)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http,
    Ws,
    /// After a refused handshake: everything is thrown away until EOF.
    Done,
}

/// HTTP/1.1 requests until a WebSocket handshake, WebSocket frames after it (RFC 6455,
/// section 4): the connection's codec is fixed, so this one codec switches inside.
///
/// A request with `Upgrade: websocket` is checked on the reader thread before anything after
/// it is read:
///
/// | the request | [`Incoming`] | answer |
/// |---|---|---|
/// | not `GET` over HTTP/1.1, no `Connection: upgrade`, a missing or invalid `Sec-WebSocket-Key` | `Refused` | 400 |
/// | `Sec-WebSocket-Version` other than 13 | `Refused` | 426 with `Sec-WebSocket-Version: 13` |
/// | an origin [`check_origin`](Self::check_origin) refuses | `Refused` | 403 |
/// | valid | `Open` | 101 with `Sec-WebSocket-Accept`, and the subprotocol [`subprotocol`](Self::subprotocol) picked |
///
/// Extensions are never accepted (no `Sec-WebSocket-Extensions` in the answer), so reserved
/// bits stay refused. Other requests are plain HTTP ([`Incoming::Http`]). [`ws::serve`](super::serve)
/// sends every answer; a handler of its own must send the `101` before any frame.
#[derive(Clone)]
pub struct WsUpgrade {
    http: Http1,
    ws: WsCodec,
    mode: Mode,
    origin: OriginCheck,
    pick: SubprotocolPick,
}

impl Default for WsUpgrade {
    fn default() -> Self {
        WsUpgrade::new()
    }
}

impl WsUpgrade {
    /// HTTP with [`Http1::new`]'s limits, frames with [`WsCodec::new`]'s, same-host origins
    /// only, no subprotocol.
    pub fn new() -> WsUpgrade {
        WsUpgrade {
            http: Http1::new(),
            ws: WsCodec::new(),
            mode: Mode::Http,
            origin: Arc::new(handshake::same_host),
            pick: Arc::new(|_: &Request, _: &[&str]| None),
        }
    }

    /// Sets the HTTP codec (its limits on heads and bodies).
    pub fn http(mut self, http: Http1) -> WsUpgrade {
        self.http = http;
        self
    }

    /// Sets the frame codec (its limits on frames and messages).
    pub fn frames(mut self, ws: WsCodec) -> WsUpgrade {
        self.ws = ws;
        self
    }

    /// Sets the origin check (knet's `CheckOrigin`): `true` accepts the handshake, `false`
    /// refuses it with 403.
    ///
    /// The default accepts a request without `Origin` (a client that is not a browser) and
    /// one whose `Origin` names the same host and port as its `Host` header
    /// (`Origin: http://example.com:8080` with `Host: example.com:8080`); it refuses every
    /// other origin, including `null`. This stops a page from another site opening sockets
    /// with the user's cookies (cross-site WebSocket hijacking).
    pub fn check_origin(
        mut self,
        check: impl Fn(&Request) -> bool + Send + Sync + 'static,
    ) -> WsUpgrade {
        self.origin = Arc::new(check);
        self
    }

    /// Sets the subprotocol choice: given the request and the protocols its
    /// `Sec-WebSocket-Protocol` offers, in order, return the one to speak, or `None` for none
    /// (the default). A name that was not offered is not sent.
    pub fn subprotocol(
        mut self,
        pick: impl Fn(&Request, &[&str]) -> Option<String> + Send + Sync + 'static,
    ) -> WsUpgrade {
        self.pick = Arc::new(pick);
        self
    }

    fn read_http<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Incoming>> {
        Ok(match self.http.read(r)? {
            None => None,
            Some(http::Incoming::Request(req)) if handshake::is_upgrade(&req) => {
                Some(match handshake::accept(&req, &self.origin, &self.pick) {
                    Ok(response) => {
                        self.mode = Mode::Ws;
                        Incoming::Open {
                            request: req,
                            response,
                        }
                    }
                    Err(response) => {
                        self.mode = Mode::Done;
                        Incoming::Refused(response)
                    }
                })
            }
            Some(other) => Some(Incoming::Http(other)),
        })
    }
}

impl Codec for WsUpgrade {
    type In = Incoming;
    type Out = Outgoing;

    /// Reads one request, handshake or message; see [`WsUpgrade`].
    ///
    /// # Errors
    ///
    /// What [`Http1`]'s and [`WsCodec`]'s `read` return: I/O errors, and `UnexpectedEof`
    /// inside a request, a frame or a fragmented message.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Incoming>> {
        match self.mode {
            Mode::Http => self.read_http(r),
            Mode::Ws => Ok(self.ws.read(r)?.map(Incoming::Ws)),
            Mode::Done => {
                super::codec::drain(r)?;
                Ok(None)
            }
        }
    }

    /// Writes a response or a frame.
    ///
    /// # Errors
    ///
    /// What [`Http1`]'s and [`WsCodec`]'s `write` return.
    fn write<W: Write>(&self, msg: &Outgoing, w: &mut W) -> io::Result<()> {
        match msg {
            Outgoing::Http(resp) => self.http.write(resp, w),
            Outgoing::Ws(m) => self.ws.write(m, w),
        }
    }

    /// Sets the largest frame payload read or written ([`WsCodec::max_frame`]).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.ws.set_max_frame_length(bytes);
    }

    /// Whether a fragmented WebSocket message is being joined ([`WsCodec`]'s answer once the
    /// handshake is done; before it, requests are read whole).
    fn mid_message(&self) -> bool {
        self.mode == Mode::Ws && self.ws.mid_message()
    }
}
