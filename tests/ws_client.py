"""An independent WebSocket client (the `websockets` package from PyPI) for tests/ws_python.rs.

Usage: ws_client.py URI. Prints one line per check; tests/ws_python.rs compares them.
"""

import sys

from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

uri = sys.argv[1]

with connect(uri, subprotocols=["superchat", "chat"], open_timeout=5, close_timeout=5) as ws:
    print("subprotocol", ws.subprotocol)
    ws.send("hello")
    print("text", ws.recv(timeout=5))
    big = bytes(range(256)) * 300  # 76800 bytes: over 65535, so a 64-bit length
    ws.send(big)
    print("binary", ws.recv(timeout=5) == big)
    ws.send(["frag", "mented ", "☃"])  # an iterable is sent as fragments
    print("fragments", ws.recv(timeout=5))
    print("pong", ws.ping(b"hb").wait(5))
print("closed", ws.close_code)

# Over the server's message limit (100 KiB here): the server closes with 1009.
with connect(uri, open_timeout=5, close_timeout=5) as ws:
    ws.send(b"x" * 200_000)
    try:
        ws.recv(timeout=5)
        print("too_big none")
    except ConnectionClosedError as e:
        print("too_big", e.rcvd.code)
