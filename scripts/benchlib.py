"""benchlib - what scripts/bench-run and scripts/bench-compare share.

Python 3 standard library only: dom0s are minimal. Nothing here runs a
command; it names the modes, reads figures out of `--stats-json` objects
(tolerating keys that are missing or renamed as the schema grows), and does
the medians and spreads.
"""

import json
import math
import os
import re
import statistics

RESULTS_SCHEMA = 1

# Size suffixes, powers of 1024, as xc-colo's cli_parse_size() reads them.
_SIZE_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)

MIB = 1 << 20


def parse_size(text):
    """Bytes from "256M", "1G", "64MiB" or a plain number; ValueError if bad."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError("expected a size such as 256M or 1G, got %r" % (text,))
    return int(m.group(1)) << _SIZE_SHIFT[m.group(2).upper()]


def format_size(nbytes):
    """The shortest exact name of a size: 268435456 -> "256M"."""
    for suffix, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if nbytes and nbytes % (1 << shift) == 0:
            return "%d%s" % (nbytes >> shift, suffix)
    return str(nbytes)


# ---------------------------------------------------------------------------
# Modes: the matrix's "mode" axis. A mode is a name and the save options it
# adds. "xbzrle:1/16" sizes the cache as a fraction of the guest's RAM,
# "xbzrle:64M" gives it outright.

MODE_DOC = {
    "plain": "no XBZRLE, persistent map cache (the baseline)",
    "xbzrle": "--xbzrle with the default cache size",
    "xbzrle:1/16": "--xbzrle --cache-size RAM/16",
    "xbzrle:1/4": "--xbzrle --cache-size RAM/4",
    "no-map-cache": "--no-map-cache: map per batch and unmap, as stock Xen",
}

BASELINE_MODE = "plain"


def mode_args(mode, guest_bytes):
    """The xc-colo options of a mode, or ValueError naming what is wrong.

    guest_bytes may be None (unknown size): a fractional cache size then
    raises ValueError.
    """
    if isinstance(mode, dict):
        return list(mode.get("args", []))
    if mode == "plain":
        return []
    if mode == "no-map-cache":
        return ["--no-map-cache"]
    if mode == "xbzrle":
        return ["--xbzrle"]
    if mode.startswith("xbzrle:"):
        spec = mode.split(":", 1)[1]
        if "/" in spec:
            num, _, den = spec.partition("/")
            if not (num.isdigit() and den.isdigit() and int(den) > 0):
                raise ValueError("mode %r: bad cache fraction %r" % (mode, spec))
            if guest_bytes is None:
                raise ValueError("mode %r needs the guest size (pass --size)" % mode)
            cache = guest_bytes * int(num) // int(den)
        else:
            cache = parse_size(spec)
        return ["--xbzrle", "--cache-size", format_size(cache)]
    raise ValueError("unknown mode %r (known: %s, xbzrle:SIZE, or "
                     '{"name": ..., "args": [...]})' % (mode, ", ".join(MODE_DOC)))


def mode_name(mode):
    return mode["name"] if isinstance(mode, dict) else mode


def mode_cache_bytes(mode, guest_bytes):
    """The XBZRLE cache size a mode asks for, or None (default or no XBZRLE)."""
    try:
        args = mode_args(mode, guest_bytes)
    except ValueError:
        return None
    if "--cache-size" in args:
        return parse_size(args[args.index("--cache-size") + 1])
    return None


def uses_xbzrle(mode):
    try:
        return "--xbzrle" in mode_args(mode, 1 << 30)
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# Reading figures out of a stats object. Keys follow QEMU's query-migrate
# names; every lookup tolerates a missing key (None) so that the runner
# survives the schema growing or a part of it not existing yet.


def dig(obj, *path):
    """obj[path[0]][path[1]]..., or None if any step is missing."""
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def first(obj, *paths):
    """The first of several candidate paths that is present (not None)."""
    for path in paths:
        value = dig(obj, *path)
        if value is not None:
            return value
    return None


def number(value):
    """A float from a JSON number (or numeric string); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _ms_from(entry, names):
    """A duration in ms from a dict, honouring -us/-ns/_us/_ns key suffixes."""
    if not isinstance(entry, dict):
        return number(entry)
    for name in names:
        for key, scale in ((name, 1.0), (name + "-ms", 1.0), (name + "_ms", 1.0),
                           (name + "-us", 1e-3), (name + "_us", 1e-3),
                           (name + "-ns", 1e-6), (name + "_ns", 1e-6),
                           (name + "-s", 1e3), (name + "_s", 1e3)):
            v = number(entry.get(key))
            if v is not None:
                return v * scale
    return None


