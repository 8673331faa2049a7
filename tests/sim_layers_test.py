#!/usr/bin/env python3
"""sim_layers_test.py - the sim code has no cycle, and the library never forks.

Reads the built objects ($XCC_BUILD/obj, default build/obj) with nm and the
sources' #include lines, and checks:
  - which sim module calls which (a symbol one defines and another uses)
    follows the layers in libxc-colo/src/domain/sim.h: sim_paths calls no
    sim code, sim_workload only sim_paths, and nothing in the library calls
    the guest body (sim_guest.c), which only the helper executable runs;
  - the call graph and the include graph of the sim files have no cycle;
  - no library object calls fork() (a fork without exec in a library is
    unsafe when the caller has threads; the guest is started with
    posix_spawn).
"""
import glob
import os
import re
import subprocess
import sys

BUILD = os.environ.get("XCC_BUILD", "build")
SRC = "libxc-colo/src/domain"
OBJ = os.path.join(BUILD, "obj", SRC)

# module -> the sim modules it may call
ALLOWED = {
    "sim_paths": set(),
    "sim_workload": {"sim_paths"},
    "sim_guest": {"sim_paths", "sim_workload"},
    "sim_admin": {"sim_paths", "sim_workload"},
    "sim": {"sim_paths", "sim_workload"},
    # xcc_sim_fill: a stopped guest's RAM, through the admin calls
    "sim_fill": {"sim_admin"},
}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def nm(path, flag):
    out = subprocess.run(["nm", flag, path], check=True, capture_output=True,
                         text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if flag == "-u" and len(parts) >= 2:
            syms.add(parts[-1])
        elif flag == "--defined-only" and len(parts) == 3 and parts[1] in "TDBRC":
            syms.add(parts[2])
    return syms


def find_cycle(graph):
    """A list of nodes forming a cycle, or None."""
    state = {}

    def visit(n, path):
        state[n] = 1
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if not state.get(m):
                c = visit(m, path + [m])
                if c:
                    return c
        state[n] = 2
        return None

    for n in sorted(graph):
        if not state.get(n):
            c = visit(n, [n])
            if c:
                return c
    return None


def main():
    objs = {os.path.basename(p)[:-2]: p
            for p in glob.glob(os.path.join(OBJ, "sim*.o"))}
    if set(objs) != set(ALLOWED):
        fail("sim objects in %s are %s, expected %s (is the library built?)"
             % (OBJ, sorted(objs), sorted(ALLOWED)))
        return 1
    defined = {m: nm(p, "--defined-only") for m, p in objs.items()}
    calls = {}
    for m, p in objs.items():
        undef = nm(p, "-u")
        calls[m] = {o for o in objs if o != m and undef & defined[o]}
        for o in sorted(calls[m] - ALLOWED[m]):
            fail("%s.o calls %s.o (%s); allowed: %s"
                 % (m, o, ", ".join(sorted(undef & defined[o])),
                    ", ".join(sorted(ALLOWED[m])) or "nothing"))
        print("ok   %s calls %s" % (m, ", ".join(sorted(calls[m])) or "no sim code"))
    cyc = find_cycle(calls)
    if cyc:
        fail("call cycle: " + " -> ".join(cyc))
    else:
        print("ok   the sim call graph has no cycle")

    incl = {}
    files = glob.glob(os.path.join(SRC, "sim*.[ch]")) + \
        glob.glob("libxc-colo/libexec/*.c")
    for f in files:
        name = os.path.basename(f)
        with open(f) as fh:
            incl[name] = {os.path.basename(h) for h in
                          re.findall(r'^#include "([^"]+)"', fh.read(), re.M)}
    graph = {n: {h for h in hs if h.startswith("sim")} for n, hs in incl.items()}
    cyc = find_cycle(graph)
    if cyc:
        fail("include cycle: " + " -> ".join(cyc))
    else:
        print("ok   the sim include graph has no cycle")
    users = sorted(n for n, hs in graph.items() if "sim_guest.h" in hs)
    if users != ["sim_guest.c", "xcc-sim-guest.c"]:
        fail("sim_guest.h is included by %s; only sim_guest.c and the helper "
             "may" % users)
    else:
        print("ok   only sim_guest.c and the helper include sim_guest.h")

    forkers = []
    for p in sorted(glob.glob(os.path.join(BUILD, "obj/libxc-colo/src/**/*.o"),
                              recursive=True)):
        if nm(p, "-u") & {"fork", "vfork", "_Fork"}:
            forkers.append(os.path.basename(p))
    if forkers:
        fail("library objects call fork: " + ", ".join(forkers))
    else:
        print("ok   no library object calls fork")

    print("sim_layers_test: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
