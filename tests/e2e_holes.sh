#!/bin/sh
# A guest with holes: a live XBZRLE save maps every chunk exactly once (pages
# without data are never looked up, so a hole's chunk is not mapped again
# each pass or each digest refresh), the receiver's DIGEST check passes, and
# source and target hold the same memory, chunk by chunk.
set -u
X=${XCC_BIN:?XCC_BIN must name the xc-colo binary}
PY=${PYTHON:-python3}
. "$(dirname "$0")/lib_progress.sh"
name="holes$$"
tmp=$(mktemp -d /tmp/xc-colo-holes.XXXXXX) || exit 1
fail=0
cleanup() {
    "$X" sim stop "$name" >/dev/null 2>&1
    "$X" sim stop "$name-t" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
bad() { echo "FAIL $*"; fail=1; }

# 64 MiB = 16 chunks of 1024 pfns; holes in chunks 0 and 4.
"$X" sim start "$name" --mem 64M --workload hotpages --holes 100-199,5000-5100 \
    >/dev/null || { echo "FAIL sim start"; exit 1; }
wait_ticks "$name" 5 || bad "the guest made no progress"
if ! "$X" save -q --live --xbzrle --stats-json "$tmp/s.json" "sim:$name" \
        "$tmp/img"; then
    bad "live save of a guest with holes"
fi
calls=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["map-cache"]; print(m["map-calls"], m["chunks-mapped"])' "$tmp/s.json")
if [ "$calls" = "16 16" ]; then
    echo "ok   16 chunks, each mapped once (map calls, chunks mapped: $calls)"
else
    bad "expected each of the 16 chunks mapped once, got map calls/chunks: $calls"
fi
if "$X" restore -q "$tmp/img" "sim:$name-t" 2>"$tmp/err"; then
    echo "ok   restore, DIGEST checked"
else
    bad "restore: $(cat "$tmp/err")"
fi
"$X" digest --chunks "sim:$name" >"$tmp/src"
"$X" digest --chunks "sim:$name-t" >"$tmp/dst"
if cmp -s "$tmp/src" "$tmp/dst"; then
    echo "ok   source and target digests equal, chunk by chunk"
else
    bad "digests differ: $(diff "$tmp/src" "$tmp/dst" | head -n 4)"
fi
# `xc-colo digest` prints the DIGEST record's whole digest (one definition).
sent=$("$X" inspect --json "$tmp/img" | grep -o '"digest":"[0-9a-f]*"' |
       tail -n 1 | cut -d'"' -f4)
if [ -n "$sent" ] && [ "$sent" = "$(head -n 1 "$tmp/src")" ]; then
    echo "ok   'xc-colo digest' of the source is the stream's DIGEST ($sent)"
else
    bad "DIGEST record '$sent', xc-colo digest '$(head -n 1 "$tmp/src")'"
fi
[ $fail = 0 ] && echo "e2e_holes: ok"
exit $fail
