#!/usr/bin/env python3
"""summary.py SERIAL_LOG RESULTS_JSON [--build-seconds N ...]

Reads the harness VM's serial console log, prints the summary table and the
verdict line (XENVM_RESULT PASS or FAIL), and writes every figure to
RESULTS_JSON. Exit status 0 on PASS, 1 on FAIL.

The verdict is PASS when dom0 ran every step to the end, every step passed,
and the console shows no crash, trap or allocator abort. Timings are
reported, never judged: under TCG they vary from run to run.
"""
import argparse
import json
import re
import sys

# Console lines that mean something crashed, in dom0, a domU or Xen.
CRASH_PATTERNS = [
    r"segfault at", r"traps: ", r"general protection fault", r"Kernel panic",
    r"\bBUG: ", r"\bOops\b", r"Panic on CPU", r"domain_crash",
    r"malloc\(\)", r"free\(\): ", r"double free", r"corrupted size",
    r"stack smashing", r"AddressSanitizer", r"Assertion .* failed",
    r"\bAborted\b", r"Unhandled (page fault|exception)",
]
MAP_CACHE_TARGET = 3.0

STEP_ORDER = ["interface", "create", "ops", "ops_digest_scan", "cli_digest",
              "save_map_cache", "save_no_map_cache", "save_tcp", "save_no_live",
              "xl_save", "restore", "digest_equal", "digest_equal_digest_scan",
              "ops_fresh_domain", "restore_fresh", "checkpoint", "hb_noise",
              "migrate_xl", "migrate_xcc", "remus_xl", "pvh_ops", "pvh"]
# Steps only the log-dirty hypervisor runs (the security build has no PV
# log-dirty, so no stock migration, and no shadow paging for PVH).
LOGDIRTY_ONLY = {"ops_digest_scan", "digest_equal_digest_scan", "pvh_ops"}
# Steps that measure the stock toolstack (xl migrate, xl remus) or try a
# guest kind (PVH): reported with their status, never part of the verdict,
# so that a stock tool's failure is recorded, not taken for xc-colo's.
REPORTED_ONLY = {"hb_noise", "migrate_xl", "remus_xl", "pvh_ops", "pvh"}


def find(obj, *names):
    """First value under any of names, searching nested dicts depth-first."""
    if isinstance(obj, dict):
        for n in names:
            if n in obj and not isinstance(obj[n], (dict, list)):
                return obj[n]
        for v in obj.values():
            r = find(v, *names)
            if r is not None:
                return r
    return None


