"""An independent WebSocket client (the `websockets` package from PyPI) for the heartbeat test
in tests/ws.rs: it answers the server's pings on its own (websockets does, in its background
thread) and otherwise stays silent.

Usage: ws_cases.py heartbeat URI SECONDS. Stays connected and silent for SECONDS, then sends
"alive", prints the answer, closes and prints the close code.
"""

import sys
import time

from websockets.sync.client import connect

mode, uri, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
assert mode == "heartbeat", mode

with connect(uri, open_timeout=5, close_timeout=5) as ws:
    time.sleep(seconds)  # the server's pings are answered meanwhile
    ws.send("alive")
    print("echo", ws.recv(timeout=5))
print("closed", ws.close_code)
