#!/usr/bin/env bash
# HTTP/1.1 request/response compared on loopback under wrk: threadnet's `http_hello` example
# (`GET /json`) against std-http (a thread per connection, by hand: what the model allows)
# and hyper-http (hyper 1.x on tokio: what a Rust user would pick instead).
#
#   bash benches/harness/http.sh                   # about 2 minutes, plus the first build
#   ROUNDS=1 SECS=2 bash benches/harness/http.sh   # a quick check, ~15 s
#
# Env: ROUNDS (3) interleaved rounds; SECS (5) seconds per wrk run; CONNS ("1 50") the
# connection counts; OUT (results folder, default benches/harness/results/http-DATE-TIME).
#
# PIN=1 runs every server on the last CPU and wrk on the others (server.sh).
#
# Needs wrk (Debian's wrk). Every server is started on 127.0.0.1 for one run and stopped
# after it; the script stops only the processes it started and bounds every step with
# `timeout`. It writes OUT/results.tsv (one line per run and figure), OUT/table.md (medians:
# requests/s, then p99 latency), OUT/http.svg (requests/s as bars), the servers' logs and
# OUT/env.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-1 50}
OUT=${OUT:-$HERE/results/http-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

command -v wrk >/dev/null || {
  echo "http.sh needs wrk (Debian: apt-get install wrk)" >&2
  exit 1
}

echo "== building threadnet's http_hello example and the harness (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet --example http_hello)
timeout 1800 cargo build --release --quiet --locked --manifest-path "$HERE/Cargo.toml" \
  --features peers --bin std-http --bin hyper-http
HTTP_HELLO=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/http_hello
BIN=${CARGO_TARGET_DIR:-$HERE/target}/release

# shellcheck source=server.sh
source "$HERE/server.sh"

SERVERS=(threadnet std-http hyper-http)

{
  echo "date: $(date -Is)"
  echo "kernel: $(uname -r), cpus: $(nproc), $(rustc --version)"
  echo "threadnet: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  wrk --version 2>&1 | head -n 1 || true
  echo "rounds: $ROUNDS, secs: $SECS, conns: $CONNS"
  pinning
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)"
} | tee "$OUT/env.txt"

# start_server NAME: sets SERVER_PID and SERVER_PORT once it prints `listening on ADDR`.
start_server() {
  local name=$1 stdout="$OUT/$1.stdout"
  : >"$stdout"
  case $name in
    threadnet)
      "${SERVER_PIN[@]}" "$HTTP_HELLO" --addr 127.0.0.1:0 >"$stdout" 2>>"$OUT/$name.log" &
      ;;
    *) "${SERVER_PIN[@]}" "$BIN/$name" --addr 127.0.0.1:0 >"$stdout" 2>>"$OUT/$name.log" & ;;
  esac
  SERVER_PID=$!
  wait_listening "$name" "$stdout"
}

# wrk's latency in ms ("850.00us", "2.61ms", "1.02s").
to_ms() {
  awk -v t="$1" 'BEGIN {
    if (t ~ /us$/) printf "%.4f", substr(t, 1, length(t) - 2) / 1000
    else if (t ~ /ms$/) printf "%.4f", substr(t, 1, length(t) - 2)
    else if (t ~ /s$/) printf "%.4f", substr(t, 1, length(t) - 1) * 1000
  }'
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
run_case() { # run_case CONNS SERVER
  local conns=$1 server=$2 report rps p99
  start_server "$server" || return 0
  report=$OUT/wrk-$server-c$conns-$(date +%s%N).txt
  if timeout $((SECS + 30)) "${CLIENT_PIN[@]}" wrk -t1 -c "$conns" -d "${SECS}s" --latency \
    "http://127.0.0.1:$SERVER_PORT/json" >"$report" 2>&1; then
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$report")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$report")")
    if grep -qE "Non-2xx|Socket errors" "$report"; then
      echo "c$conns/$server: wrk saw errors, not counted:" >&2
      grep -E "Non-2xx|Socket errors" "$report" >&2
    elif [[ -n $rps && -n $p99 ]]; then
      printf '%s\t%s\t%s\t%s\n' "-c $conns" "req/s" "$server" "$rps" | tee -a "$RESULTS"
      printf '%s\t%s\t%s\t%s\n' "-c $conns" "p99" "$server" "$p99" >>"$RESULTS"
    fi
  else
    echo "c$conns/$server: wrk failed; see $report" >&2
  fi
  stop_server
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for conns in $CONNS; do
    # Interleaved: every server once per load, the first one rotating from round to round.
    for i in "${!SERVERS[@]}"; do
      run_case "$conns" "${SERVERS[$(((i + round - 1) % ${#SERVERS[@]}))]}"
    done
  done
done

table() { # table TEST UNIT SVG-FILE
  local test=$1 unit=$2 svg=$3
  awk -F'\t' -v test="$test" '$2 == test' "$RESULTS" |
    awk -F'\t' -f "$HERE/table.awk" -v servers="${SERVERS[*]}" -v ours=threadnet \
      -v vs="std-http hyper-http" -v unit="$unit" -v svg="$svg" \
      -v labels="threadnet=threadnet http_hello;std-http=std-http (the model's limit);hyper-http=hyper 1.x (tokio)" \
      -v colors="threadnet=#2b6cb0;std-http=#a0aec0;hyper-http=#c05621"
}

echo
{
  echo "\`wrk -t1 -d${SECS}s --latency\` on \`GET /json\`, medians of $ROUNDS interleaved rounds, $(date +%F),"
  echo "$(pinning)."
  echo "Spread: the widest max/min over the rounds among the row's servers."
  echo
  echo "Requests/s:"
  echo
  table req/s rps "$OUT/http.svg"
  echo
  echo "p99 latency (lower is better, so a ratio under 1.00× is threadnet ahead):"
  echo
  table p99 ms ""
} | tee "$OUT/table.md"
echo
echo "results: $OUT"