def sub(obj, pred):
    """First nested dict whose key satisfies pred (e.g. the map cache's)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and pred(k):
                return v
        for v in obj.values():
            r = sub(v, pred)
            if r is not None:
                return r
    return None


def fnum(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("out")
    ap.add_argument("--build-seconds", type=float)
    ap.add_argument("--vm-seconds", type=float)
    ap.add_argument("--total-seconds", type=float)
    a = ap.parse_args()

    try:
        raw = open(a.log, "rb").read().decode("utf-8", "replace")
    except OSError as e:
        print(f"xen-vm: no serial log: {e}")
        print("XENVM_RESULT FAIL")
        return 1
    lines = [l.rstrip("\r") for l in raw.splitlines()]

    steps, kv, stats, xops, crashes = {}, {}, {}, {}, []
    done = ended = False
    for line in lines:
        m = re.search(r"XENVM_STEP (\S+) (\S+) ?(.*)", line)
        if m:
            steps[m.group(1)] = (m.group(2), m.group(3).strip())
            continue
        m = re.search(r"XENVM_KV (\S+) ?(.*)", line)
        if m:
            kv[m.group(1)] = m.group(2).strip()
            continue
        m = re.search(r"XENVM_JSON (\S+) (.*)", line)
        if m:
            try:
                stats[m.group(1)] = json.loads(m.group(2))
            except ValueError:
                stats[m.group(1)] = {"unparsed": m.group(2)[:200]}
            continue
        m = re.match(r"XOPS (\S+) (.*)", line)
        if m:
            xops[m.group(1)] = m.group(2)
        done |= "XENVM_TESTS_DONE" in line
        ended |= "XENVM_END" in line
        if "XENVM_" not in line and any(re.search(p, line)
                                        for p in CRASH_PATTERNS):
            crashes.append(line)

    def secs(label):
        js = stats.get(label, {})
        t = fnum(find(js, "total-time", "total_time"))
        if t is not None:
            return t / 1000.0, "stats"
        return fnum(kv.get(f"{label}_seconds")), "wall"

    saves = [("save_map_cache_1", "--live (map cache) #1, pipe"),
             ("save_map_cache_2", "--live (map cache) #2, pipe"),
             ("save_no_map_cache_1", "--live --no-map-cache #1, pipe"),
             ("save_no_map_cache_2", "--live --no-map-cache #2, pipe"),
             ("save_tcp_map_cache_1", "--live (map cache) #1, TCP"),
             ("save_tcp_map_cache_2", "--live (map cache) #2, TCP"),
             ("save_tcp_no_map_cache_1", "--live --no-map-cache #1, TCP"),
             ("save_tcp_no_map_cache_2", "--live --no-map-cache #2, TCP"),
             ("save_xbzrle", "--live --xbzrle | restore"),
             ("save_no_live", "--no-live (one pass), file"),
             ("migrate_xcc_plain", "migrate --live | restore"),
             ("migrate_xcc_xbzrle", "migrate --live -x | restore")]
    fig = {}
    for label, title in saves:
        js = stats.get(label, {})
        wall = fnum(kv.get(f"{label}_seconds"))
        mc = sub(js, lambda k: "map" in k.lower())
        its = js.get("iterations") if isinstance(js, dict) else None
        send = None
        if isinstance(its, list) and its:
            send = sum(fnum(i.get("seconds")) or 0 for i in its
                       if isinstance(i, dict))
        fig[label] = {
            "title": title,
            "send_seconds": send,
            "rc": kv.get(f"{label}_rc"),
            "wall_seconds": wall,
            "stats_seconds": (fnum(find(js, "total-time", "total_time")) or 0)
            / 1000.0 if find(js, "total-time", "total_time") is not None
            else None,
            "bytes": fnum(kv.get(f"{label}_bytes")) or fnum(find(js, "transferred")),
            "transferred": fnum(find(js, "transferred")),
            "iterations": find(js, "iterations", "dirty-sync-count",
                               "dirty-sync-counter"),
            "downtime_ms": find(js, "downtime"),
            "mbps": find(js, "mbps"),
            "cache_miss_rate": find(js, "cache-miss-rate"),
            "map_cache": mc,
        }
    fig["xl_save"] = {"title": "xl save -c (stock)",
                      "wall_seconds": fnum(kv.get("xl_save_seconds")),
                      "bytes": fnum(kv.get("xl_save_bytes"))}

    def best(prefix, key):
        v = [fig[f"{prefix}_{r}"][key] for r in (1, 2)
             if fig[f"{prefix}_{r}"][key] is not None]
        return min(v) if v else None

    def ratios(mc, nomc):
        r = {}
        for key in ("wall_seconds", "send_seconds"):
            a_, b_ = best(mc, key), best(nomc, key)
            r[key] = b_ / a_ if a_ and b_ else None
        return r["wall_seconds"], r["send_seconds"]

    ratio, send_ratio = ratios("save_map_cache", "save_no_map_cache")
    tcp_ratio, tcp_send_ratio = ratios("save_tcp_map_cache", "save_tcp_no_map_cache")

    security = kv.get("xen_build") == "security"

    def step_ok(name):
        if name in REPORTED_ONLY:
            return True
        st = steps.get(name, ("MISSING",))[0]
        if st == "MISSING" and security and name in LOGDIRTY_ONLY:
            return True
        return st in ("PASS", "INFO")

    # Steps beyond STEP_ORDER (the parts' own, dom0-NAME-test.sh) count too.
    ok = ended and done and not crashes and all(step_ok(s) for s in STEP_ORDER) \
        and all(step_ok(s) for s in steps)

    print("\n==== xc-colo Xen VM harness: summary")
    print(f"{'step':<22} {'result':<7} detail")
    for s in STEP_ORDER + [s for s in steps if s not in STEP_ORDER]:
        st, det = steps.get(s, ("MISSING", "dom0 never reported it"))
        if s in REPORTED_ONLY:
            det = f"{det} (reported, not judged)"
        print(f"{s:<22} {st:<7} {det}")

    def f(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    print(f"\nXen {kv.get('xen_version', '?')} (package {kv.get('hypervisor_package', '?')}, "
          f"build '{kv.get('xen_build', '?')}'); xc-colo built with libxen-dev "
          f"{kv.get('libxen_dev', '?')}, domctl interface {kv.get('domctl_interface', '?')} "
          f"({steps.get('interface', ('MISSING',))[0]})")
    dk = xops.get("dirty_known")
    if dk:
        print(f"log-dirty ({xops.get('dirty_mode', '?')}): pages dirty: {dk}")
    if xops.get("dscan_dirty_known"):
        print(f"digest scan (XCC_XEN_DIRTY=digest): pages dirty: "
              f"{xops['dscan_dirty_known']}")
    print(f"\n{'xc-colo save (same PV domU, same VM)':<34} {'time s':>7} {'send s':>7} "
          f"{'bytes':>11} {'iters':>5} {'miss rate':>9}  map cache")
    for label in [l for l, _ in saves] + ["xl_save"]:
        x = fig[label]
        mc = x.get("map_cache")
        mcs = "-" if not mc else " ".join(
            f"{k}={mc[k]}" for k in ("mode", "map-calls", "unmap-calls", "hits")
            if k in mc)
        print(f"{x['title']:<34} {f(x['wall_seconds']):>7} {f(x.get('send_seconds')):>7} "
              f"{f(x['bytes'], '{:.0f}'):>11} "
              f"{str(x.get('iterations') if x.get('iterations') is not None else '-'):>5} "
              f"{str(x.get('cache_miss_rate') if x.get('cache_miss_rate') is not None else '-'):>9}  {mcs}")
    def judged(v):
        return "-" if v is None else (
            "met" if v >= MAP_CACHE_TARGET else "NOT met")
    for name, r, sr in (("into a pipe read to the last byte", ratio, send_ratio),
                        ("over loopback TCP into restore", tcp_ratio, tcp_send_ratio)):
        if r is not None:
            print(f"map cache vs --no-map-cache, live save {name}, best of 2 "
                  f"each (target >= {MAP_CACHE_TARGET:.0f}x): whole save {r:.2f}x "
                  f"({judged(r)}), sending passes {f(sr)}x ({judged(sr)})")
    xl_t, xl_b = fig["xl_save"]["wall_seconds"], fig["xl_save"]["bytes"]
    for label in ["save_no_live", "save_map_cache_2", "save_xbzrle"]:
        x = fig[label]
        if xl_t and x["wall_seconds"] and xl_b and x["bytes"]:
            print(f"{x['title']} vs xl save: time {x['wall_seconds'] / xl_t:.2f}x, "
                  f"bytes {x['bytes'] / xl_b:.2f}x")
    print(f"live save | restore, digests equal: {kv.get('live_restores_equal', '-')} "
          f"({steps.get('digest_equal', ('MISSING',))[0]}); with XCC_XEN_DIRTY=digest: "
          f"{steps.get('digest_equal_digest_scan', ('-',))[0]}")

    # The stock toolstack side by side.
    def num(k):
        return fnum(kv.get(k))
    side = [
        ("xl migrate (stock, full domain)", num("xl_migrate_seconds"),
         num("xl_migrate_bytes"), kv.get("xl_migrate_iterations"),
         num("xl_migrate_downtime_ms")),
    ]
    for v, t in (("plain", "xc-colo migrate --live (*)"),
                 ("xbzrle", "xc-colo migrate --live -x (*)")):
        js = stats.get(f"migrate_xcc_{v}", {})
        side.append((t, num(f"migrate_xcc_{v}_seconds"), num(f"migrate_xcc_{v}_bytes"),
                     find(js, "dirty-sync-count"), num(f"migrate_xcc_{v}_downtime_ms")))
    if "receiver_migrate_seconds" in kv:
        # Into a new domain that runs, the source destroyed after it does:
        # the same work as xl migrate.
        side.append(("xc-colo migrate --live -x, new dom",
                     num("receiver_migrate_seconds"), num("receiver_migrate_bytes"),
                     find(stats.get("receiver_migrate", {}), "dirty-sync-count"),
                     num("receiver_migrate_downtime_ms")))
    print(f"\n{'migration, same domU':<34} {'time s':>7} {'wire bytes':>11} "
          f"{'iters':>5} {'downtime ms':>11}  (vs xl migrate)")
    base = side[0]
    for t, sec, b, it, dtm in side:
        rel = ""
        if base[1] and sec and base[2] and b and t != base[0]:
            rel = f"time {sec / base[1]:.2f}x, bytes {b / base[2]:.2f}x"
            if base[4] and dtm:
                rel += f", downtime {dtm / base[4]:.2f}x"
        print(f"{t:<34} {f(sec):>7} {f(b, '{:.0f}'):>11} {str(it if it is not None else '-'):>5} "
              f"{f(dtm, '{:.0f}'):>11}  {rel}")
    print("(*) memory only, into a paused xl create -p domain; downtime is the "
          "source's stop (it runs on with -c)")
    print("new dom: into a new domain built by libxl that runs; the source is "
          "destroyed after it does, as xl migrate; downtime from the heartbeat")

    # Whole-domain saves and restores, like for like with xl.
    def pair(ours, theirs):
        return f"{ours / theirs:.2f}x" if ours and theirs else "-"
    print(f"\n{'whole domain, same domU':<44} {'time s':>7} {'bytes':>11} {'other':>22}")
    xs, xb = num("compat_xl_save_seconds"), num("compat_xl_save_bytes")
    cs, cb = num("compat_save_nolive_seconds"), num("compat_save_nolive_bytes")
    stop = kv.get("compat_vs_xl_save_stop_ms", "")
    print(f"{'xl save -c':<44} {f(xs):>7} {f(xb, '{:.0f}'):>11}  stop {stop.split(' xc-colo ')[0].replace('xl ', '')} ms")
    print(f"{'xc-colo save --xen-compat --no-live -c':<44} {f(cs):>7} {f(cb, '{:.0f}'):>11}  "
          f"stop {stop.split(' xc-colo ')[-1] if ' xc-colo ' in stop else '-'} ms; "
          f"time {pair(cs, xs)}, bytes {pair(cb, xb)}")
    for r in (1, 2):
        a_s, b_s = num(f"receiver_vs_xl_{r}_seconds"), num(f"receiver_vs_xcc_{r}_seconds")
        if a_s or b_s:
            print(f"{f'restore -e of an xl save image, round {r}: xl':<44} {f(a_s):>7}")
            rss = find(stats.get(f"receiver_vs_xcc_{r}", {}), "receiver_peak_rss_kib")
            print(f"{f'  the same with xc-colo restore xen:':<44} {f(b_s):>7} {'':>11}  "
                  f"{pair(b_s, a_s)}; receiver RSS {rss if rss is not None else '-'} KiB")
    ls, lb = num("recv_xcc_save_seconds"), num("recv_xcc_save_bytes")
    lr = num("receiver_xcc_restore_seconds")
    rj = stats.get("receiver_xcc_restore", {})
    print(f"{'xc-colo save --live --xbzrle':<44} {f(ls):>7} {f(lb, '{:.0f}'):>11}  "
          f"bytes vs xl save {pair(lb, xb)}")
    print(f"{'  then xc-colo restore FILE xen: (runs)':<44} {f(lr):>7} {'':>11}  "
          f"receiver RSS {find(rj, 'receiver_peak_rss_kib') or '-'} KiB, decode copy "
          f"{find(rj, 'decode-copy-bytes') if find(rj, 'decode-copy-bytes') is not None else '-'} B")
    # --compress zstd on a real idle Linux domU's memory (the wire part).
    zn, zz = num("wire_none_bytes"), num("wire_zstd_bytes")
    if zn and zz:
        zj = stats.get("wire_compress", {})
        print(f"{'xc-colo save (non-live), plain':<44} {'':>7} {f(zn, '{:.0f}'):>11}")
        print(f"{'  the same with --compress zstd':<44} {'':>7} {f(zz, '{:.0f}'):>11}  "
              f"{zn / zz:.2f}x fewer bytes; zstd level "
              f"{find(zj, 'level') if find(zj, 'level') is not None else '-'}, "
              f"frames {find(zj, 'ratio') or '-'}x of the pages with data")
    rx_n, rx_w = num("remus_xl_checkpoints"), num("remus_xl_window_seconds")
    cx_n, cx_w = num("ckpt_hb_gaps"), num("ckpt_hb_window_seconds")
    print(f"\n{'checkpointing at 100 ms':<34} {'ckpt/s':>7} {'pause ms':>9}  (heartbeat)")
    rx = rx_n / rx_w if rx_n and rx_w else None
    cx = cx_n / cx_w if cx_n and cx_w else None
    print(f"{'xl remus -n -d -u -i 100':<34} {f(rx):>7} {f(num('remus_xl_median_pause_ms'), '{:.0f}'):>9}")
    lx = num("ckpt_logged_in_window")
    print(f"{'xc-colo checkpoint --interval 100':<34} {f(cx):>7} {f(num('ckpt_hb_median_ms'), '{:.0f}'):>9}"
          + (f"  ckpt/s {cx / rx:.2f}x" if cx and rx else "")
          + (f"  (digest log: {lx / cx_w:.2f}/s)" if lx and cx_w else ""))
    print(f"heartbeat noise: {kv.get('hb_noise_gaps', '-')} gaps over 20 ms in 3 s idle, "
          f"max {kv.get('hb_noise_max_ms', '-')} ms")
    if "pvh_digest_source" in kv or "pvh" in steps:
        print(f"PVH domU: {steps.get('pvh_ops', ('-', ''))[0]} ops, "
              f"{steps.get('pvh', ('-', ''))[0]} save | restore "
              f"{steps.get('pvh', ('', ''))[1]}")
    if "checkpoint_kept" in kv:
        print(f"checkpoint: kept {kv.get('checkpoint_kept') or '-'}, logged "
              f"{kv.get('checkpoint_digest_logged') or '-'}, target "
              f"{kv.get('checkpoint_digest_target') or '-'}")
    print(f"xl create {kv.get('xl_create_seconds', '-')} s, digest of the "
          f"domU {kv.get('digest_seconds', '-')} s, VM wall {f(a.vm_seconds, '{:.0f}')} s, "
          f"image build {f(a.build_seconds, '{:.0f}')} s, "
          f"whole run {f(a.total_seconds, '{:.0f}')} s")
    if crashes:
        print("\ncrashes on the serial console:")
        for c in crashes[:20]:
            print("  " + c)
    if not ended:
        print("\ndom0 never reached XENVM_END (hang, crash or timeout)")
    print(f"serial log: {a.log}")

    with open(a.out, "w") as fp:
        json.dump({"result": "PASS" if ok else "FAIL", "steps": {
            k: {"status": v[0], "detail": v[1]} for k, v in steps.items()},
            "figures": kv, "saves": fig, "stats": stats, "ops": xops,
            "map_cache_ratio": ratio, "map_cache_send_ratio": send_ratio,
            "map_cache_tcp_ratio": tcp_ratio,
            "map_cache_tcp_send_ratio": tcp_send_ratio,
            "crashes": crashes,
            "build_seconds": a.build_seconds, "vm_seconds": a.vm_seconds,
            "total_seconds": a.total_seconds}, fp, indent=1, default=str)
    print(f"results: {a.out}")
    print(f"XENVM_RESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
