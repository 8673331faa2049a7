#!/bin/sh
# A cache that holds the whole guest takes every page of iteration 0.
#
#   whole      a live XBZRLE save of a guest writing uniformly at random
#              (random:20000:0.1) with --cache-size the guest's size, piped
#              into restore, for --threads 1 and 2: restore exits 0 (its
#              DIGEST check passed) and the target equals the source. The
#              stats say every-page, with no peek, the cache took nearly
#              every page iteration 0 sent whole, and after iteration 0 the
#              re-sent pages went mostly as deltas (hits outnumber misses).
#   smaller    the same guest with a cache of a quarter of it: no every-page,
#              the dirty log was peeked at (the guessed prediction), and the
#              restore is byte-exact too.
#
# Env: XCC_BIN; E2E_SEED (the guest's seed; printed).
set -u
e2e_tmp=fpc
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_e2e.sh"
. "$here/lib_progress.sh"
tag="fpc$$"
seed=$(rand 100000 guest-seed)

digest() { "$X" sim digest "$1" 2>/dev/null; }

src="${tag}s"
guests="$guests $src"
if ! "$X" sim start "$src" --mem 32M --workload random:20000:0.1 \
        --seed "$seed" >/dev/null; then
    bad "sim start"
    seed_note
    exit 1
fi
wait_ticks "$src" 1 || bad "the guest made no progress"

# run NAME CACHE THREADS: save | restore into ${tag}NAME; stats in NAME.json.
run() {
    tgt="${tag}$1"
    guests="$guests $tgt"
    if ! "$X" save -q --live --xbzrle --cache-size "$2" --threads "$3" \
            --stats-json "$tmp/$1.json" "sim:$src" - 2>"$tmp/save.err" |
         "$X" restore -q - "sim:$tgt" 2>"$tmp/restore.err"; then
        bad "$1: save | restore: $(cat "$tmp/save.err" "$tmp/restore.err")"
    elif [ "$(digest "$src")" = "$(digest "$tgt")" ]; then
        ok "$1: --cache-size $2 --threads $3: restored, target equals source"
    else
        bad "$1: target $(digest "$tgt"), source $(digest "$src")"
    fi
    "$X" sim stop "$tgt" >/dev/null 2>&1
    "$X" sim unpause "$src" >/dev/null
}

for n in 1 2; do
    run "whole$n" 32M "$n"
    if "$PY" - "$tmp/whole$n.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
hp = d["hot-prediction"]
its = d["iterations"]
assert hp["every-page"] is True, hp
assert hp["peeks"] == 0 and hp["deferred"] == 0, hp
sent_whole = its[0]["normal"]
assert sent_whole > 0, its[0]
assert hp["cached"] >= 0.9 * sent_whole, (hp, sent_whole)
xb = sum(i["xbzrle"] for i in its[1:])
miss = sum(i["cache-miss"] for i in its[1:])
assert xb > 0 and xb > miss, (xb, miss)
print("    iteration 0: %d pages whole, %d cached; after it: %d deltas, %d misses"
      % (sent_whole, hp["cached"], xb, miss))
EOF
    then ok "whole$n: every page of iteration 0 cached, no peek; deltas outnumber misses after it"
    else bad "whole$n: stats JSON"
    fi
done

run smaller 8M 1
if "$PY" - "$tmp/smaller.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
hp = d["hot-prediction"]
assert hp["every-page"] is False, hp
assert hp["peeks"] > 0, hp
EOF
then ok "smaller: a quarter-size cache guesses (peeks), no every-page"
else bad "smaller: stats JSON"
fi

seed_note
echo "e2e_first_pass_cache: $checks checks, $failures failed"
[ "$failures" = 0 ]
