#!/usr/bin/env bash
# Checks that src/ keeps its layers (DESIGN.md, "Layers"): a module may use only its own layer
# and the layers below it. Doc comments are not read (a doc may link anywhere); code is.
# Exits 1 and lists every upward use it finds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The layer of a module named after `crate::`.
module_layer() {
  case "$1" in
    error | sync | backoff | sys) echo 0 ;;
    timer | codec) echo 1 ;;
    conn | idle | events) echo 2 ;;
    server | client | udp | pull) echo 3 ;;
    http | router | ws) echo 4 ;;
    ops | activation | signal | metrics | testing) echo 5 ;;
    *) echo "" ;; # a re-exported type at the crate root, or not a module
  esac
}

# The layer of a source file.
file_layer() {
  case "$1" in
    src/error.rs | src/sync.rs | src/backoff.rs | src/sys/*) echo 0 ;;
    src/timer/* | src/codec/*) echo 1 ;;
    src/conn/* | src/idle.rs | src/events.rs) echo 2 ;;
    src/server/* | src/client.rs | src/udp.rs | src/pull/*) echo 3 ;;
    src/http/* | src/ws/* | src/router.rs) echo 4 ;;
    src/ops/* | src/testing/*) echo 5 ;;
    src/lib.rs | src/guide.rs) echo "" ;; # the root, and the docs-only guided tour
    *) echo "?" ;;
  esac
}

# Upward edges allowed on purpose, as "file:module".
allowed=(
  "src/codec/mod.rs:http" # `pub use crate::http::Http1`: every codec named from one module
  # A test of the OS layer's SIGPIPE handling, run through a whole server (it named the
  # codec and the event from the crate root before they moved to their modules).
  "src/sys/sigpipe_tests.rs:codec"
  "src/sys/sigpipe_tests.rs:events"
  # Write-through's unit tests write to the testing toolkit's in-memory socket, which records
  # each write's slices, rather than to a second Socket implementation of their own.
  "src/conn/through_tests.rs:testing"
)

status=0
while IFS= read -r file; do
  own=$(file_layer "$file")
  [ -z "$own" ] && continue
  if [ "$own" = "?" ]; then
    echo "layers: $file is in no layer; add it to .ci/layers.sh and DESIGN.md" >&2
    status=1
    continue
  fi
  # Code lines only (no // comments, no doc comments); every `crate::name` on them, plus
  # the names inside `use crate::{a, b::c}` groups.
  mods=$(grep -v '^\s*//' "$file" |
    grep -oE 'crate::(\{[^}]*\}|[a-z_]+)' |
    sed -E 's/^crate:://; s/[{}]//g' | tr ',' '\n' | sed -E 's/^\s+//; s/::.*//' |
    grep -E '^[a-z_]+$' | sort -u || true)
  for m in $mods; do
    theirs=$(module_layer "$m")
    [ -z "$theirs" ] && continue
    if [ "$theirs" -gt "$own" ]; then
      ok=0
      for a in "${allowed[@]}"; do [ "$a" = "$file:$m" ] && ok=1; done
      if [ "$ok" = 0 ]; then
        echo "layers: $file (layer $own) uses crate::$m (layer $theirs)" >&2
        status=1
      fi
    fi
  done
done < <(git ls-files 'src/*.rs' 'src/**/*.rs' | sort -u; git ls-files --others --exclude-standard 'src/*.rs' 'src/**/*.rs')

# The repository stands alone: nothing refers to material outside it.
if git grep -n --untracked -e '\.\./shar[e]d' -e 'shar[e]d/peers' -- . >&2; then
  echo "layers: the lines above refer to files outside the repository" >&2
  status=1
fi

[ "$status" = 0 ] && echo "layers: every module uses only its own layer and those below"
exit "$status"
