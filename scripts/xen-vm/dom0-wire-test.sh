# dom0-wire-test.sh - issue 16 items 1 and 5 on Xen (sourced by
# dom0-test.sh; $D is the running PV domU).
#   wire_peek:     a live --xbzrle save peeks at Xen's log-dirty bitmap
#                  (XEN_DOMCTL_SHADOW_OP_PEEK) in iteration 0: peeks made,
#                  no failure, pages predicted hot and cached; inspect
#                  accepts the stream.
#   wire_compress: a --compress zstd save (-c: the guest runs on) has
#                  COMPRESSED_PAGES records that inspect decompresses and
#                  checks, and fewer bytes than the same save without.
echo "=== step wire_peek: SHADOW_OP_PEEK feeds the first pass's prediction"
rm -f /tmp/wire_peek.json /tmp/wire_peek.img
timeout "$CMD_TIMEOUT" xc-colo save --live --xbzrle -c --no-progress \
    --stats-json /tmp/wire_peek.json "xen:$D" /tmp/wire_peek.img \
    > /tmp/wire_peek.out 2>&1
rc=$?
show wire_peek /tmp/wire_peek.out
emit_json wire_peek /tmp/wire_peek.json
# (no python in dom0: the figures by name from the JSON text)
fig() { tr -d ' \n' < /tmp/wire_peek.json | grep -o "\"$1\":[0-9.]*" | head -n1 | cut -d: -f2; }
hp="$(fig peeks) $(fig predicted) $(fig cached) $(fig redirtied-fraction)"
set -- $hp
kv wire_peek_figures "$hp"
if [ $rc = 0 ] && [ "${1:-0}" -gt 0 ] && ! grep -q "peeking" /tmp/wire_peek.out &&
        xc-colo inspect /tmp/wire_peek.img > /tmp/wire_peek.insp 2>&1; then
    step wire_peek PASS "peeks ${1}, predicted ${2}, cached ${3}, re-dirtied fraction ${4}"
else
    step wire_peek FAIL "exit $rc, figures '$hp'; $(tail -n 2 /tmp/wire_peek.out)"
fi
rm -f /tmp/wire_peek.img
case "$(domstate guest)" in *p*) xl unpause "$D" ;; esac

echo "=== step wire_compress: --compress zstd on the Xen backend"
ok_c=1
for m in none zstd; do
    opt=""; [ $m = zstd ] && opt="--compress zstd"
    rm -f "/tmp/wire_$m.json" "/tmp/wire_$m.img"
    # shellcheck disable=SC2086
    timeout "$CMD_TIMEOUT" xc-colo save -c --no-progress $opt \
        --stats-json "/tmp/wire_$m.json" "xen:$D" "/tmp/wire_$m.img" \
        > "/tmp/wire_$m.out" 2>&1 || ok_c=0
    show "wire_$m" "/tmp/wire_$m.out"
    xc-colo inspect "/tmp/wire_$m.img" > "/tmp/wire_$m.insp" 2>&1 || ok_c=0
    show "wire_$m inspect" "/tmp/wire_$m.insp"
    kv "wire_${m}_bytes" "$(wc -c < "/tmp/wire_$m.img")"
    case "$(domstate guest)" in *p*) xl unpause "$D" ;; esac
done
emit_json wire_compress /tmp/wire_zstd.json
nb=$(wc -c < /tmp/wire_none.img); zb=$(wc -c < /tmp/wire_zstd.img)
if [ $ok_c = 1 ] && [ "$zb" -lt "$nb" ]; then
    kv wire_zstd_fewer "$(awk -v n="$nb" -v z="$zb" 'BEGIN { printf "%.2f", n / z }')"
    step wire_compress PASS "non-live save: $nb bytes plain, $zb with --compress zstd ($(kv_of wire_zstd_fewer)x fewer)"
else
    step wire_compress FAIL "saves/inspect ok=$ok_c, $nb bytes plain, $zb compressed"
fi
rm -f /tmp/wire_none.img /tmp/wire_zstd.img
