# Sourced by run.sh, kv.sh and http.sh: the one server a run has at a time, and how it is
# stopped (SIGTERM, up to 5 s for a graceful exit, then SIGKILL), also when the script exits;
# and where servers and load generators run (PIN).
# shellcheck shell=bash

# PIN=1: every server runs on the last CPU alone and the load generator on the others
# (taskset), so that a server's threads never take CPU time from the load generator, nor
# the other way round. Unpinned (the default), they share every CPU as the scheduler sees
# fit: on a 2-core machine a server with many threads then competes with a single-threaded
# load generator, and a single-threaded server does not; pinned, each server is measured on
# one core of its own. SERVER_PIN and CLIENT_PIN are the command prefixes (empty unpinned).
# shellcheck disable=SC2034 # used by the scripts that source this file
SERVER_PIN=()
# shellcheck disable=SC2034
CLIENT_PIN=()
PIN=${PIN:-0}
if [[ $PIN == 1 ]]; then
  cpus=$(nproc)
  if ((cpus < 2)) || ! command -v taskset >/dev/null; then
    echo "PIN=1 needs taskset and at least 2 CPUs" >&2
    exit 1
  fi
  # shellcheck disable=SC2034
  SERVER_PIN=(taskset -c "$((cpus - 1))")
  clients=0
  ((cpus == 2)) || clients=0-$((cpus - 2))
  # shellcheck disable=SC2034
  CLIENT_PIN=(taskset -c "$clients")
fi
pinning() { # one line for env.txt and the tables
  if [[ $PIN == 1 ]]; then
    echo "pinned: servers on CPU $((cpus - 1)), the load generator on CPU $clients"
  else
    echo "not pinned: servers and the load generator share every CPU"
  fi
}

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

# server_command NAME: the command that starts echo server NAME (run.sh, curve.sh) on a free
# loopback port; BIN (the harness's binaries) and THREADNET_ECHO are the sourcing script's.
server_command() {
  case $1 in
    std-echo) echo "$BIN/std-echo --addr 127.0.0.1:0 --stack-kib 64" ;;
    tokio-echo) echo "$BIN/tokio-echo --addr 127.0.0.1:0" ;;
    threadnet) echo "$THREADNET_ECHO --addr 127.0.0.1:0" ;;
  esac
}

# start_server NAME: starts `server_command NAME` and sets
# SERVER_PID and SERVER_ADDR from its `listening on ADDR` line, its output in OUT. A script
# whose servers start otherwise (kv.sh, http.sh) defines its own after sourcing this file.
start_server() {
  local name=$1 stdout="$OUT/$1.stdout"
  : >"$stdout"
  # shellcheck disable=SC2091,SC2046 # runs the command, split into words on purpose
  $(server_command "$name") >"$stdout" 2>>"$OUT/$name.log" &
  SERVER_PID=$!
  wait_listening "$name" "$stdout"
}
