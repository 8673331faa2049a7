#!/bin/sh
# e2e_abi.sh - the shared library's exported symbols are exactly those
# libxccolo.map lists, each under its version node, and every function the
# public header declares is listed (nothing public goes unexported, nothing
# exported goes undeclared). Needs nm (binutils).
set -u
build=${XCC_BUILD:-build}
lib="$build/lib/libxccolo.so"
map=libxc-colo/libxccolo.map
hdr=libxc-colo/include/xccolo.h
tmp=$(mktemp -d /tmp/xc-colo-abi.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
bad() { echo "FAIL $*"; fail=1; }

[ -f "$lib" ] || { echo "FAIL $lib is missing (make first)"; exit 1; }
command -v nm >/dev/null || { echo "FAIL nm is missing (binutils)"; exit 1; }

# "NAME NODE" per symbol the map lists under a global: section.
awk '
    { sub(/#.*/, "") }
    /\/\*/ { incomment = 1 }
    incomment { if (/\*\//) incomment = 0; next }
    /^[ \t]*[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ {
        node = $1; sub(/\{.*/, "", node); section = ""; next }
    /^[ \t]*\}/ { section = ""; next }
    /global:/ { section = "global"; next }
    /local:/ { section = "local"; next }
    section == "global" && /[A-Za-z_]/ {
        gsub(/[ \t;]/, ""); print $0, node }
' "$map" | sort >"$tmp/map"
[ -s "$tmp/map" ] || bad "no symbols parsed from $map"
if grep -q '[*?]' "$tmp/map"; then
    bad "$map uses a glob in a global: section: $(grep '[*?]' "$tmp/map" |
        tr '\n' ' ')"
fi

# "NAME NODE" per defined dynamic symbol (version-node markers left out).
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' |
    sed 's/@@*/ /' | sort >"$tmp/lib"

if cmp -s "$tmp/map" "$tmp/lib"; then
    echo "ok   $(wc -l <"$tmp/lib") exported symbols, exactly as $map lists them"
else
    bad "exports differ from $map (< map, > library):"
    diff "$tmp/map" "$tmp/lib" | grep '^[<>]'
fi

# Functions the header declares: "NAME(" at a declaration, typedefs and
# macros left out.
grep -v '^[ ]*\(typedef\|#\|\*\|/\*\)' "$hdr" |
    grep -o '\bxcc_[a-z0-9_]*(' | tr -d '(' | sort -u >"$tmp/hdr"
cut -d' ' -f1 "$tmp/map" | sort -u >"$tmp/mapnames"
if cmp -s "$tmp/hdr" "$tmp/mapnames"; then
    echo "ok   $(wc -l <"$tmp/hdr") functions declared in xccolo.h, all listed"
else
    bad "xccolo.h and $map differ (< header, > map):"
    diff "$tmp/hdr" "$tmp/mapnames" | grep '^[<>]'
fi

# No test hook (or any other private function) leaks into the header.
if grep -n 'test_fail\|sim_test_' "$hdr"; then
    bad "a test hook is declared in the public header"
fi

[ $fail = 0 ] && echo "e2e_abi: ok"
exit $fail
