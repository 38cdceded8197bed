#!/usr/bin/env python3
"""Seeded, bounded mutation fuzzer over the shipped scenarios (issue 20).

Each case takes a shipped scenario (scenarios/*.json, most of them trimmed to a few layers so that a
valid mutant is cheap), applies one or two mutations and runs `epsim run` (1 case in 10:
`epsim explain`) on it. Every case must end with exit status 0 or 2: never 1 (an internal error),
never a signal, never past its time budget. Mutations that make the input invalid by construction
(a value of the wrong type, out of every key's range, an unknown or duplicated key, nesting past 64
levels, a cut document, ...) must give exit 2: an exit 0 there is a wrong success.

Time budget per case, proportional to the size of what it asks (documented in
tests/bad_inputs/README.md):
    budget = 20 s + 40 us x layers x GPUs x micro-batches x chunks + 0.25 us x layers x GPUs^2
             + 10 ns x (search_moves + experts) x layers x GPUs x experts x experts per GPU
               (the last term only under topology_aware)
(the step's task graph, each layer's traffic matrices, and the placement search); all of it times
--budget-scale. Each child runs with its address
space capped (--memory-gb) so that a runaway allocation ends as a failure, not a swapped machine.

usage: fuzz_scenarios.py EPSIM [--seed S] [--cases N] [--jobs J] [--save DIR] [--budget-scale X] [--only I,J]
Prints the case count and an outcome table per mutation; exits 1 on any failure.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Values out of every integer key's range (all minimums are >= 0, all maximums < 2^63) and of every
# number key's (minimums >= 0, maximums <= 1e7), plus wrong types: each must be refused.
BAD_INT = ["-4611686018427387904", "9223372036854775808", "18446744073709551616", "2.5", "1e999", '"7"', "true", "null", "[]", "{}"]
BAD_NUM = ["-1e300", "1e300", "1e999", "-1e999", '"fast"', "true", "null", "[1]", "{}"]
BAD_STR = ["5", "-1", "true", "null", "[]", '{"a": 1}']
BAD_BOOL = ["1", "0", '"true"', "null", "[]"]
BAD_OBJ = ["7", '"x"', "[]", "true", "null"]
# Plausible values: these may be valid or not (either exit is fine).
NUDGE_INT = lambda v, r: r.choice([0, 1, 2, 3, 7, 8, 16, 64, 256, 4096, 4097, -1, v + 1, max(v - 1, 0), v * 2, v // 2, v * 10])
NUDGE_NUM = lambda v, r: r.choice([0.0, 1e-9, 0.001, 0.5, 1.0, 2.0, 16.0, 1e6, 1e7, v * 2, v / 2, v * 10, -v])
WORDS = ["uniform", "zipf", "hot", "trace", "uniform-sampled", "bias", "none", "flow", "analytical", "direct", "hierarchical",
         "per-token", "nccl", "peer", "ideal", "serial", "dual-microbatch", "decode-5stage", "prefill", "decode", "training",
         "eplb", "contiguous", "round_robin", "random", "colocated", "topology_aware", "file", "even", "nearest", "mha", "mla",
         "deepseek-v3", "seed", "h100-seed", "h100-sxm", "h800", "h200", "h200-measured", "local", "routed", "grouped",
         "per-expert", "auto", "global", "", "scenarios/traces/small-2node-skewed.json", "scenarios/seed.json", "/dev/zero"]


def key_types(epsim):
    """Every declared key and its type, from `epsim keys` (so keys added later are fuzzed too)."""
    out = subprocess.run([epsim, "keys"], capture_output=True, text=True, check=True).stdout
    types = {}
    for m in re.finditer(r"^\| `([^`]+)` \| (\w+) \|", out, re.M):
        types[m.group(1)] = m.group(2)
    return types


def trimmed(doc):
    """The scenario with at most dense_layers + 2 layers (a valid mutant then costs ~1/15 of it)."""
    d = json.loads(json.dumps(doc))
    model = d.setdefault("model", {})
    dense = model.get("dense_layers", 3 if "hf_config" not in model else 1)
    model["layers"] = min(model.get("layers", 61), dense + 2)
    model["dense_layers"] = min(dense, model["layers"])
    return d


def get_path(doc, path):
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_path(doc, path, value):
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def size_of(doc):
    """What a (possibly mutated) document asks for: layers x GPUs x micro-batches x chunks, layers x
    GPUs^2, and topology_aware's search work ((moves + experts) x layers x GPUs x experts x experts
    per GPU; else 0)."""
    # Each factor at most its limit (scenarios/README.md, Limits): a larger value is refused at once.
    def num(path, default, limit):
        v = get_path(doc, path)
        return min(v, limit) if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default
    gpus = min(4096, num("cluster.gpus", num("cluster.nodes", 32, 4096) * num("cluster.gpus_per_node", 8, 4096), 4096))
    micro = 1 if get_path(doc, "schedule.overlap") in (None, "serial") else 2
    layers = num("model.layers", 61, 1024)
    units = min(1 << 22, layers * gpus * micro * num("schedule.chunks", 1, 64))
    traffic = layers * gpus * gpus
    search = 0
    if get_path(doc, "placement.strategy") == "topology_aware":
        experts = num("model.routed_experts", 256, 4096)
        per_gpu = max(1, experts // max(1, num("parallelism.ep", gpus, 4096)))
        search = (num("placement.search_moves", 4000, 10**6) + experts) * layers * gpus * experts * per_gpu
    return units, traffic, search


def budget(doc, scale):
    """The documented budget (README.md here): 20 s + 40 us per step unit + 0.25 us per layer and
    GPU pair + 10 ns per topology_aware search unit."""
    units, traffic, search = size_of(doc)
    return scale * (20.0 + 40e-6 * units + 0.25e-6 * traffic + 10e-9 * search)


class Mutator:
    def __init__(self, types, rng):
        self.types = types
        self.r = rng

    def leaf_keys(self, doc):
        return [k for k, t in self.types.items() if "." in k and get_path(doc, k) is not None] or list(self.types)

    def pick_key(self, doc, want=None):
        keys = [k for k, t in self.types.items() if "." in k and (want is None or t in want)]
        present = [k for k in keys if get_path(doc, k) is not None]
        return self.r.choice(present if present and self.r.random() < 0.6 else keys)

    # Each returns (kind, must_fail, new_doc or None, new_text or None).
    def bad_type(self, doc):
        k = self.pick_key(doc)
        t = self.types[k]
        pool = {"integer": BAD_INT, "number": BAD_NUM, "string": BAD_STR, "bool": BAD_BOOL, "boolean": BAD_BOOL, "object": BAD_OBJ}.get(t, BAD_OBJ)
        raw = self.r.choice(pool)
        text = json.dumps(doc)
        placeholder = "\u0001FUZZ\u0001"
        set_path(doc, k, placeholder)
        return f"bad value ({t})", True, None, json.dumps(doc).replace(json.dumps(placeholder), raw)

    def unknown_key(self, doc):
        sections = [k for k, t in self.types.items() if t == "object"]
        sec = self.r.choice(sections + [""])
        name = self.r.choice(["bogus", "Layers", "layer", "nodes ", "x" * 200, "\u00e9", "__proto__"])
        set_path(doc, (sec + "." if sec else "") + name, self.r.choice([1, "x", [], {}]))
        return "unknown key", True, doc, None

    def duplicate_key(self, doc):
        text = json.dumps(doc, indent=1)
        keys = [m for m in re.finditer(r'^( *)("[^"]+": )([^\n{\[]*?),?$', text, re.M)]
        if not keys:
            return "duplicate key", True, None, text.replace("{", '{"name": "a", "name": "a", ', 1)
        m = self.r.choice(keys)
        line = m.group(0).rstrip(",")
        return "duplicate key", True, None, text[:m.start()] + line + ",\n" + text[m.start():]

    def deep(self, doc):
        n = self.r.choice([65, 100, 1000, 100000])
        k = self.pick_key(doc)
        placeholder = "\u0001DEEP\u0001"
        set_path(doc, k, placeholder)
        return "nesting > 64", True, None, json.dumps(doc).replace(json.dumps(placeholder), "[" * n + "]" * n)

    def section_type(self, doc):
        sec = self.r.choice([k for k, t in self.types.items() if t == "object"])
        placeholder = "\u0001SEC\u0001"
        doc[sec] = placeholder
        return "section not an object", True, None, json.dumps(doc).replace(json.dumps(placeholder), self.r.choice(BAD_OBJ))

    def truncate(self, doc):
        text = json.dumps(doc, indent=1)
        cut = self.r.randrange(0, max(1, len(text.rstrip()) - 1))
        return "cut document", True, None, text[:cut]

    def huge_literal(self, doc):
        k = self.pick_key(doc, {"integer", "number"})
        placeholder = "\u0001HUGE\u0001"
        set_path(doc, k, placeholder)
        lit = self.r.choice(["1e999", "-1e999", "1" + "0" * 400, "9" * 30, "1e-400e5", "-"])
        return "number past its type", True, None, json.dumps(doc).replace(json.dumps(placeholder), lit)

    def nudge(self, doc):
        k = self.pick_key(doc, {"integer", "number"})
        v = get_path(doc, k)
        if self.types[k] == "integer":
            v = v if isinstance(v, int) and not isinstance(v, bool) else 4
            set_path(doc, k, NUDGE_INT(v, self.r))
        else:
            v = v if isinstance(v, (int, float)) and not isinstance(v, bool) else 1.0
            set_path(doc, k, NUDGE_NUM(float(v), self.r))
        return "plausible number", False, doc, None

    def word(self, doc):
        k = self.pick_key(doc, {"string"})
        set_path(doc, k, self.r.choice(WORDS))
        return "plausible word", False, doc, None

    def delete(self, doc):
        keys = self.leaf_keys(doc)
        k = self.r.choice(keys)
        parts = k.split(".")
        node = get_path(doc, ".".join(parts[:-1])) if len(parts) > 1 else doc
        if isinstance(node, dict):
            node.pop(parts[-1], None)
        return "deleted key", False, doc, None

    def byte_flip(self, doc):
        text = bytearray(json.dumps(doc, indent=1).encode())
        for _ in range(self.r.randint(1, 3)):
            i = self.r.randrange(len(text))
            text[i] = self.r.choice(b'0123456789-+.eE"{}[],: \\\x00\xff')
        return "flipped bytes", False, None, text.decode("latin-1")

    def mutate(self, doc):
        ops = [(self.bad_type, 22), (self.unknown_key, 6), (self.duplicate_key, 6), (self.deep, 4), (self.section_type, 4),
               (self.truncate, 5), (self.huge_literal, 6), (self.nudge, 25), (self.word, 10), (self.delete, 6), (self.byte_flip, 6)]
        op = self.r.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
        if op in (self.nudge, self.word, self.delete) and self.r.random() < 0.3:  # a second, document-level one
            op(doc)
        return op(doc)


def run_case(epsim, i, base_name, base_doc, types, seed, scale, memory_gb, save):
    r = random.Random(seed * 1_000_003 + i)
    doc = json.loads(json.dumps(base_doc))
    kind, must_fail, new_doc, text = Mutator(types, r).mutate(doc)
    if text is None:
        text = json.dumps(new_doc, indent=1)
    explain = r.random() < 0.1
    try:
        parsed = json.loads(text)
        sized = parsed if isinstance(parsed, dict) else base_doc
    except (ValueError, RecursionError):
        sized = base_doc
    limit = budget(sized, scale)
    with tempfile.TemporaryDirectory(prefix="epsim-fuzz-") as tmp:
        path = os.path.join(tmp, "scenario.json")
        with open(path, "w", encoding="latin-1", errors="replace") as f:
            f.write(text)
        argv = [epsim, "explain", path, "--op", r.choice(["gate", "expert_mlp", "attention_core"])] if explain else \
            [epsim, "run", path, "--no-trace", "--out", os.path.join(tmp, "out")]

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (memory_gb << 30, memory_gb << 30))
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=limit, preexec_fn=cap if memory_gb else None)
            rc, err = p.returncode, p.stderr.decode(errors="replace").strip()
        except subprocess.TimeoutExpired:
            rc, err = None, f"no exit within its budget of {limit:.1f} s"
        wall = time.monotonic() - t0
        if rc is None:
            outcome = "timeout"
        elif rc < 0:
            outcome = "signal"
            err = f"{signal.Signals(-rc).name}: {err[-400:]}"
        elif rc == 1:
            outcome = "exit 1"
        elif rc == 0 and must_fail:
            outcome = "wrong success"
        elif rc in (0, 2):
            outcome = f"exit {rc}"
        else:
            outcome = f"exit {rc}"
        failed = outcome not in ("exit 0", "exit 2")
        if failed and save:
            os.makedirs(save, exist_ok=True)
            with open(os.path.join(save, f"case-{i}.json"), "w", encoding="latin-1", errors="replace") as f:
                f.write(text)
            with open(os.path.join(save, f"case-{i}.txt"), "w") as f:
                f.write(f"base {base_name}; mutation {kind}; argv {argv[:2] + ['case-%d.json' % i] + argv[3:]}\n{outcome}: {err}\n")
    return i, base_name, kind, outcome, err[-300:], wall, limit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("epsim")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--save", default="", help="folder for failing cases (input and message)")
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every case's time budget (sanitizer builds)")
    ap.add_argument("--memory-gb", type=int, default=6, help="address-space cap per case (0: none; ASan needs 0)")
    ap.add_argument("--full-share", type=float, default=0.1, help="share of cases on untrimmed scenarios")
    ap.add_argument("--only", default="", help="comma-separated case numbers to run (reproduce a failure)")
    a = ap.parse_args()
    epsim = os.path.abspath(a.epsim)
    types = key_types(epsim)
    bases = []
    for path in sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.json"))):
        doc = json.load(open(path))
        name = os.path.relpath(path, ROOT)
        bases.append((name, doc))
        bases.append((name + " (trimmed)", trimmed(doc)))
    r = random.Random(a.seed)
    plan = []
    for i in range(a.cases):
        full = [b for b in bases if not b[0].endswith("(trimmed)")]
        trim = [b for b in bases if b[0].endswith("(trimmed)")]
        plan.append((i,) + r.choice(full if r.random() < a.full_share else trim))
    if a.only:
        keep = {int(x) for x in a.only.split(",")}
        plan = [p for p in plan if p[0] in keep]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(lambda c: run_case(epsim, c[0], c[1], c[2], types, a.seed, a.budget_scale, a.memory_gb, a.save), plan))
    wall = time.monotonic() - t0
    outcomes = ["exit 0", "exit 2", "wrong success", "exit 1", "signal", "timeout"]
    table = {}
    for _, _, kind, outcome, _, _, _ in results:
        table.setdefault(kind, {}).setdefault(outcome, 0)
        table[kind][outcome] += 1
    failures = [x for x in results if x[3] not in ("exit 0", "exit 2")]
    for i, base, kind, outcome, err, w, lim in failures[:40]:
        print(f"FAIL case {i} ({base}, {kind}): {outcome}: {err}")
    slow = max(results, key=lambda x: x[5])
    tight = max(results, key=lambda x: x[5] / x[6])
    print(f"fuzz: {len(results)} cases, seed {a.seed}, {a.jobs} jobs, {wall:.1f} s wall; slowest: case {slow[0]} "
          f"({slow[1]}, {slow[2]}, {slow[3]}) {slow[5]:.2f} s of its {slow[6]:.0f} s budget; "
          f"largest share of a budget {tight[5] / tight[6]:.3f} (case {tight[0]})")
    print(f"  {'mutation':<24}" + "".join(f"{o:>15}" for o in outcomes))
    for kind in sorted(table):
        print(f"  {kind:<24}" + "".join(f"{table[kind].get(o, 0):>15}" for o in outcomes))
    totals = {o: sum(t.get(o, 0) for t in table.values()) for o in outcomes}
    print(f"  {'total':<24}" + "".join(f"{totals[o]:>15}" for o in outcomes))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
