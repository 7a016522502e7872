#!/usr/bin/env bash
# Request/response on the Redis protocol, compared on loopback under redis-benchmark:
# threadnet's `kv_server` example against std-resp (a thread per connection, by hand: what
# the model allows) and redis-server (if installed; skipped with a note if not).
#
#   bash benches/harness/kv.sh                  # about a minute, plus the first build
#   ROUNDS=1 N=20000 bash benches/harness/kv.sh # a quick check, a few seconds
#
# Env: ROUNDS (3) interleaved rounds; N (100000) requests per test at -c 50 and -c 1 (-c 50
# -P 16 runs N*5, so that it lasts about as long); OUT (results folder, default
# benches/harness/results/kv-DATE-TIME).
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
timeout 1800 cargo build --release --quiet --locked --manifest-path "$HERE/Cargo.toml" --bin std-resp
KV_SERVER=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/kv_server
STD_RESP=${CARGO_TARGET_DIR:-$HERE/target}/release/std-resp

SERVERS=(threadnet std-resp)
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
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)"
} | tee "$OUT/env.txt"

# ---------------------------------------------------------------- servers
SERVER_PORT=
# shellcheck source=server.sh
source "$HERE/server.sh"

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
  local name=$1 stdout="$OUT/$1.stdout" line
  : >"$stdout"
  case $name in
    threadnet) "$KV_SERVER" --addr 127.0.0.1:0 >"$stdout" 2>>"$OUT/$name.log" & ;;
    std-resp) "$STD_RESP" --addr 127.0.0.1:0 >"$stdout" 2>>"$OUT/$name.log" & ;;
    redis-server)
      SERVER_PORT=$(free_port)
      redis-server --bind 127.0.0.1 --port "$SERVER_PORT" --save "" --appendonly no \
        --daemonize no --logfile "" >"$stdout" 2>>"$OUT/$name.log" &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do # up to 5 s
    line=$(head -n 1 "$stdout")
    if [[ $line == "listening on "* ]]; then
      SERVER_PORT=${line##*:}
      return 0
    fi
    if [[ $name == redis-server ]] && grep -q "Ready to accept connections" "$stdout"; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "$name did not start; see $OUT/$name.log" >&2
  stop_server
  return 1
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
  timeout 300 redis-benchmark -h 127.0.0.1 -p "$SERVER_PORT" "$@" -n "$n" -t set,get -q \
    2>>"$OUT/redis-benchmark.log" | tr '\r' '\n' | grep "requests per second" |
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
# Medians of the rounds per load, test and server, in requests/s, and threadnet's ratios;
# "spread" is the widest max/min over the rounds among the row's servers (1.00× = steady).
table() { # table SVG-FILE: prints the Markdown table and writes the chart
  awk -F'\t' -v servers="${SERVERS[*]}" -v svg="$1" '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) {
        t = v[j]; v[j] = v[j-1]; v[j-1] = t
      }
      spread = v[1] > 0 ? v[n] / v[1] : 0
      return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
    }
    function k(rps,   x) {
      if (rps == "") return "–"
      x = rps / 1000
      if (x >= 1000) return sprintf("%d %03d k", int(x / 1000), int(x) % 1000)
      return x >= 100 ? sprintf("%d k", x + 0.5) : sprintf("%.1f k", x)
    }
    function ratio(a, b) { return (a == "" || b == "") ? "–" : sprintf("%.2f×", a / b) }
    {
      key = $1 "|" $2
      if (!(key in seen)) { seen[key] = 1; order[++rows] = key }
      runs[key "|" $3] = runs[key "|" $3] " " $4
    }
    END {
      ns = split(servers, s, " ")
      name["threadnet"] = "threadnet kv_server"
      name["std-resp"] = "std-resp (the model'"'"'s limit)"
      name["redis-server"] = "redis-server"
      head = "| load | test |"; rule = "|---|---|"
      for (i = 1; i <= ns; i++) { head = head " " name[s[i]] " |"; rule = rule "---|" }
      print head " threadnet / std-resp | threadnet / redis | spread |"
      print rule "---|---|---|"
      # The chart: per row, one bar per server, scaled to the fastest in the row (ratios at a glance).
      color["threadnet"] = "#2b6cb0"; color["std-resp"] = "#a0aec0"; color["redis-server"] = "#c05621"
      group = ns * 16 + 12; height = 30 + rows * group
      printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", height > svg
      print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>" > svg
      for (i = 1; i <= ns; i++) {
        printf "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"16\">%s</text>\n", 10 + (i - 1) * 230, color[s[i]], 26 + (i - 1) * 230, name[s[i]] > svg
      }
      for (r = 1; r <= rows; r++) {
        split(order[r], lt, "|")
        line = "| `" lt[1] "` | " lt[2] " |"
        delete m
        widest = 0
        for (i = 1; i <= ns; i++) {
          m[s[i]] = ""
          if ((order[r] "|" s[i]) in runs) {
            m[s[i]] = median(runs[order[r] "|" s[i]])
            if (spread > widest) widest = spread
          }
          line = line " " k(m[s[i]]) " |"
        }
        line = line " " ratio(m["threadnet"], m["std-resp"]) " | " ratio(m["threadnet"], m["redis-server"])
        print line " | " sprintf("%.2f×", widest) " |"
        top = 30 + (r - 1) * group; most = 0
        for (i = 1; i <= ns; i++) if (m[s[i]] + 0 > most) most = m[s[i]] + 0
        printf "<text x=\"10\" y=\"%d\">%s %s</text>\n", top + group / 2, lt[1], lt[2] > svg
        for (i = 1; i <= ns; i++) {
          if (m[s[i]] == "" || most == 0) continue
          y = top + (i - 1) * 16
          printf "<rect x=\"130\" y=\"%d\" width=\"%.1f\" height=\"13\" fill=\"%s\"/>", y, 480 * m[s[i]] / most, color[s[i]] > svg
          printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", 135 + 480 * m[s[i]] / most, y + 11, k(m[s[i]]) > svg
        }
      }
      print "</svg>" > svg
    }' "$RESULTS"
}

echo
{
  echo "Requests/s, medians of $ROUNDS interleaved rounds, \`redis-benchmark -t set,get -q\`"
  echo "(-n $N, and $((N * 5)) at -P 16), $(date +%F). Spread: the widest max/min over the"
  echo "rounds among the row's servers."
  echo
  table "$OUT/kv.svg"
} | tee "$OUT/table.md"
echo
echo "results: $OUT"
