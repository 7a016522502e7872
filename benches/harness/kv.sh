#!/usr/bin/env bash
# Request/response on the Redis protocol, compared on loopback under redis-benchmark:
# threadnet's `kv_server` example against std-resp (a thread per connection, by hand: what
# the model allows), mini-redis (tokio's own example server) and redis-server (if installed;
# skipped with a note if not).
#
#   bash benches/harness/kv.sh                  # about a minute, plus the first build
#   ROUNDS=1 N=20000 bash benches/harness/kv.sh # a quick check, a few seconds
#
# Env: ROUNDS (3) interleaved rounds; N (100000) requests per test at -c 50 and -c 1 (-c 50
# -P 16 runs N*5, so that it lasts about as long); OUT (results folder, default
# benches/harness/results/kv-DATE-TIME).
#
# PIN=1 runs every server on the last CPU and redis-benchmark on the others (server.sh).
#
# Needs redis-benchmark (Debian's redis-tools). Every server is started on 127.0.0.1 for one
# test and stopped after it; the script stops only the processes it started, and bounds every
# step with `timeout`. It writes OUT/results.tsv (one line per test), OUT/table.md (the
# README's table: medians), OUT/kv.svg (the same medians as a bar chart), the servers' logs
# and OUT/env.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
N=${N:-100000}
OUT=${OUT:-$HERE/results/kv-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

command -v redis-benchmark >/dev/null || {
  echo "kv.sh needs redis-benchmark (Debian: apt-get install redis-tools)" >&2
  exit 1
}

echo "== building threadnet's kv_server example and the harness (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet --example kv_server)
timeout 1800 cargo build --release --quiet --locked --manifest-path "$HERE/Cargo.toml" \
  --features peers --bin std-resp --bin mini-redis
KV_SERVER=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/kv_server
STD_RESP=${CARGO_TARGET_DIR:-$HERE/target}/release/std-resp
MINI_REDIS=${CARGO_TARGET_DIR:-$HERE/target}/release/mini-redis

# shellcheck source=server.sh
source "$HERE/server.sh"

SERVERS=(threadnet std-resp mini-redis)
if command -v redis-server >/dev/null; then
  SERVERS+=(redis-server)
else
  echo "note: redis-server is not installed; its column is left out"
fi

# label|redis-benchmark arguments|requests
CASES=(
  "-c 50|-c 50|$N"
  "-c 1|-c 1|$N"
  "-c 50 -P 16|-c 50 -P 16|$((N * 5))"
)

{
  echo "date: $(date -Is)"
  echo "kernel: $(uname -r), cpus: $(nproc), $(rustc --version)"
  echo "threadnet: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  redis-benchmark --version
  command -v redis-server >/dev/null && redis-server --version
  echo "rounds: $ROUNDS, N: $N"
  pinning
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)"
} | tee "$OUT/env.txt"

# ---------------------------------------------------------------- servers
SERVER_PORT=

# A loopback port nothing listens on (redis-server cannot pick one itself).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 30000))
    if [[ -z $(ss -Htln "sport = :$port" 2>/dev/null) ]]; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# start_server NAME: sets SERVER_PID and SERVER_PORT once it accepts connections.
start_server() {
  local name=$1 stdout="$OUT/$1.stdout"
  : >"$stdout"
  case $name in
    threadnet | std-resp | mini-redis)
      local bin=$KV_SERVER
      [[ $name == std-resp ]] && bin=$STD_RESP
      [[ $name == mini-redis ]] && bin=$MINI_REDIS
      "${SERVER_PIN[@]}" "$bin" --addr 127.0.0.1:0 >"$stdout" 2>>"$OUT/$name.log" &
      ;;
    redis-server)
      SERVER_PORT=$(free_port)
      "${SERVER_PIN[@]}" redis-server --bind 127.0.0.1 --port "$SERVER_PORT" --save "" \
        --appendonly no --daemonize no --logfile "" >"$stdout" 2>>"$OUT/$name.log" &
      ;;
  esac
  SERVER_PID=$!
  wait_listening "$name" "$stdout" "Ready to accept connections"
}

# ---------------------------------------------------------------- runs
RESULTS=$OUT/results.tsv
: >"$RESULTS"
run_case() { # run_case LABEL SERVER REQUESTS REDIS-BENCHMARK-ARGS...
  local label=$1 server=$2 n=$3 rc=0
  shift 3
  if ! start_server "$server"; then
    return 0
  fi
  # -q prints "SET: 78125.00 requests per second, p50=..." per test, after \r progress lines.
  timeout 300 "${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$SERVER_PORT" "$@" -n "$n" \
    -t set,get -q 2>>"$OUT/redis-benchmark.log" | tr '\r' '\n' | grep "requests per second" |
    while read -r test rps _; do
      printf '%s\t%s\t%s\t%s\n' "$label" "${test%:}" "$server" "$rps" | tee -a "$RESULTS"
    done || rc=$?
  ((rc == 0)) || echo "$label/$server: redis-benchmark failed ($rc)" >&2
  stop_server
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for entry in "${CASES[@]}"; do
    IFS='|' read -r label args n <<<"$entry"
    read -ra args <<<"$args"
    # Interleaved: every server once per case, the first one rotating from round to round.
    for i in "${!SERVERS[@]}"; do
      server=${SERVERS[$(((i + round - 1) % ${#SERVERS[@]}))]}
      run_case "$label" "$server" "$n" "${args[@]}"
    done
  done
done

# ---------------------------------------------------------------- table
table() { # table SVG-FILE: prints the Markdown table and writes the chart
  awk -F'\t' -f "$HERE/table.awk" -v servers="${SERVERS[*]}" -v ours=threadnet \
    -v vs="std-resp mini-redis redis-server" -v unit=rps -v svg="$1" \
    -v labels="threadnet=threadnet kv_server;std-resp=std-resp (the model's limit);mini-redis=mini-redis (tokio);redis-server=redis-server" \
    -v colors="threadnet=#2b6cb0;std-resp=#a0aec0;mini-redis=#38a169;redis-server=#c05621" \
    "$RESULTS"
}

echo
{
  echo "Requests/s, medians of $ROUNDS interleaved rounds, \`redis-benchmark -t set,get -q\`"
  echo "(-n $N, and $((N * 5)) at -P 16), $(date +%F); $(pinning)."
  echo "Spread: the widest max/min over the rounds among the row's servers."
  echo
  table "$OUT/kv.svg"
} | tee "$OUT/table.md"
echo
echo "results: $OUT"
