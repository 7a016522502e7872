//! The chat room's web side (`--transport ws`): the page at `/` with its script inline, the
//! handler of each browser's WebSocket, and the pair of servers (TCP lines, web) that a
//! signal stops together.

use std::thread;
use std::time::Duration;

use threadnet::http::{Request, Response};
use threadnet::signal::Stoppable;
use threadnet::ws::{Message, WsCodec, WsHandler, WsUpgrade};
use threadnet::{codec::Lines, CloseReason, Connection, ServerHandle};

use super::{Event, Hub, Who};

/// Longest WebSocket message (and frame) taken from a browser, in bytes: the TCP room's
/// longest line (the `Lines` codec's 64 KiB default).
const MAX_MESSAGE: usize = 64 * 1024;

/// The codec of the web port: HTTP for the page, WebSocket frames once upgraded (same-host
/// origins only, the library's default), messages no longer than a TCP line.
pub fn codec() -> WsUpgrade {
    WsUpgrade::new().frames(
        WsCodec::new()
            .max_frame(MAX_MESSAGE)
            .max_message(MAX_MESSAGE),
    )
}

/// The answer to a plain HTTP request: the page at `/`, 404 elsewhere.
pub fn page(req: &Request) -> Response {
    match req.path() {
        "/" | "/index.html" => Response::html(PAGE),
        _ => Response::new(404)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body("not found: the chat is at /\n"),
    }
}

/// One per browser: reports its socket's events to the hub, as `Member` does for a TCP client.
pub struct WebMember {
    pub hub: Hub,
}

impl WsHandler for WebMember {
    fn on_open(&mut self, conn: &Connection<WsUpgrade>, _: &Request) {
        let _ = self.hub.send(Event::Joined {
            who: Who::Web(conn.id()),
            peer: conn.peer_addr(),
        });
    }

    /// A text message is one line or several (each relayed as a line, as if typed one by
    /// one); pings and close frames were answered already, binary messages are ignored.
    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message) {
        if let Message::Text(text) = msg {
            for line in text.split('\n') {
                let _ = self.hub.send(Event::Said {
                    who: Who::Web(conn.id()),
                    peer: conn.peer_addr(),
                    text: line.to_string(),
                });
            }
        }
    }

    fn on_close(&mut self, conn: &Connection<WsUpgrade>, reason: &CloseReason) {
        let _ = self.hub.send(Event::Left {
            who: Who::Web(conn.id()),
            peer: conn.peer_addr(),
            reason: reason.to_string(),
        });
    }
}

/// The TCP room and its web port, stopped by a signal together.
#[derive(Clone)]
pub struct Both {
    pub lines: ServerHandle<Lines>,
    pub web: ServerHandle<WsUpgrade>,
}

impl Stoppable for Both {
    fn stop(&self, deadline: Duration) {
        // In parallel, so that the two get the same deadline.
        thread::scope(|s| {
            s.spawn(|| self.web.stop(deadline));
            self.lines.stop(deadline);
        });
    }

    fn wait(&self) {
        self.lines.wait();
        self.web.wait();
    }

    fn close_all(&self) {
        self.lines.close_all();
        self.web.close_all();
    }

    fn shutdown_all(&self, deadline: Duration) {
        self.lines.shutdown_all(deadline);
        self.web.shutdown_all(deadline);
    }
}

/// The page: no external assets. Its script opens `ws://<the page's host>/ws`, shows every
/// line it receives and sends the typed ones. Lines are shown with `textContent`, never as
/// HTML.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>threadnet chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; display: flex; flex-direction: column;
         height: 100vh; background: #f6f7f9; color: #1d2330; }
  header { padding: 10px 16px; background: #1d2330; color: #fff; display: flex; gap: 12px;
           align-items: baseline; }
  header h1 { font-size: 17px; margin: 0; }
  #state { font-size: 13px; opacity: .8; }
  #log { flex: 1; overflow-y: auto; margin: 0; padding: 12px 16px; list-style: none; }
  #log li { padding: 3px 0; font-family: ui-monospace, monospace; white-space: pre-wrap;
            word-break: break-word; }
  #log li.event { color: #6b7385; }
  #log li.mine { color: #1a5fb4; }
  form { display: flex; gap: 8px; padding: 10px 16px; background: #fff;
         border-top: 1px solid #d8dbe2; }
  #say { flex: 1; font: inherit; padding: 6px 8px; }
  button { font: inherit; padding: 6px 14px; }
</style>
</head>
<body data-state="connecting">
<header><h1>threadnet chat</h1><span id="state">connecting…</span></header>
<ul id="log"></ul>
<form id="form" autocomplete="off">
  <input id="say" maxlength="4096" placeholder="Say something and press Enter" autofocus>
  <button>Send</button>
</form>
<script>
"use strict";
const log = document.getElementById("log");
const say = document.getElementById("say");
const state = document.getElementById("state");
function show(text, kind) {
  const li = document.createElement("li");
  li.textContent = text;
  if (kind) li.className = kind;
  log.appendChild(li);
  log.scrollTop = log.scrollHeight;
}
function setState(s, text) {
  document.body.dataset.state = s;
  state.textContent = text;
}
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const socket = new WebSocket(scheme + location.host + "/ws");
socket.onopen = () => setState("open", "connected to " + location.host);
socket.onmessage = (e) => show(e.data, e.data.startsWith("* ") ? "event" : "");
socket.onclose = (e) => {
  setState("closed", "disconnected");
  show("* disconnected" + (e.reason ? ": " + e.reason : ""), "event");
};
document.getElementById("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const line = say.value;
  if (line === "" || socket.readyState !== WebSocket.OPEN) return;
  socket.send(line);
  show("me: " + line, "mine");
  say.value = "";
});
</script>
</body>
</html>
"#;