def iterations(stats):
    """The per-iteration list of a save/migration (may be empty)."""
    its = first(stats, ("iterations",), ("ram", "iterations"))
    return its if isinstance(its, list) else []


def iteration_bytes(it):
    return number(first(it, ("bytes",), ("transferred",), ("bytes-sent",),
                        ("wire-bytes",)))


def checkpoints(stats):
    """The per-checkpoint list of a checkpoint run (may be empty)."""
    cps = first(stats, ("checkpoints",), ("checkpoint", "checkpoints"),
                ("checkpoint", "list"), ("checkpoint", "epochs"), ("epochs",))
    return cps if isinstance(cps, list) else []


_PAUSE_NAMES = ("pause-time", "pause", "pause_time", "downtime")
_COMMIT_NAMES = ("commit-time", "commit", "commit_time", "ack-time")


def checkpoint_pauses_ms(stats):
    """Pause time of every checkpoint, in ms (entries without one skipped)."""
    out = []
    for cp in checkpoints(stats):
        v = _ms_from(cp, _PAUSE_NAMES)
        if v is not None:
            out.append(v)
    return out


def _percentile_block(stats, names):
    """A {p50, p99, max} dict for pause or commit time, wherever it sits."""
    holders = [stats, dig(stats, "checkpoint"), dig(stats, "checkpoint-stats"),
               dig(stats, "percentiles"), dig(stats, "checkpoint", "percentiles")]
    for holder in holders:
        if not isinstance(holder, dict):
            continue
        for name in names:
            for key in (name, name + "-ms", name + "-us", name + "_ms", name + "_us"):
                block = holder.get(key)
                if isinstance(block, dict) and any(k in block for k in ("p50", "p99", "max")):
                    scale = 1e-3 if key.endswith("us") else 1.0
                    return {k: (number(block.get(k)) * scale
                                if number(block.get(k)) is not None else None)
                            for k in ("p50", "p99", "max")}
    return None


def percentile(values, pct):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


# Metrics the summary and the comparison use. Each: key, column header, unit,
# whether lower is better (None: informational, never flagged).
METRICS = [
    ("wire_bytes", "wire", "bytes", True),
    ("bytes_after_iter0", "after it.0", "bytes", True),
    ("total_time_ms", "total", "ms", True),
    ("downtime_ms", "downtime", "ms", True),
    ("setup_time_ms", "setup", "ms", True),
    ("mbps", "rate", "Mbit/s", False),
    ("pages_per_second", "pages/s", "pages/s", False),
    ("iterations", "iters", "", None),
    ("duplicate_pages", "zero pages", "pages", None),
    ("normal_pages", "normal pages", "pages", None),
    ("xbzrle_pages", "xbzrle pages", "pages", None),
    ("xbzrle_bytes", "xbzrle bytes", "bytes", None),
    ("xbzrle_overflow", "overflow", "pages", None),
    ("cache_size", "cache", "bytes", None),
    ("map_calls", "map calls", "", None),
    ("cache_miss_rate", "miss rate", "fraction", True),
    ("checkpoint_count", "ckpts", "", None),
    ("checkpoints_per_second", "ckpt/s", "1/s", False),
    ("bytes_per_checkpoint", "bytes/ckpt", "bytes", True),
    ("pause_p50_ms", "pause p50", "ms", True),
    ("pause_p99_ms", "pause p99", "ms", True),
    ("pause_max_ms", "pause max", "ms", True),
    ("commit_p50_ms", "commit p50", "ms", True),
    ("commit_p99_ms", "commit p99", "ms", True),
    ("wall_s", "wall", "s", True),
]
METRIC_KEYS = [m[0] for m in METRICS]
LOWER_IS_BETTER = {m[0]: m[3] for m in METRICS}
METRIC_UNIT = {m[0]: m[2] for m in METRICS}


