#!/usr/bin/env python3
"""The bad-input corpus: every case in cases.txt runs the epsim binary and must give its exit status
and message fragment (tests/bad_inputs/README.md). Prints one line per failure and an outcome table;
exits 1 when any case fails.

usage: run_corpus.py EPSIM [--cases FILE] [--timeout S] [--jobs N] [--only SUBSTRING]
"""
import argparse
import concurrent.futures
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_cases(path):
    cases = []
    for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(" | ", 3)
        if len(parts) != 4:
            sys.exit(f"{path}:{lineno}: want 'name | exit | fragment | arguments', got: {line}")
        name, status, fragment, args = (p.strip() for p in parts)
        fragment = fragment.replace("{f}", os.path.join(HERE, "files"))
        cases.append((lineno, name, int(status), fragment, args))
    names = [c[1] for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"{path}: duplicate case names: {sorted(dup)}")
    return cases


def materialise(word, tmp):
    """Expands {f} (the files folder), {tmp} and the generators {deep:N} (N nested arrays),
    {deepobj:N} (N nested objects) into the words epsim gets."""
    word = word.replace("{f}", os.path.join(HERE, "files")).replace("{tmp}", tmp)
    for kind in ("deep", "deepobj"):
        tag = "{" + kind + ":"
        while tag in word:
            start = word.index(tag)
            end = word.index("}", start)
            n = int(word[start + len(tag):end])
            path = os.path.join(tmp, f"{kind}-{n}.json")
            with open(path, "w") as f:
                if kind == "deep":
                    f.write("[" * n + "]" * n)
                else:
                    f.write('{"a":' * n + "1" + "}" * n)
            word = word[:start] + path + word[end + 1:]
    return word


def run_case(epsim, case, timeout):
    lineno, name, want, fragment, args = case
    with tempfile.TemporaryDirectory(prefix="epsim-corpus-") as tmp:
        argv = [epsim] + [materialise(w, tmp) for w in shlex.split(args)]
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return name, "timeout", f"no exit within {timeout} s", time.monotonic() - t0
        wall = time.monotonic() - t0
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        rc = p.returncode
        if rc < 0:
            return name, "signal", f"killed by {signal.Signals(-rc).name}: {err.strip()[-300:]}", wall
        if rc == 1:
            return name, "exit 1", err.strip()[-300:], wall
        if rc != want:
            kind = "wrong success" if rc == 0 else f"exit {rc}"
            return name, kind, f"want exit {want}; stderr: {err.strip()[-300:]}", wall
        text = err if want != 0 else out + err
        if want == 2 and len(err.strip().splitlines()) != 1:
            return name, "not one line", err.strip()[-300:], wall
        if fragment not in text:
            return name, "wrong message", f"lacks '{fragment}': {text.strip()[-300:]}", wall
        return name, "pass", "", wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("epsim")
    ap.add_argument("--cases", default=os.path.join(HERE, "cases.txt"))
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    epsim = os.path.abspath(a.epsim)
    cases = [c for c in parse_cases(a.cases) if a.only in c[1]]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(lambda c: run_case(epsim, c, a.timeout), cases))
    table = {}
    for name, kind, detail, wall in results:
        table[kind] = table.get(kind, 0) + 1
        if kind != "pass":
            print(f"FAIL {name}: {kind}: {detail}")
    by_status = {}
    for c in cases:
        by_status[c[2]] = by_status.get(c[2], 0) + 1
    slowest = max(results, key=lambda r: r[3]) if results else None
    print(f"bad-input corpus: {len(cases)} cases ({', '.join(f'{n} expect exit {s}' for s, n in sorted(by_status.items()))}) "
          f"in {time.monotonic() - t0:.1f} s; slowest {slowest[0]} {slowest[3]:.2f} s" if slowest else "no cases")
    print(f"  {'outcome':<16} {'cases':>6}")
    for kind in ["pass", "wrong message", "not one line", "wrong success", "exit 1", "signal", "timeout"] + sorted(
            k for k in table if k not in ("pass", "wrong message", "not one line", "wrong success", "exit 1", "signal", "timeout")):
        print(f"  {kind:<16} {table.get(kind, 0):>6}")
    return 0 if table.get("pass", 0) == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
