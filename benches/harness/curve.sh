#!/usr/bin/env bash
# The cost curve: what each connection costs a server, and how fast it answers a few while
# the rest sit idle, at 1 000, 5 000 and 10 000 connections. threadnet's `echo_service`
# example against std-echo (a thread per connection by hand, 64 KiB stacks) and tokio-echo.
#
#   bash benches/harness/curve.sh             # about 4 minutes, plus the first build
#   ROUNDS=1 bash benches/harness/curve.sh    # a quick check, about 1.5 minutes
#
# Env: ROUNDS (3) interleaved rounds; CONNS ("1000 5000 10000") the connection counts;
# ACTIVE (100) connections driven ping-pong while the others idle; SECS (3) measured seconds
# of that; SIZE (4096) payload bytes of a frame; OUT (results folder, default
# benches/harness/results/curve-DATE-TIME).
#
# Each run is one `loadgen curve`: it opens CONNS connections, each making one round trip (the
# time to open them all is `connect`), waits until the server holds them all, reads the
# server's footprint, then drives ACTIVE of them ping-pong for SECS seconds while the rest
# stay open and silent. Every server is started on 127.0.0.1 with a free port for one run
# and stopped after it; the script stops only the processes it started and bounds every step
# with `timeout`. It writes OUT/results.jsonl (loadgen's lines), OUT/results.tsv (one line
# per run and figure), OUT/table.md (medians, and threadnet's ratios to the other two),
# OUT/curve.svg (the medians as curves), the servers' logs and OUT/env.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-1000 5000 10000}
ACTIVE=${ACTIVE:-100}
SECS=${SECS:-3}
SIZE=${SIZE:-4096}
OUT=${OUT:-$HERE/results/curve-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
read -ra CONNS <<<"$CONNS"

# Each connection is one descriptor in loadgen and one in the server: raise the soft limit
# as far as the hard one allows, and say so if that is not enough for the largest count.
most=0
for n in "${CONNS[@]}"; do ((n > most)) && most=$n; done
if (($(ulimit -n) < most + 200)); then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if (($(ulimit -n) < most + 200)); then
  echo "note: ulimit -n is $(ulimit -n), below the $((most + 200)) descriptors $most connections need" >&2
fi

echo "== building threadnet's echo_service example and the harness (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet --example echo_service)
timeout 1800 cargo build --release --quiet --locked --manifest-path "$HERE/Cargo.toml" \
  --bin loadgen --bin std-echo --bin tokio-echo
THREADNET_ECHO=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/echo_service
BIN=${CARGO_TARGET_DIR:-$HERE/target}/release

SERVERS=(threadnet std-echo tokio-echo)

{
  echo "date: $(date -Is)"
  echo "kernel: $(uname -r), cpus: $(nproc), $(rustc --version)"
  echo "threadnet: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "rounds: $ROUNDS, connections: ${CONNS[*]}, active: $ACTIVE, secs: $SECS, size: $SIZE"
  echo "ulimit -n: $(ulimit -n); pid_max: $(cat /proc/sys/kernel/pid_max);" \
    "threads-max: $(cat /proc/sys/kernel/threads-max);" \
    "max_map_count: $(cat /proc/sys/vm/max_map_count)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)"
} | tee "$OUT/env.txt"

# ---------------------------------------------------------------- servers
SERVER_ADDR=
# shellcheck source=server.sh
source "$HERE/server.sh"

# start_server NAME and server_command NAME: the echo servers, in server.sh.

# ---------------------------------------------------------------- runs
JSONL=$OUT/results.jsonl
RESULTS=$OUT/results.tsv
: >"$JSONL"
: >"$RESULTS"
# The figures of a run, as `measure:loadgen's key`.
FIGURES=(
  "rss:rss_kib_per_conn"
  "kernel:kernel_kib_per_conn"
  "kstack:kernel_stack_kib_per_conn"
  "threads:threads_per_conn"
  "connect:connect_secs"
  "p50:p50_us"
  "p99:p99_us"
)
field() { # field LINE KEY: a number of a flat JSON line, empty if absent or null
  sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.]*\).*/\1/p" <<<"$1"
}

run_case() { # run_case CONNS SERVER
  local conns=$1 server=$2 line rc=0 entry
  if ! start_server "$server"; then
    echo "{\"tag\":\"$conns/$server\",\"error\":\"server did not start\"}" | tee -a "$JSONL"
    return 0
  fi
  line=$(timeout $((SECS + conns / 100 + 120)) "$BIN/loadgen" curve --conns "$conns" \
    --active "$ACTIVE" --secs "$SECS" --size "$SIZE" --addr "$SERVER_ADDR" \
    --pid "$SERVER_PID" --tag "$conns/$server" 2>>"$OUT/loadgen.log" | tail -n 1) || rc=$?
  [[ $line == "{"* ]] || line="{\"tag\":\"$conns/$server\",\"error\":\"loadgen exit $rc, no result\"}"
  echo "$line" | tee -a "$JSONL"
  stop_server
  # A run that failed (an error, or no echo in the window) is left out.
  if ((rc != 0)) || [[ $(field "$line" errors) != 0 ]]; then
    echo "$conns/$server: left out of the table (see results.jsonl)" >&2
    return 0
  fi
  for entry in "${FIGURES[@]}"; do
    printf '%s\t%s\t%s\t%s\n' "$conns" "${entry%%:*}" "$server" \
      "$(field "$line" "${entry#*:}")" >>"$RESULTS"
  done
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for conns in "${CONNS[@]}"; do
    # Interleaved: every server once per count, the first one rotating from round to round.
    for i in "${!SERVERS[@]}"; do
      server=${SERVERS[$(((i + round - 1) % ${#SERVERS[@]}))]}
      run_case "$conns" "$server"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/env.txt"

# ---------------------------------------------------------------- table
echo
{
  echo "Medians of $ROUNDS interleaved rounds, $(date +%F): \`loadgen curve\`, $ACTIVE of the"
  echo "connections driven ping-pong with $SIZE-byte frames for $SECS s while the rest idle."
  echo "Spread: the widest max/min over the rounds among the row's servers."
  echo
  awk -F'\t' -f "$HERE/curve.awk" -v servers="${SERVERS[*]}" -v ours=threadnet \
    -v vs="std-echo tokio-echo" -v conns="${CONNS[*]}" -v active="$ACTIVE" \
    -v labels="threadnet=threadnet echo_service;std-echo=std-echo (64 KiB stacks);tokio-echo=tokio-echo" \
    -v colors="threadnet=#2b6cb0;std-echo=#a0aec0;tokio-echo=#38a169" \
    -v svg="$OUT/curve.svg" "$RESULTS"
} | tee "$OUT/table.md"
echo
echo "results: $OUT"
