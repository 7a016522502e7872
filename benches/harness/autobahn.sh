#!/usr/bin/env bash
# WebSocket conformance with Autobahn|Testsuite, the field's own suite, on loopback: its
# `fuzzingclient` against threadnet's server (examples/autobahn_server.rs, `ws::serve`
# echoing), and its `fuzzingserver` against threadnet's blocking client
# (examples/autobahn_client.rs, `connect_blocking` echoing) once per receive method. Cases 1.*
# to 10.*; 12.* and 13.* are compression (permessage-deflate), which threadnet does not offer.
#
#   bash benches/harness/autobahn.sh                        # ~3 min, plus the first build
#   SIDES=client METHODS="recv request" bash benches/harness/autobahn.sh
#   CASES='"1.*", "6.4.*"' bash benches/harness/autobahn.sh # a quick check
#
# Env: SIDES ("server client"); METHODS ("recv recv-timeout try-recv request", the
# client's --recv values); CASES (the spec's case patterns, JSON strings, default 1.* to
# 10.*); VENV (the suite's virtualenv, default ~/.cache/threadnet-autobahn-venv); PYTHON2 (the
# Python 2.7 that makes it, default python2.7 on PATH or pyenv's 2.7); OUT (results folder,
# default benches/harness/results/autobahn-DATE-TIME).
#
# The suite runs under Python 2.7 only. A missing virtualenv is made and the suite installed
# into it from PyPI, pinned (autobahn-constraints.txt). Not run by CI: it takes minutes and
# needs Python 2. Everything listens on 127.0.0.1; the script stops only the processes it
# started and bounds every step with `timeout`. It writes OUT/table.md (the counts per side
# and method, and every case neither OK nor INFORMATIONAL), the reports (OUT/server/reports,
# OUT/client/reports: index.json and one page per case) and the logs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIDES=${SIDES:-server client}
METHODS=${METHODS:-recv recv-timeout try-recv request}
CASES=${CASES:-'"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"'}
VENV=${VENV:-$HOME/.cache/threadnet-autobahn-venv}
OUT=${OUT:-$HERE/results/autobahn-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The suite's virtualenv, made once.
if [[ ! -x $VENV/bin/wstest ]]; then
  # The first of these that runs and is 2.7 (a pyenv shim may exist and still refuse).
  found=
  for py in ${PYTHON2:-} python2.7 python2 "$HOME"/.pyenv/versions/2.7*/bin/python; do
    if "$py" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
      found=$py
      break
    fi
  done
  if [[ -z $found ]]; then
    echo "autobahn.sh needs Python 2.7 (set PYTHON2, or e.g. pyenv install 2.7.18)" >&2
    exit 1
  fi
  PYTHON2=$found
  echo "== making $VENV with $PYTHON2"
  "$PYTHON2" -m virtualenv --version >/dev/null 2>&1 ||
    timeout 600 "$PYTHON2" -m pip install -q 'virtualenv<20.22'
  timeout 600 "$PYTHON2" -m virtualenv -q "$VENV"
  timeout 1800 "$VENV/bin/pip" install -q -c "$HERE/autobahn-constraints.txt" autobahntestsuite
fi
PY=$VENV/bin/python
WSTEST=$VENV/bin/wstest

echo "== building the autobahn examples (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet \
  --example autobahn_server --example autobahn_client)
EXAMPLES=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples

# shellcheck source=server.sh
source "$HERE/server.sh"
# The fuzzingserver, and the one foreground step (under `timeout`, which passes a SIGTERM on).
FUZZER_PID=
STEP_PID=
stop_pid() { # stop_pid PID
  [[ -n $1 ]] || return 0
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
trap 'stop_pid "$STEP_PID"; stop_server; stop_pid "$FUZZER_PID"' EXIT
# step SECS LOG CMD...: runs CMD bounded by SECS, its output appended to LOG; fails as CMD.
step() {
  local secs=$1 log=$2 rc=0
  shift 2
  timeout "$secs" "$@" >>"$log" 2>&1 &
  STEP_PID=$!
  wait "$STEP_PID" || rc=$?
  STEP_PID=
  return "$rc"
}

{
  echo "date: $(date -Is)"
  echo "kernel: $(uname -r), cpus: $(nproc), $(rustc --version)"
  echo "threadnet: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "suite: $("$VENV/bin/pip" freeze 2>/dev/null | grep -iE '^(autobahn|autobahntestsuite|twisted)==' | tr '\n' ' ')"
  echo "cases: $CASES"
} | tee "$OUT/env.txt"

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [[ " $SIDES " == *" server "* ]]; then
  echo "== server: the fuzzingclient against autobahn_server"
  mkdir -p "$OUT/server"
  "$EXAMPLES/autobahn_server" --addr 127.0.0.1:0 >"$OUT/server/stdout" 2>"$OUT/server.log" &
  SERVER_PID=$!
  wait_listening server "$OUT/server/stdout"
  cat >"$OUT/server/fuzzingclient.json" <<EOF
{
  "outdir": "$OUT/server/reports",
  "servers": [{"agent": "threadnet-server", "url": "ws://$SERVER_ADDR"}],
  "cases": [$CASES],
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
EOF
  step 3600 "$OUT/server/wstest.log" "$WSTEST" -m fuzzingclient -s "$OUT/server/fuzzingclient.json" ||
    echo "the fuzzingclient failed; see $OUT/server/wstest.log" >&2
  stop_server
fi

if [[ " $SIDES " == *" client "* ]]; then
  echo "== client: the fuzzingserver against autobahn_client, receiving with: $METHODS"
  mkdir -p "$OUT/client"
  port=$(free_port)
  cat >"$OUT/client/fuzzingserver.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$OUT/client/reports",
  "cases": [$CASES],
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
EOF
  (cd "$OUT/client" && exec "$WSTEST" -m fuzzingserver -s fuzzingserver.json --webport 0) \
    >"$OUT/client/wstest.log" 2>&1 &
  FUZZER_PID=$!
  for _ in $(seq 100); do # up to 10 s to listen
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.1
  done
  for how in $METHODS; do
    echo "-- --recv $how"
    step 3600 "$OUT/client.log" "$EXAMPLES/autobahn_client" --url "ws://127.0.0.1:$port" \
      --recv "$how" || echo "autobahn_client --recv $how failed; see $OUT/client.log" >&2
  done
  stop_pid "$FUZZER_PID"
  FUZZER_PID=
fi

# The table, from each side's index.json: every case's `behavior` (OK, NON-STRICT,
# INFORMATIONAL, FAILED, UNIMPLEMENTED) and `behaviorClose` (UNCLEAN counted apart).
"$PY" - "$OUT" <<'EOF' | tee "$OUT/table.md"
import json, os, sys
out = sys.argv[1]
cols = ["OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNCLEAN"]
rows, notes = [], []
for side, how in (("server", "fuzzingclient"), ("client", "fuzzingserver")):
    path = os.path.join(out, side, "reports", "index.json")
    if not os.path.exists(path):
        continue
    for agent, cases in sorted(json.load(open(path)).items()):
        count = dict((c, 0) for c in cols + ["other"])
        for case_id, r in cases.items():
            b = r["behavior"]
            count[b if b in count else "other"] += 1
            if r["behaviorClose"] == "UNCLEAN":
                count["UNCLEAN"] += 1
            if b not in ("OK", "INFORMATIONAL") or r["behaviorClose"] not in ("OK", "INFORMATIONAL"):
                notes.append((agent, case_id, b, r["behaviorClose"]))
        rows.append([side, how, agent, len(cases)] + [count[c] for c in cols + ["other"]])
print("| side | driven by | agent | cases | " + " | ".join(cols) + " | other |")
print("|---|---|---|---|" + "---|" * (len(cols) + 1))
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
key = lambda n: (n[0], [int(x) for x in n[1].split(".")])
if notes:
    print("")
    print("Not OK (agent, case, behavior, behaviorClose):")
    for n in sorted(notes, key=key):
        print("- %s %s: %s, close %s" % n)
EOF
echo
echo "results: $OUT"
