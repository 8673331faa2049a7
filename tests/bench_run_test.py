#!/usr/bin/env python3
"""Tests of scripts/bench-run and scripts/bench-compare (run by `make test`).

The runner runs a real 2-cell matrix (non-live save of a 64 MiB hotpages sim
guest, plain and --xbzrle, one run each) with the xc-colo named by XCC_BIN,
then the outputs are checked: results.json holds every field, summary.md has
the cells, the charts are valid PNG and SVG files, every guest is cleaned up,
a failing command is recorded rather than crashing. bench-compare is checked
on synthetic results files. No timing value is asserted anywhere.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_RUN = os.path.join(REPO, "scripts", "bench-run")
BENCH_COMPARE = os.path.join(REPO, "scripts", "bench-compare")
SIM_ROOT = "/dev/shm/xc-colo"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHARTS = ("iter-bytes", "cache-miss-rate", "pause-cdf")
GUEST = "64M"
GUEST_BYTES = 64 << 20

# The --stats-json figures issue 5 names (QEMU query-migrate names).
STATS_TOP = ("total-time", "downtime", "setup-time", "ram", "iterations")
STATS_RAM = ("transferred", "remaining", "total", "duplicate", "normal", "normal-bytes",
             "dirty-sync-count", "pages-per-second", "mbps")
STATS_XBZRLE = ("cache-size", "bytes", "pages", "cache-miss", "cache-miss-rate",
                "encoding-rate", "overflow")
RECORD_FIELDS = ("cell", "run", "status", "error", "stderr_tail", "command", "date",
                 "xc_colo_version", "git_commit", "cpu_model", "kernel", "compiler",
                 "mode_args", "wall_s", "stats", "restore_stats", "metrics")
CELL_FIELDS = ("domain", "operation", "workload", "size", "size_bytes", "mode")

sys.path.insert(0, os.path.join(REPO, "scripts"))
import benchlib  # noqa: E402


def xc_colo():
    path = os.environ.get("XCC_BIN")
    if not path:
        build = os.environ.get("XCC_BUILD", "build")
        path = os.path.join(REPO, build, "bin", "xc-colo")
    return path


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO, **kw)


def write_matrix(path, workload="hotpages"):
    matrix = {
        "name": "test-2cell",
        "runs": 1,
        "operations": ["save"],
        "workloads": [workload],
        "sizes": ["256M"],          # --size 64M overrides it
        "modes": ["plain", "xbzrle"],
        "options": {"warmup_s": 0.2, "timeout_s": 120},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(matrix, f)


def guests_named_in(record):
    names = []
    for arg in record.get("command") or []:
        if arg.startswith("sim:"):
            names.append(arg[4:])
    return names


def check_png(test, path):
    test.assertTrue(os.path.isfile(path), "%s is missing" % path)
    with open(path, "rb") as f:
        head = f.read(33)
    test.assertEqual(head[:8], PNG_SIGNATURE, "%s: no PNG signature" % path)
    length, ctype = struct.unpack(">I4s", head[8:16])
    test.assertEqual((length, ctype), (13, b"IHDR"), "%s: first chunk is not IHDR" % path)
    width, height = struct.unpack(">II", head[16:24])
    test.assertGreater(width, 0, path)
    test.assertGreater(height, 0, path)


def check_svg(test, path):
    test.assertTrue(os.path.isfile(path), "%s is missing" % path)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    test.assertIn("<svg", text, "%s: not an SVG" % path)
    test.assertIn("</svg>", text, "%s: truncated SVG" % path)


class BenchRunTest(unittest.TestCase):
    """One real 2-cell run shared by the checks below."""

    @classmethod
    def setUpClass(cls):
        cls.xcc = xc_colo()
        if not os.access(cls.xcc, os.X_OK):
            raise RuntimeError("xc-colo is not built at %s (XCC_BIN)" % cls.xcc)
        cls.tmp = tempfile.mkdtemp(prefix="bench_run_test.")
        cls.out = os.path.join(cls.tmp, "out")
        matrix = os.path.join(cls.tmp, "matrix.json")
        write_matrix(matrix)
        cls.proc = run([sys.executable, BENCH_RUN, "--matrix", matrix, "--size", GUEST,
                        "--runs", "1", "--out", cls.out, "--xc-colo", cls.xcc])
        sys.stderr.write(cls.proc.stderr)
        cls.results = None
        path = os.path.join(cls.out, "results.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                cls.results = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def failures(self):
        if not self.results:
            return "no results.json"
        return "; ".join("%s: %s\n%s" % (r["cell"]["mode"], r["error"], r.get("stderr_tail"))
                         for r in self.results["runs"] if r["status"] != "ok")

    def test_exit_status(self):
        self.assertEqual(self.proc.returncode, 0, "bench-run failed: %s" % self.failures())

    def test_results_hold_every_field(self):
        self.assertIsNotNone(self.results, "results.json is missing")
        for key in ("schema", "matrix", "machine", "started", "finished", "runs"):
            self.assertIn(key, self.results)
        runs = self.results["runs"]
        self.assertEqual([r["cell"]["mode"] for r in runs], ["plain", "xbzrle"])
        for r in runs:
            for key in RECORD_FIELDS:
                self.assertIn(key, r, "run record lacks %s" % key)
            for key in CELL_FIELDS:
                self.assertIn(key, r["cell"])
            self.assertEqual(r["status"], "ok", self.failures())
            self.assertEqual(r["cell"]["operation"], "save")
            self.assertEqual(r["cell"]["workload"], "hotpages")
            self.assertEqual(r["cell"]["size"], GUEST)
            self.assertEqual(r["cell"]["size_bytes"], GUEST_BYTES)
            for key in ("xc_colo_version", "cpu_model", "kernel", "date"):
                self.assertIsInstance(r[key], str, key)
                self.assertTrue(r[key], key)
            stats = r["stats"]
            self.assertIsInstance(stats, dict)
            for key in STATS_TOP:
                self.assertIn(key, stats, "stats lack %s" % key)
            for key in STATS_RAM:
                self.assertIn(key, stats["ram"], "stats lack ram.%s" % key)
            self.assertEqual(stats["ram"]["total"], GUEST_BYTES, "ram.total is the guest size")
            self.assertIsInstance(stats["iterations"], list)
            self.assertTrue(stats["iterations"], "a save has at least iteration 0")
            self.assertEqual(set(r["metrics"]), set(benchlib.METRIC_KEYS))
            self.assertIsNotNone(r["metrics"]["wire_bytes"])
            self.assertIn(r["cell"]["mode"] == "xbzrle", ["--xbzrle" in r["mode_args"]])
            self.assertIn("save", r["command"])
            # Into a tmpfs file (a sink that copies every byte), removed after.
            image = r["command"][-1]
            self.assertTrue(image.startswith("/dev/shm/"), r["command"])
            self.assertFalse(os.path.exists(image), "%s left behind" % image)
        xb = runs[1]["stats"].get("xbzrle-cache")
        self.assertIsInstance(xb, dict, "--xbzrle stats lack xbzrle-cache")
        for key in STATS_XBZRLE:
            self.assertIn(key, xb, "stats lack xbzrle-cache.%s" % key)

    def test_raw_stats_kept_verbatim(self):
        for r in self.results["runs"]:
            path = r["command"][r["command"].index("--stats-json") + 1]
            with open(path, encoding="utf-8") as f:
                self.assertEqual(json.load(f), r["stats"])

    def test_guests_cleaned_up(self):
        for r in self.results["runs"]:
            for name in guests_named_in(r):
                self.assertFalse(os.path.exists(os.path.join(SIM_ROOT, name)),
                                 "guest %s left behind" % name)

    def test_summary_has_the_cells(self):
        with open(os.path.join(self.out, "summary.md"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("Non-live save", text)
        rows = [line for line in text.splitlines() if line.startswith("| hotpages | 64M |")]
        self.assertEqual(len(rows), 2, text)
        self.assertIn("`plain`", rows[0])
        self.assertIn("`xbzrle`", rows[1])
        self.assertIn("1.00×", rows[0], "plain is its own baseline")
        self.assertIn("×", rows[1].split("|", 6)[6], "xbzrle row carries a ratio")
        self.assertIn(self.results["machine"]["cpu_model"], text)

    def test_charts_are_valid(self):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot is not installed (scripts/deps.sh installs gnuplot-nox)")
        for name in CHARTS:
            check_png(self, os.path.join(self.out, "charts", name + ".png"))
            check_svg(self, os.path.join(self.out, "charts", name + ".svg"))

    def test_charts_only_redraws(self):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot is not installed (scripts/deps.sh installs gnuplot-nox)")
        copy_dir = os.path.join(self.tmp, "redraw")
        os.makedirs(copy_dir)
        shutil.copy(os.path.join(self.out, "results.json"), copy_dir)
        proc = run([sys.executable, BENCH_RUN, "--charts-only", "--out", copy_dir])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name in CHARTS:
            check_png(self, os.path.join(copy_dir, "charts", name + ".png"))
            check_svg(self, os.path.join(copy_dir, "charts", name + ".svg"))
        self.assertTrue(os.path.isfile(os.path.join(copy_dir, "summary.md")))


class BenchRunErrorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench_run_test.")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_missing_xc_colo_is_a_clear_error(self):
        matrix = os.path.join(self.tmp, "m.json")
        write_matrix(matrix)
        proc = run([sys.executable, BENCH_RUN, "--matrix", matrix, "--out",
                    os.path.join(self.tmp, "o"), "--xc-colo", "/nonexistent/xc-colo"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("xc-colo not found", proc.stderr)

    def test_bad_matrix_is_a_clear_error(self):
        matrix = os.path.join(self.tmp, "m.json")
        with open(matrix, "w", encoding="utf-8") as f:
            json.dump({"operations": ["save"], "workloads": ["idle"], "sizes": ["64M"],
                       "modes": ["turbo"]}, f)
        proc = run([sys.executable, BENCH_RUN, "--matrix", matrix, "--list"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown mode 'turbo'", proc.stderr)

    def test_failed_command_is_recorded(self):
        xcc = xc_colo()
        if not os.access(xcc, os.X_OK):
            self.skipTest("xc-colo is not built at %s (XCC_BIN)" % xcc)
        matrix = os.path.join(self.tmp, "m.json")
        write_matrix(matrix, workload="no-such-workload")
        out = os.path.join(self.tmp, "o")
        proc = run([sys.executable, BENCH_RUN, "--matrix", matrix, "--size", GUEST,
                    "--runs", "1", "--out", out, "--xc-colo", xcc, "--no-charts"])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            runs = json.load(f)["runs"]
        self.assertEqual(len(runs), 2)
        for r in runs:
            self.assertEqual(r["status"], "failed")
            self.assertIn("sim start", r["error"])
            self.assertTrue(r["stderr_tail"], "the failing command's stderr is kept")
            for name in guests_named_in(r):
                self.assertFalse(os.path.exists(os.path.join(SIM_ROOT, name)))
        with open(os.path.join(out, "summary.md"), encoding="utf-8") as f:
            self.assertIn("did not complete", f.read())


def synthetic(totals, wires, status="ok", cell_mode="plain"):
    runs = []
    for i, (t, w) in enumerate(zip(totals, wires)):
        metrics = dict.fromkeys(benchlib.METRIC_KEYS)
        metrics.update(total_time_ms=t, wire_bytes=w)
        runs.append({"cell": {"domain": "sim", "operation": "live", "workload": "hotpages",
                              "size": "256M", "size_bytes": 256 << 20, "mode": cell_mode},
                     "run": i + 1, "status": status, "error": None if status == "ok" else "boom",
                     "metrics": metrics})
    return runs


class BenchCompareTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench_compare_test.")
        self.old = self.write("old.json", synthetic([100, 110, 105], [1000, 1000, 1000])
                              + synthetic([50, 52, 51], [900, 900, 900], cell_mode="xbzrle"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, runs):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"schema": 1, "machine": {"cpu_model": "test cpu"}, "runs": runs}, f)
        return path

    def compare(self, new_runs, *extra):
        new = self.write("new.json", new_runs)
        return run([sys.executable, BENCH_COMPARE] + list(extra) + [self.old, new])

    def test_regression_is_flagged(self):
        proc = self.compare(synthetic([150, 160, 155], [1000, 1000, 1000])
                            + synthetic([50, 51, 52], [900, 900, 900], cell_mode="xbzrle"))
        self.assertEqual(proc.returncode, 1, proc.stdout)
        flagged = [line for line in proc.stdout.splitlines() if "REGRESSION" in line]
        self.assertEqual(len(flagged), 1, proc.stdout)
        self.assertIn("sim|live|hotpages|256M|plain", flagged[0])
        self.assertIn("total_time_ms", flagged[0])

    def test_change_within_spread_is_clean(self):
        proc = self.compare(synthetic([104, 108, 101], [1000, 1000, 1000])
                            + synthetic([51, 50, 52], [900, 900, 900], cell_mode="xbzrle"))
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertNotIn("REGRESSION", proc.stdout)
        self.assertIn("0 regression(s)", proc.stdout)

    def test_threshold(self):
        runs = synthetic([115, 115, 115], [1000, 1000, 1000]) + \
            synthetic([50, 51, 52], [900, 900, 900], cell_mode="xbzrle")
        self.assertEqual(self.compare(runs, "--threshold", "10").returncode, 0)
        self.assertEqual(self.compare(runs, "--threshold", "0").returncode, 1)

    def test_improvement_is_not_a_regression(self):
        proc = self.compare(synthetic([60, 61, 62], [500, 500, 500])
                            + synthetic([50, 51, 52], [900, 900, 900], cell_mode="xbzrle"))
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("improved", proc.stdout)

    def test_failed_cell_is_a_regression(self):
        proc = self.compare(synthetic([100, 100, 100], [1000, 1000, 1000])
                            + synthetic([0, 0, 0], [0, 0, 0], status="failed",
                                        cell_mode="xbzrle"))
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn("every run failed", proc.stdout)

    def test_unreadable_file(self):
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("{not json")
        proc = run([sys.executable, BENCH_COMPARE, self.old, bad])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("not JSON", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
