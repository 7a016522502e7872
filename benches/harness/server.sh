# Sourced by run.sh and kv.sh: the one server a run has at a time, and how it is stopped
# (SIGTERM, up to 5 s for a graceful exit, then SIGKILL), also when the script exits.
# shellcheck shell=bash

SERVER_PID=
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do # up to 5 s for a graceful exit, then SIGKILL
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop_server EXIT
