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

STEP_ORDER = ["create", "ops", "cli_digest", "save_map_cache",
              "save_no_map_cache", "save_no_live", "xl_save", "save_xbzrle", "restore",
              "digest_equal", "ops_fresh_domain", "restore_fresh",
              "checkpoint"]


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

    saves = [("save_map_cache_1", "xc-colo --live (map cache) #1"),
             ("save_map_cache_2", "xc-colo --live (map cache) #2"),
             ("save_no_map_cache_1", "xc-colo --live --no-map-cache #1"),
             ("save_no_map_cache_2", "xc-colo --live --no-map-cache #2"),
             ("save_xbzrle", "xc-colo --live --xbzrle"),
             ("save_no_live", "xc-colo --no-live (one pass)")]
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

    ratio = send_ratio = None
    a_t, b_t = best("save_map_cache", "wall_seconds"), best("save_no_map_cache", "wall_seconds")
    if a_t and b_t:
        ratio = b_t / a_t
    a_s, b_s = best("save_map_cache", "send_seconds"), best("save_no_map_cache", "send_seconds")
    if a_s and b_s:
        send_ratio = b_s / a_s

    ok = ended and done and not crashes and all(
        steps.get(s, ("MISSING",))[0] in ("PASS", "INFO") for s in STEP_ORDER)

    print("\n==== xc-colo Xen VM harness: summary")
    print(f"{'step':<22} {'result':<7} detail")
    for s in STEP_ORDER + [s for s in steps if s not in STEP_ORDER]:
        st, det = steps.get(s, ("MISSING", "dom0 never reported it"))
        print(f"{s:<22} {st:<7} {det}")

    def f(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    print(f"\n{'save (same PV domU, same VM)':<34} {'time s':>7} {'send s':>7} "
          f"{'bytes':>11} {'iters':>5} {'miss rate':>9}  map cache")
    for label in [l for l, _ in saves] + ["xl_save"]:
        x = fig[label]
        mc = x.get("map_cache")
        mcs = "-" if not mc else " ".join(
            f"{k}={v}" for k, v in mc.items() if not isinstance(v, (dict, list)))
        print(f"{x['title']:<34} {f(x['wall_seconds']):>7} {f(x.get('send_seconds')):>7} "
              f"{f(x['bytes'], '{:.0f}'):>11} "
              f"{str(x.get('iterations') if x.get('iterations') is not None else '-'):>5} "
              f"{str(x.get('cache_miss_rate') if x.get('cache_miss_rate') is not None else '-'):>9}  {mcs}")
    if ratio is not None:
        def judged(v):
            return "-" if v is None else (
                "met" if v >= MAP_CACHE_TARGET else "NOT met")
        print(f"\nmap cache vs --no-map-cache, live save, best of 2 each "
              f"(target >= {MAP_CACHE_TARGET:.0f}x): whole save {ratio:.2f}x "
              f"({judged(ratio)}), sending passes {f(send_ratio)}x "
              f"({judged(send_ratio)})")
    xl_t, xl_b = fig["xl_save"]["wall_seconds"], fig["xl_save"]["bytes"]
    for label in ["save_no_live", "save_map_cache_2", "save_xbzrle"]:
        x = fig[label]
        if xl_t and x["wall_seconds"] and xl_b and x["bytes"]:
            print(f"{x['title']} vs xl save: time {x['wall_seconds'] / xl_t:.2f}x, "
                  f"bytes {x['bytes'] / xl_b:.2f}x")
    print(f"digest source/target:  {kv.get('digest_source', '-')} / "
          f"{kv.get('digest_target', '-')}  "
          f"({steps.get('digest_equal', ('MISSING',))[0]})")
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
            "crashes": crashes,
            "build_seconds": a.build_seconds, "vm_seconds": a.vm_seconds,
            "total_seconds": a.total_seconds}, fp, indent=1, default=str)
    print(f"results: {a.out}")
    print(f"XENVM_RESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
