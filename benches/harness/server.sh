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

# wait_listening NAME STDOUT [READY]: once NAME was started in the background (SERVER_PID),
# waits up to 5 s for the first line of STDOUT to be `listening on ADDR` and sets SERVER_ADDR
# and SERVER_PORT from it; a line matching READY (a grep pattern) also means ready, for a
# server that prints no address (SERVER_PORT was chosen by the caller). Stops the server and
# fails if neither comes.
wait_listening() {
  local name=$1 stdout=$2 ready=${3:-} line
  for _ in $(seq 100); do
    line=$(head -n 1 "$stdout")
    if [[ $line == "listening on "* ]]; then
      SERVER_ADDR=${line#listening on }
      SERVER_PORT=${SERVER_ADDR##*:}
      return 0
    fi
    if [[ -n $ready ]] && grep -q "$ready" "$stdout"; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "$name did not start; see $OUT/$name.log" >&2
  stop_server
  return 1
}