def extract_metrics(stats, wall_s=None):
    """The named figures of one run, each a float or None when absent."""
    m = dict.fromkeys(METRIC_KEYS)
    m["wall_s"] = wall_s
    if not isinstance(stats, dict):
        return m
    m["wire_bytes"] = number(first(stats, ("ram", "transferred"), ("transferred",),
                                   ("bytes",)))
    # stats.c adds sub-millisecond "-ms" twins of QEMU's whole-ms figures.
    m["total_time_ms"] = number(first(stats, ("total-time-ms",), ("total-time",),
                                      ("total_time",)))
    m["downtime_ms"] = number(first(stats, ("downtime-ms",), ("downtime",)))
    m["setup_time_ms"] = number(first(stats, ("setup-time",), ("setup_time",)))
    m["mbps"] = number(first(stats, ("ram", "mbps"), ("mbps",)))
    m["pages_per_second"] = number(first(stats, ("ram", "pages-per-second")))
    m["duplicate_pages"] = number(first(stats, ("ram", "duplicate")))
    m["normal_pages"] = number(first(stats, ("ram", "normal")))
    its = iterations(stats)
    if its:
        m["iterations"] = float(len(its))
        later = [iteration_bytes(it) for it in its[1:]]
        if all(v is not None for v in later):
            m["bytes_after_iter0"] = float(sum(later))
    else:
        m["iterations"] = number(first(stats, ("ram", "dirty-sync-count")))
    xb = first(stats, ("xbzrle-cache",), ("xbzrle_cache",))
    if isinstance(xb, dict):
        m["xbzrle_pages"] = number(xb.get("pages"))
        m["xbzrle_bytes"] = number(xb.get("bytes"))
        m["xbzrle_overflow"] = number(xb.get("overflow"))
        m["cache_size"] = number(xb.get("cache-size"))
        m["cache_miss_rate"] = number(xb.get("cache-miss-rate"))
        # A rate over no lookups at all (no XBZRLE, or a single pass) is no
        # figure, whatever the writer put there.
        lookups = [number(xb.get(k)) for k in ("cache-miss", "cache-hit")]
        if all(v is not None for v in lookups) and sum(lookups) == 0:
            m["cache_miss_rate"] = None
        if not m["cache_size"]:
            m["cache_size"] = None
    mc = first(stats, ("map-cache",), ("map_cache",))
    if isinstance(mc, dict):
        m["map_calls"] = number(mc.get("map-calls"))

    cps = checkpoints(stats)
    count = number(first(stats, ("checkpoint", "count"), ("checkpoint-count",),
                         ("checkpoint", "checkpoints"), ("checkpoints-sent",)))
    if count is None and cps:
        count = float(len(cps))
    m["checkpoint_count"] = count
    if count:
        m["checkpoints_per_second"] = number(first(
            stats, ("checkpoint", "rate"), ("checkpoints-per-second",),
            ("checkpoint", "per-second"), ("checkpoint", "checkpoints-per-second")))
        cp_bytes = [iteration_bytes(cp) for cp in cps]
        if cps and all(v is not None for v in cp_bytes):
            m["bytes_per_checkpoint"] = statistics.mean(cp_bytes)
        if m["checkpoints_per_second"] is None:
            seconds = number(first(stats, ("checkpoint", "seconds"),
                                   ("checkpoint", "time"), ("checkpoint-time",)))
            if seconds is None and cps:
                stamps = [number(first(cp, ("time",), ("t",), ("start",))) for cp in cps]
                if len(cps) > 1 and all(s is not None for s in stamps):
                    # Stamps are ms since the start of the run (QEMU's unit).
                    span = (stamps[-1] - stamps[0]) / 1000.0
                    if span > 0:
                        m["checkpoints_per_second"] = (len(cps) - 1) / span
    pauses = checkpoint_pauses_ms(stats)
    block = _percentile_block(stats, _PAUSE_NAMES)
    if block:
        m["pause_p50_ms"], m["pause_p99_ms"], m["pause_max_ms"] = (
            block["p50"], block["p99"], block["max"])
    elif pauses:
        m["pause_p50_ms"] = percentile(pauses, 50)
        m["pause_p99_ms"] = percentile(pauses, 99)
        m["pause_max_ms"] = max(pauses)
    commits = [v for v in (_ms_from(cp, _COMMIT_NAMES) for cp in cps) if v is not None]
    block = _percentile_block(stats, _COMMIT_NAMES)
    if block:
        m["commit_p50_ms"], m["commit_p99_ms"] = block["p50"], block["p99"]
    elif commits:
        m["commit_p50_ms"] = percentile(commits, 50)
        m["commit_p99_ms"] = percentile(commits, 99)
    return m


