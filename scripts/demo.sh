#!/bin/sh
# make demo: xc-colo's main job, end to end.
#
# Starts a 1 GiB sim guest running ledger+hotpages, migrates it live with
# XBZRLE over loopback TCP (restore --listen in the background, migrate to
# tcp:127.0.0.1:PORT) into a new sim guest, then checks that the source
# (left paused by the migration) and the target have the same memory digest
# and that the target's ledger verifies. Prints the figures as a table.
# Exit status 0 only when everything matched. The guests are removed on
# exit, whatever happens.
#
# Environment: XCC_BUILD (build dir, default build), DEMO_MEM (default 1G),
# DEMO_WORKLOAD (default ledger+hotpages), DEMO_PORT (default: a free one).
set -u
build=${XCC_BUILD:-build}
xcc="$build/bin/xc-colo"
case "$xcc" in /*) ;; *) xcc="$PWD/$xcc" ;; esac
py=${PYTHON:-python3}
mem=${DEMO_MEM:-1G}
workload=${DEMO_WORKLOAD:-ledger+hotpages}
src="demo-src-$$"
dst="demo-dst-$$"
tmp=$(mktemp -d /tmp/xc-colo-demo.XXXXXX) || exit 1
restore_pid=""
# Every step has a deadline: the whole demo must stay well under a minute.
step_timeout=45

cleanup() {
    if [ -n "$restore_pid" ]; then
        kill "$restore_pid" 2>/dev/null
        wait "$restore_pid" 2>/dev/null
    fi
    "$xcc" sim stop "$src" >/dev/null 2>&1
    "$xcc" sim stop "$dst" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
    echo "demo: FAILED: $*" >&2
    exit 1
}

[ -x "$xcc" ] || fail "$xcc not found (run make; XCC_BUILD names the build dir)"

if [ -n "${DEMO_PORT:-}" ]; then
    port=$DEMO_PORT
else
    port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
        fail "cannot find a free TCP port"
fi

t0=$(date +%s.%N)
echo "demo: starting sim:$src, $mem, workload $workload"
"$xcc" sim start "$src" --mem "$mem" --workload "$workload" ||
    fail "cannot start the source guest"
# Let the workload run a moment, so the migration has something to chase.
sleep 1

echo "demo: restore --listen tcp:127.0.0.1:$port sim:$dst (background)"
timeout "$step_timeout" "$xcc" restore -q --listen "tcp:127.0.0.1:$port" \
    --stats-json "$tmp/restore.json" "sim:$dst" 2>"$tmp/restore.err" &
restore_pid=$!

echo "demo: migrate --xbzrle sim:$src tcp:127.0.0.1:$port"
timeout "$step_timeout" "$xcc" migrate -q --xbzrle --stats-json "$tmp/save.json" \
    "sim:$src" "tcp:127.0.0.1:$port"
migrate_status=$?
wait "$restore_pid"
restore_status=$?
restore_pid=""
[ -s "$tmp/restore.err" ] && sed 's/^/  restore: /' "$tmp/restore.err" >&2
[ "$migrate_status" -eq 0 ] || fail "migrate exited with status $migrate_status"
[ "$restore_status" -eq 0 ] || fail "restore exited with status $restore_status"

src_digest=$("$xcc" sim digest "$src") || fail "cannot digest the source"
dst_digest=$("$xcc" sim digest "$dst") || fail "cannot digest the target"
echo "demo: source digest $src_digest"
echo "demo: target digest $dst_digest"
[ "$src_digest" = "$dst_digest" ] || fail "the digests differ"

verify=$("$xcc" sim verify "$dst") || fail "sim verify on the target: $verify"
echo "demo: target: $verify"

t1=$(date +%s.%N)
"$py" - "$tmp/save.json" "$tmp/restore.json" "$t0" "$t1" <<'EOF' || fail "cannot read the statistics"
import json, sys
s = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
ram, xb = s["ram"], s["xbzrle-cache"]
its = s["iterations"]
mib = 1 << 20
print()
print("  %-4s %10s %9s %9s %9s %11s %9s" %
      ("iter", "dirty", "normal", "zero", "xbzrle", "bytes", "ms"))
for it in its:
    print("  %-4s %10d %9d %9d %9d %11d %9.1f" %
          (str(it["iteration"]) + ("p" if it["paused"] else ""),
           it["dirty-pages"], it["normal"], it["duplicate"], it["xbzrle"],
           it["bytes"], it["seconds"] * 1e3))
after0 = sum(it["bytes"] for it in its[1:])
print()
rows = [
    ("total time", "%.1f ms" % s["total-time-ms"]),
    ("downtime", "%.1f ms (digest %.1f ms of it)" %
     (s["downtime-ms"], s.get("digest-downtime-ms", 0))),
    ("iterations", "%d (%s)" % (len(its), s.get("stop-reason", ""))),
    ("transferred", "%.1f MiB, %.0f Mbit/s" % (ram["transferred"] / mib, ram["mbps"])),
    ("after iteration 0", "%.2f MiB" % (after0 / mib)),
    ("zero pages", "%d" % ram["duplicate"]),
    ("xbzrle pages", "%d (%.2f MiB, encoding rate %.0f)" %
     (xb["pages"], xb["bytes"] / mib, xb["encoding-rate"])),
    ("cache miss rate", "%.3f (%d misses, %d overflows)" %
     (xb["cache-miss-rate"], xb["cache-miss"], xb["overflow"])),
    ("restore", "%.1f ms, %d DIGEST chunks checked" %
     (r["total-time-ms"], r["digest-chunks-checked"])),
    ("demo wall time", "%.1f s" % (float(sys.argv[4]) - float(sys.argv[3]))),
]
for k, v in rows:
    print("  %-18s %s" % (k, v))
EOF
echo
echo "demo: OK: sim:$dst matches sim:$src byte for byte and its ledger verifies"
