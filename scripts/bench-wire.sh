#!/bin/sh
# Issue 16, items 1 and 5 (a bench part of `make bench`).
#
# 1. Hot pages cached during the first pass: live migration of a sim guest
#    running hotpages through a pipe into restore (WIRE_MEM, default 256M),
#    plain, --xbzrle --no-hot-predict (before) and --xbzrle (after),
#    WIRE_REPS runs each (default 3): bytes after iteration 0 (medians) and
#    the ratio plain / XBZRLE before and after; the prediction's figures
#    (pages predicted, fraction re-dirtied later, cache bytes).
# 2. --compress zstd: a non-live save of a paused guest whose RAM holds an
#    idle-Linux-like image (`sim create --fill linux`) and random data,
#    into a pipe read to the end by another process (cat, which copies
#    every byte), without and with --compress zstd:1 and zstd:3, modes
#    interleaved, WIRE_CREPS runs each (default 5): wire bytes, the saver's
#    CPU time (user + system, from rusage) and the CPU time inside zstd
#    (its own thread clock), medians; ratios to no compression measured in
#    the same run.
# Every run's target is checked equal to the source (restore's DIGEST).
#
# Env: XCC_BUILD (default build), WIRE_MEM, WIRE_REPS, WIRE_CREPS, BENCH_JSON (rows as
# JSON lines).
set -u
build=${XCC_BUILD:-build}
xcc="$build/bin/xc-colo"
case "$xcc" in /*) ;; *) xcc="$PWD/$xcc" ;; esac
mem=${WIRE_MEM:-256M}
reps=${WIRE_REPS:-3}
creps=${WIRE_CREPS:-5}
py=${PYTHON:-python3}
[ -x "$xcc" ] || { echo "bench-wire: $xcc not found" >&2; exit 2; }
exec "$py" - "$xcc" "$mem" "$reps" "${BENCH_JSON:-}" "$creps" <<'EOF'
import json, os, resource, statistics, subprocess, sys, tempfile, time

xcc, mem, reps, jout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
creps = int(sys.argv[5])
tmp = tempfile.mkdtemp(prefix="xc-colo-bench-wire.")
guests = []
rows = []


def run(*args, **kw):
    return subprocess.run([xcc] + list(args), check=True, **kw)


def stop(g):
    subprocess.run([xcc, "sim", "stop", g], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def cpu_of(cmd):
    """Runs cmd (saver | reader); returns the saver's user+sys seconds."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    saver = subprocess.Popen(cmd[0], stdout=subprocess.PIPE)
    reader = subprocess.Popen(cmd[1], stdin=saver.stdout,
                              stdout=subprocess.DEVNULL)
    saver.stdout.close()
    rc_s = saver.wait()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rc_r = reader.wait()
    if rc_s or rc_r:
        raise SystemExit("bench-wire: %s failed (%d, %d)" % (cmd, rc_s, rc_r))
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def med(v):
    return statistics.median(v)


try:
    # ---- 1. hot pages cached during the first pass
    src = "bw-%d-hot" % os.getpid()
    guests.append(src)
    run("sim", "start", src, "--mem", mem, "--workload", "hotpages")
    time.sleep(1)
    modes = [("plain", []), ("xbzrle-before", ["--xbzrle", "--no-hot-predict"]),
             ("xbzrle-after", ["--xbzrle"])]
    res = {m: [] for m, _ in modes}
    for r in range(reps):
        for m, opt in modes:
            dst = src + "-t"
            js = "%s/%s-%d.json" % (tmp, m, r)
            run("migrate", "-q", *opt, "--stats-json", js, "sim:" + src,
                "exec:'%s' restore -q - sim:%s" % (xcc, dst))
            stop(dst)
            run("sim", "unpause", src)
            res[m].append(json.load(open(js)))
    stop(src)
    after = {m: med([sum(i["bytes"] for i in s["iterations"][1:]) for s in v])
             for m, v in res.items()}
    hp = [s.get("hot-prediction", {}) for s in res["xbzrle-after"]]
    row = {
        "part": "hot-prediction", "workload": "hotpages", "mem": mem,
        "runs": reps, "transport": "pipe",
        "after_iter0_bytes": after,
        "ratio_before": after["plain"] / max(1, after["xbzrle-before"]),
        "ratio_after": after["plain"] / max(1, after["xbzrle-after"]),
        "predicted": med([h.get("predicted", 0) for h in hp]),
        "cached": med([h.get("cached", 0) for h in hp]),
        "redirtied_fraction": med([h.get("redirtied-fraction", 0) for h in hp]),
        "cache_bytes": med([h.get("cache-bytes", 0) for h in hp]),
        "peek_ms": med([h.get("peek-ms", 0) for h in hp]),
        "total_ms": {m: med([s["total-time-ms"] for s in v]) for m, v in res.items()},
    }
    rows.append(row)
    print("hot pages cached during the first pass: hotpages, %s sim guest, live "
          "migration through a pipe, median of %d runs" % (mem, reps))
    print("  bytes after iteration 0: plain %d, XBZRLE before %d, after %d" % (
        after["plain"], after["xbzrle-before"], after["xbzrle-after"]))
    print("  plain / XBZRLE: before %.2fx, after %.2fx (target >= 5x)" % (
        row["ratio_before"], row["ratio_after"]))
    print("  prediction: %d pages predicted, %d cached (%.1f MiB of cache), "
          "%.1f%% re-dirtied later; %.2f ms peeking" % (
              row["predicted"], row["cached"], row["cache_bytes"] / 2**20,
              100 * row["redirtied_fraction"], row["peek_ms"]))

    # ---- 2. --compress zstd
    print("--compress zstd: non-live save of a paused %s sim guest into a pipe "
          "read by cat, median of %d runs" % (mem, creps))
    print("  %-7s %-9s %14s %10s %9s %9s %10s %8s" % (
        "image", "mode", "wire bytes", "CPU s", "bytes x", "CPU x",
        "zstd ms", "share"))
    for image in ("linux", "random"):
        g = "bw-%d-%s" % (os.getpid(), image)
        guests.append(g)
        run("sim", "create", g, "--mem", mem, "--fill", image, "--seed", "3")
        modes = (("none", []), ("zstd:1", ["--compress", "zstd:1"]),
                 ("zstd:3", ["--compress", "zstd:3"]))
        runs = {m: [] for m, _ in modes}
        # Modes interleaved run by run: the machine's load drifts.
        for r in range(creps):
            for mode, opt in modes:
                js = "%s/c-%s-%s-%d.json" % (tmp, image, mode, r)
                cpu = cpu_of(([xcc, "save", "-q", "--no-verify", *opt,
                               "--stats-json", js, "sim:" + g, "-"],
                              ["cat"]))  # to /dev/null: reads every byte
                s = json.load(open(js))
                runs[mode].append((s["ram"]["transferred"], cpu,
                                   s.get("compression", {})))
        figs = {m: (med([x[0] for x in v]), med([x[1] for x in v]),
                    med([x[2].get("cpu-ms", 0) for x in v]), v[-1][2])
                for m, v in runs.items()}
        # One exactness check per image: save | restore, DIGEST checked.
        subprocess.run("'%s' save -q --compress zstd sim:%s - | '%s' restore -q "
                       "- sim:%s-t" % (xcc, g, xcc, g), shell=True, check=True)
        stop(g + "-t")
        stop(g)
        nb, nc, _, _ = figs["none"]
        for mode, _ in modes:
            b, c, zc, z = figs[mode]
            rows.append({"part": "compress", "image": image, "mode": mode,
                         "mem": mem, "runs": creps, "wire_bytes": b,
                         "cpu_s": c, "zstd_cpu_ms": zc,
                         "bytes_ratio": nb / b, "cpu_ratio": c / nc,
                         "zstd_cpu_share": zc / 1e3 / c if c else 0,
                         "compression": z})
            print("  %-7s %-9s %14d %10.3f %8.2fx %8.2fx %10.1f %7.1f%%" % (
                image, mode, b, c, nb / b, c / nc, zc,
                100 * zc / 1e3 / c if c else 0))
    print("  (bytes x: wire bytes without compression / with; CPU x: saver CPU "
          "(user + system) with / without, noisy on a shared machine; zstd ms: "
          "the saver thread's CPU time inside zstd and the sampling, and its "
          "share of the saver's CPU. Targets: linux >= 3x fewer bytes; random "
          "<= 2% more bytes or CPU)")
finally:
    for g in guests:
        stop(g)
        stop(g + "-t")
    subprocess.run(["rm", "-rf", tmp])
if jout:
    with open(jout, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
EOF