# ---------------------------------------------------------------------------
# Results files.


def cell_id(cell):
    """One string naming a cell; the same cell in two result files matches."""
    return "|".join([cell.get("domain", "sim"), cell["operation"], cell["workload"],
                     cell["size"], cell["mode"]])


def load_results(path):
    """The run records of a results.json; ValueError naming what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError("%s: %s" % (path, e.strerror or e)) from None
    except json.JSONDecodeError as e:
        raise ValueError("%s: not JSON: %s" % (path, e)) from None
    runs = data.get("runs") if isinstance(data, dict) else data
    if not isinstance(runs, list):
        raise ValueError("%s: no \"runs\" list (is this a bench-run results.json?)" % path)
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or not isinstance(run.get("cell"), dict):
            raise ValueError("%s: runs[%d] has no cell" % (path, i))
        for key in ("operation", "workload", "size", "mode"):
            if not isinstance(run["cell"].get(key), str):
                raise ValueError("%s: runs[%d].cell.%s is missing" % (path, i, key))
    return data if isinstance(data, dict) else {"runs": runs}


def group_cells(runs):
    """{cell id: {"cell": cell, "runs": [records]}} in first-seen order."""
    cells = {}
    for run in runs:
        key = cell_id(run["cell"])
        cells.setdefault(key, {"cell": run["cell"], "runs": []})["runs"].append(run)
    return cells


def spread(runs, metric):
    """{median, min, max, n} of a metric over the successful runs, or None."""
    values = [run["metrics"].get(metric) for run in runs
              if run.get("status") == "ok" and isinstance(run.get("metrics"), dict)]
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values), "n": len(values)}


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def human(value, unit):
    """A short human form of a figure for tables."""
    if value is None:
        return "-"
    if unit == "bytes":
        for suffix, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if abs(value) >= scale:
                return "%.3g %s" % (value / scale, suffix)
        return "%d B" % value
    if unit == "fraction":
        return "%.1f%%" % (100.0 * value if value <= 1.0 else value)
    if unit == "ms":
        return "%.3g ms" % value if value < 1000 else "%.4g s" % (value / 1000.0)
    if unit == "s":
        return "%.3g s" % value
    if unit == "Mbit/s" and value >= 1000:
        return "%.3g Gbit/s" % (value / 1000.0)
    if unit in ("", "pages"):
        return "%d" % value if float(value).is_integer() else "%.3g" % value
    return "%.4g %s" % (value, unit)
