#!/bin/sh
# e2e_xen_state.sh - Xen's PV domain-state records and XL_CONFIG through
# `xc-colo inspect` and `xc-colo restore`, on hand-built streams
# (tests/xen_state_streams.py, from libxc-colo/docs/stream-format.md):
#   - a valid stream (ours and stock Xen's) is accepted, and inspect decodes
#     the fields (vCPU ids, cr3 pfn, TSC mode, guest width, p2m range, the
#     config's name and memory) in text and --json;
#   - a vCPU record for a vCPU the domain lacks, a cr3 pfn not typed L4 and
#     a P2M_FRAMES range that disagrees with X86_PV_INFO: inspect and
#     restore exit 1 naming the record, its offset and the fault;
#   - a restore into an existing sim target validates the state records
#     and skips them (memory only).
# Env: XCC_BIN. Run by `make test`.
set -u
e2e_tmp=xen-state
. "$(dirname "$0")/lib_e2e.sh"

offsets=$("$PY" "$(dirname "$0")/xen_state_streams.py" "$tmp") || {
    echo "FAIL: cannot write the streams"; exit 1; }
off() { echo "$offsets" | awk -v n="$1" '$1 == n { print $2 }'; }

# --- Valid streams: accepted, fields decoded. ------------------------------
for s in pv-state-valid pv-state-stock; do
    if "$X" inspect "$tmp/$s" >"$tmp/$s.txt" 2>&1; then
        ok "inspect accepts $s"
    else
        bad "inspect rejects $s: $(cat "$tmp/$s.txt")"
    fi
done
for want in "X86_PV_INFO .*guest_width 8 pt_levels 4" \
    "X86_PV_P2M_FRAMES .*start_pfn 0 end_pfn 0x3f frames 1" \
    "X86_TSC_INFO .*tsc_mode_name 'default' khz 2000000" \
    "X86_PV_VCPU_BASIC .*vcpu 0 .*cr3_pfn 0xa cr1_pfn 0xb" \
    "X86_PV_VCPU_BASIC .*vcpu 1 .*cr3_pfn 0xa" \
    "XL_CONFIG .*max_memkb 262144 .*name 'pvguest'"; do
    if grep -q "$want" "$tmp/pv-state-valid.txt"; then
        ok "inspect shows /$want/"
    else
        bad "inspect text lacks /$want/"
    fi
done
if "$X" inspect --json - <"$tmp/pv-state-valid" >"$tmp/valid.json" &&
    "$PY" - "$tmp/valid.json" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
recs = doc["records"]
f = lambda n: [r.get("fields", {}) for r in recs if r["name"] == n]
assert doc["valid"], doc
assert [b["vcpu"] for b in f("X86_PV_VCPU_BASIC")] == [0, 1], f("X86_PV_VCPU_BASIC")
assert f("X86_PV_VCPU_BASIC")[0]["cr3_pfn"] == 10
assert f("X86_PV_VCPU_BASIC")[0]["start_info_pfn"] == 7
assert f("X86_PV_INFO") == [{"guest_width": 8, "pt_levels": 4}]
assert f("X86_TSC_INFO")[0]["tsc_mode"] == 0
assert f("X86_PV_P2M_FRAMES")[0]["end_pfn"] == 63
assert f("XL_CONFIG")[0]["name"] == "pvguest"
assert f("XL_CONFIG")[0]["max_vcpus"] == 2
assert f("SHARED_INFO")[0]["max_pfn"] == 64
assert [m["msrs"] for m in f("X86_PV_VCPU_MSRS")] == [1, 1]
PYEOF
then
    ok "inspect --json decodes every state record"
else
    bad "inspect --json: wrong or missing fields"
fi

# --- Bad input: exit 1, naming the record, its offset and the fault. -------
expect_fail() { # NAME RECORD FAULT CMD...
    name=$1 record=$2 fault=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    o=$(off "$name")
    if [ "$rc" -eq 1 ] &&
        grep -q "$record record (type 0x[0-9a-f]*) at offset $o: .*$fault" \
            "$tmp/err"; then
        ok "$* -> exit 1, $record at $o: $fault"
    else
        bad "$*: exit $rc, stderr: $(cat "$tmp/err")"
    fi
}
expect_fail pv-bad-vcpu X86_PV_VCPU_MSRS "vCPU 2, but the domain has 2" \
    "$X" inspect "$tmp/pv-bad-vcpu"
expect_fail pv-bad-cr3 X86_PV_VCPU_BASIC "cr3 pfn 0xc is not typed L4" \
    "$X" inspect "$tmp/pv-bad-cr3"
expect_fail pv-bad-p2m X86_PV_P2M_FRAMES "(X86_PV_INFO: 8-byte guest)" \
    "$X" inspect --json "$tmp/pv-bad-p2m"

# --- Restore into an existing sim target: checked, then skipped. -----------
t="xenstate-$$"
if "$X" sim create "$t" --mem 1M >/dev/null 2>&1; then
    guests="$t"
    if "$X" restore -q --into-existing "$tmp/pv-restore-valid" "sim:$t" \
        2>"$tmp/err"; then
        ok "restore takes a valid PV stream into sim:$t (state skipped)"
    else
        bad "restore of a valid PV stream: $(cat "$tmp/err")"
    fi
    expect_fail pv-restore-bad-vcpu X86_PV_VCPU_MSRS \
        "vCPU 2, but the domain has 2" \
        "$X" restore -q --into-existing "$tmp/pv-restore-bad-vcpu" "sim:$t"
    expect_fail pv-restore-bad-cr3 X86_PV_VCPU_BASIC "is not typed L4" \
        "$X" restore -q --into-existing "$tmp/pv-restore-bad-cr3" "sim:$t"
    expect_fail pv-bad-p2m X86_PV_P2M_FRAMES "need 1 p2m frames" \
        "$X" restore -q --into-existing "$tmp/pv-bad-p2m" "sim:$t"
else
    echo "skip restore checks: cannot create a sim guest here"
fi

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
