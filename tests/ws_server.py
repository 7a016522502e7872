"""An independent WebSocket server (the `websockets` package from PyPI) for tests/ws_client.rs.

Usage: ws_server.py. Listens on 127.0.0.1, port 0; prints "port N", then one line per event
the test checks. Exits when its standard input closes (the test ends it that way).

Per text message: "fragments" is answered with a fragmented text message, "ping" with a ping
(and "pong <payload>" once the client's pong arrives), "close" with a close frame (4001,
"bye from python"); anything else is echoed, text or binary. The subprotocol "chat" is
picked when offered.
"""

import sys
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


def handler(ws):
    print("open", ws.request.path, ws.subprotocol, flush=True)
    try:
        for msg in ws:
            if msg == "fragments":
                ws.send(["frag", "mented ", "\u2603" * 40000])  # an iterable: one fragment each
            elif msg == "ping":
                waiter = ws.ping(b"py")
                print("pong", waiter.wait(5), flush=True)
                ws.send("pinged")
            elif msg == "close":
                ws.close(4001, "bye from python")
            else:
                ws.send(msg)
    except ConnectionClosed:
        pass  # a close code other than 1000 ends the loop with this
    print("closed", ws.close_code, ws.close_reason, flush=True)


def select(ws, offered):
    return "chat" if "chat" in offered else None


with serve(
    handler,
    "127.0.0.1",
    0,
    select_subprotocol=select,
    max_size=2**22,
) as server:
    print("port", server.socket.getsockname()[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the test closes our stdin
    server.shutdown()
