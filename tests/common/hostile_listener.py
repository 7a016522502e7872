"""Starts a program under systemd's socket activation protocol with a listening socket that
carries every option a careless or hostile parent could leave on it.

    python3 hostile_listener.py PROGRAM [ARGS...]

The listener is bound to 127.0.0.1 on a free port, with a 20 ms SO_RCVTIMEO and SO_SNDTIMEO,
O_NONBLOCK and SO_LINGER on with a zero timeout. It becomes fd 3; LISTEN_FDS=1 and
LISTEN_PID (this process's pid, which exec keeps) are set, and PROGRAM replaces this process.
A server must serve normally on it: accepted sockets inherit some of these options.
"""
import os
import socket
import struct
import sys

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
twenty_ms = struct.pack("ll", 0, 20_000)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, twenty_ms)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, twenty_ms)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
listener.bind(("127.0.0.1", 0))
listener.listen(128)
listener.setblocking(False)

fd = listener.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
env = dict(os.environ)
env.pop("LISTEN_FDNAMES", None)
env["LISTEN_FDS"] = "1"
env["LISTEN_PID"] = str(os.getpid())
os.execve(sys.argv[1], sys.argv[1:], env)
