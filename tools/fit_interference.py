#!/usr/bin/env python3
"""Fits the interference constants of one dispatch implementation to a measured EP-layer file.

    python3 tools/fit_interference.py kernels/results/ep2-h200x2-2026-11-29.json --impl nccl \
        [--set cost_model.calibration=h200-measured] [--epsim build/tools/epsim]

For every point of the implementation's grid (below) it runs `epsim validate` on the file's cases
of that implementation with the point's constants set (schedule.comm_sms, network.fixed_sm_share,
network.round_stretch, network.fixed_stretch, network.hbm_share), prints the median and max
|error| of those cases, and the same for the constants models/dispatch_impl.cpp holds now
("current"); then the choice: the least max |error| (the target bounds every case); among points
within 0.005 points of it the current constants if they are one (the file cannot tell them
apart: no change without evidence), else the least median. models/dispatch_impl.cpp holds the
chosen constants with this command; nothing else is fitted here. Run from the repository root
after a build (tools/epsim test builds build/tools/epsim).
"""
import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile

GRIDS = {
    # comm_sms x fixed_sm_share x round_stretch x fixed_stretch (hbm_share 0): 600 points
    "nccl": {
        "schedule.comm_sms": [48, 64, 80, 96],
        "network.fixed_sm_share": [0, 0.125, 0.25, 0.375, 0.5],
        "network.round_stretch": [0.8, 1.0, 1.2, 1.4, 1.6, 1.8],
        "network.fixed_stretch": [0, 0.15, 0.3, 0.45, 0.6],
        "network.hbm_share": [0],
    },
    # its 64 blocks hold 64 SMs throughout a round; hbm_share x round_stretch (= fixed_stretch): 24 points
    "peer": {
        "schedule.comm_sms": [64],
        "network.fixed_sm_share": [1],
        "network.round_stretch": [0.75, 1.0, 1.25, 1.5, 1.75, 2.0],
        "network.hbm_share": [0, 0.2, 0.4, 0.6],
    },
}
# Keys set equal to another of the point (the peer's 16 us fixed part cannot be told apart).
SAME = {"peer": {"network.fixed_stretch": "network.round_stretch"}}


def errors(epsim, path, sets, out):
    cmd = [epsim, "validate", path, "--json", out]
    for s in sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fit_interference: {' '.join(cmd)} failed:\n{r.stderr}")
    with open(out) as f:
        return [c["error_pct"] for c in json.load(f)[0]["cases"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--impl", choices=sorted(GRIDS), required=True)
    ap.add_argument("--set", action="append", default=[], help="key=value applied to every point (e.g. the profile)")
    ap.add_argument("--epsim", default="build/tools/epsim")
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="replaces the implementation's grid by these keys and values (a what-if or a quick check)")
    a = ap.parse_args()
    with open(a.file) as f:
        doc = json.load(f)
    doc["cases"] = [c for c in doc["cases"] if c["options"]["dispatch"] == a.impl]
    if not doc["cases"]:
        sys.exit(f"fit_interference: {a.file} has no {a.impl} case")
    grid = GRIDS[a.impl]
    if a.grid:
        try:
            grid = {k: [float(v) if "." in v else int(v) for v in vals.split(",")] for k, vals in (g.split("=", 1) for g in a.grid)}
        except ValueError:
            sys.exit(f"fit_interference: --grid {a.grid}: want KEY=V1,V2,... with numbers")
    keys = list(grid)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = os.path.join(tmp, "cases.json")
        with open(cases, "w") as f:
            json.dump(doc, f)
        print(f"fit_interference: {a.file}, {len(doc['cases'])} {a.impl} cases; " + " x ".join(f"{k} {grid[k]}" for k in keys))
        print("  " + "  ".join(k.split(".")[-1] for k in keys) + "   median %   max %")
        for point in itertools.product(*(grid[k] for k in keys)):
            sets = a.set + [f"{k}={v}" for k, v in zip(keys, point)]
            sets += [f"{k}={dict(zip(keys, point))[src]}" for k, src in SAME.get(a.impl, {}).items() if src in keys and k not in keys]
            e = [abs(x) for x in errors(a.epsim, cases, sets, os.path.join(tmp, "out.json"))]
            rows.append((max(e), statistics.median(e), point))
            print("  " + "  ".join(f"{v:>{len(k.split('.')[-1])}}" for k, v in zip(keys, point)) + f"   {rows[-1][1]:8.2f} {rows[-1][0]:7.2f}", flush=True)
        e = [abs(x) for x in errors(a.epsim, cases, a.set, os.path.join(tmp, "out.json"))]
        current = (max(e), statistics.median(e), None)
        print(f"  current (models/dispatch_impl.cpp): median {current[1]:.2f}%, max {current[0]:.2f}%")
    least = min(r[0] for r in rows + [current])
    tied = [r for r in rows + [current] if r[0] <= least + 0.005]
    if len(tied) > 1:
        print(f"  {len(tied)} of {len(rows) + 1} points share the least max {least:.2f}% (within 0.005; a case no constant moves may bound it)")
    for r in tied:
        if r is not current:
            print("    at " + ", ".join(f"{k} {v}" for k, v in zip(keys, r[2])) + f": median {r[1]:.2f}%, max {r[0]:.2f}%")
    if current in tied:
        print(f"choice: the current constants (median {current[1]:.2f}%, max {current[0]:.2f}%)")
    else:
        best = min(tied, key=lambda r: r[1])
        print("choice: " + ", ".join(f"{k} {v}" for k, v in zip(keys, best[2])) + f": median {best[1]:.2f}%, max {best[0]:.2f}%")


if __name__ == "__main__":
    main()
