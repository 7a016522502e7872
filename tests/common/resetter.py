"""Connection resets in bulk, which std cannot make (TcpStream::set_linger is unstable).

    python3 resetter.py HOST PORT COUNT [HEX_PAYLOAD]

Opens COUNT connections one after another, each with SO_LINGER on and a zero timeout, so
that closing it sends a RST instead of a FIN. Even-numbered ones are reset right after the
connect; odd-numbered ones first send HEX_PAYLOAD (a frame cut short, say), then are reset.
Prints `connected N failed M` and exits 0.
"""
import socket
import struct
import sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = bytes.fromhex(sys.argv[4]) if len(sys.argv) > 4 else b""
linger_zero = struct.pack("ii", 1, 0)
connected = failed = 0
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        if i % 2 == 1 and payload:
            s.sendall(payload)
        connected += 1
    except OSError:
        failed += 1
    finally:
        s.close()
print(f"connected {connected} failed {failed}", flush=True)
