#!/bin/sh
# Without a Xen hypervisor (no /dev/xen/privcmd), a Xen domain fails at
# once with a clear message and exit status 1, whether it is named xen:ID
# or by a bare domid; malformed Xen names are refused as such.
set -u
: "${XCC_BIN:?XCC_BIN must name the xc-colo binary}"

if [ -e /dev/xen/privcmd ]; then
    echo "SKIP: this host runs on Xen (/dev/xen/privcmd exists)"
    exit 0
fi

fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

expect() { # NAME WANT_STATUS WANT_TEXT ARGS...
    name=$1 want=$2 text=$3
    shift 3
    "$XCC_BIN" "$@" >"$tmp" 2>&1
    rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL: $name: exit $rc, want $want"; cat "$tmp"; fail=1
    elif ! grep -qF "$text" "$tmp"; then
        echo "FAIL: $name: no '$text' in:"; cat "$tmp"; fail=1
    else
        echo "ok: $name"
    fi
}

msg="no Xen hypervisor: /dev/xen/privcmd not found"
expect "digest xen:1" 1 "$msg" digest xen:1
expect "digest 1" 1 "$msg" digest 1
expect "digest --exclude-pagetables xen:7" 1 "$msg" digest --exclude-pagetables xen:7
expect "digest xen:abc" 1 "bad Xen domain id 'abc'" digest xen:abc
expect "digest xen:" 1 "bad Xen domain id ''" digest xen:
expect "digest xen:0 (dom0)" 1 "domain 0 is dom0" digest xen:0
expect "digest xen:99999" 1 "bad Xen domain id '99999'" digest xen:99999
exit $fail
