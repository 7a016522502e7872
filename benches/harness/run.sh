#!/usr/bin/env bash
# Echo servers compared on loopback: threadnet's `echo_service` example against std-echo (a
# thread per connection, by hand) and tokio-echo (tokio + LengthDelimitedCodec).
#
#   bash benches/harness/run.sh                 # about 3 minutes, plus the first build
#   ROUNDS=1 SECS=2 bash benches/harness/run.sh # a quick check, about 1 minute
#   IDLE=1 bash benches/harness/run.sh          # also what 5000 idle connections cost
#
# Env: ROUNDS (3) interleaved rounds; SECS (3) measured seconds per run; IDLE (0) adds the
# idle case; IDLE_CONNS (5000); IDLE_TOUCH (0; 1 = one round trip per connection first);
# OUT (results folder, default benches/harness/results/DATE-TIME).
#
# Every server is started on 127.0.0.1 with a free port for one case and stopped after
# it; the script stops only the processes it started. It writes OUT/results.jsonl (one line
# per run), OUT/table.md (the README's table: medians), the servers' logs and OUT/env.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
IDLE=${IDLE:-0}
IDLE_CONNS=${IDLE_CONNS:-5000}
IDLE_TOUCH=${IDLE_TOUCH:-0}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "== building threadnet's echo_service example and the harness (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet --example echo_service)
timeout 1800 cargo build --release --quiet --locked --manifest-path "$HERE/Cargo.toml"
THREADNET_ECHO=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/echo_service
BIN=${CARGO_TARGET_DIR:-$HERE/target}/release

SERVERS=(std-echo tokio-echo threadnet)

CASES=(
  "pingpong 4 KiB, 1 connection|pingpong --conns 1 --size 4096"
  "pingpong 4 KiB, 16 connections|pingpong --conns 16 --size 4096"
  "pingpong 4 KiB, 100 connections|pingpong --conns 100 --size 4096"
  "pipelined 4 KiB, depth 16|pipeline --conns 1 --size 4096 --depth 16"
)
if [[ $IDLE == 1 ]]; then
  CASES+=("idle, $IDLE_CONNS connections|idle --conns $IDLE_CONNS --hold-secs 2 --touch $IDLE_TOUCH")
  # Each idle connection is one descriptor in loadgen and one in the server.
  if (($(ulimit -n) < IDLE_CONNS + 1000)); then
    ulimit -n "$(ulimit -Hn)" || true
  fi
fi

{
  echo "date: $(date -Is)"
  echo "kernel: $(uname -r), cpus: $(nproc), $(rustc --version)"
  echo "threadnet: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "rounds: $ROUNDS, secs: $SECS, idle: $IDLE ($IDLE_CONNS connections, touch $IDLE_TOUCH)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)"
} | tee "$OUT/env.txt"

# ---------------------------------------------------------------- servers
SERVER_ADDR=
# shellcheck source=server.sh
source "$HERE/server.sh"

# start_server NAME and server_command NAME: the echo servers, in server.sh.

# ---------------------------------------------------------------- runs
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
run_case() { # run_case CASE-NAME SERVER LOADGEN-ARGS...
  local case=$1 server=$2 line rc=0
  shift 2
  if ! start_server "$server"; then
    echo "{\"tag\":\"$case/$server\",\"error\":\"server did not start\"}" | tee -a "$RESULTS"
    return 0
  fi
  line=$(timeout $((SECS + 90)) "$BIN/loadgen" "$@" --secs "$SECS" --addr "$SERVER_ADDR" \
    --pid "$SERVER_PID" --tag "$case/$server" 2>>"$OUT/loadgen.log" | tail -n 1) || rc=$?
  [[ $line == "{"* ]] || line="{\"tag\":\"$case/$server\",\"error\":\"loadgen exit $rc, no result\"}"
  echo "$line" | tee -a "$RESULTS"
  stop_server
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for entry in "${CASES[@]}"; do
    case=${entry%%|*}
    read -ra args <<<"${entry#*|}"
    # Interleaved: every server once per case, the first one rotating from round to round.
    for i in "${!SERVERS[@]}"; do
      server=${SERVERS[$(((i + round - 1) % ${#SERVERS[@]}))]}
      run_case "$case" "$server" "${args[@]}"
    done
  done
done

echo
timeout 60 "$BIN/report" "$RESULTS" | tee "$OUT/table.md"
echo
echo "results: $OUT"
