#!/usr/bin/env bash
# The sweep benchmark (`tools/epsim bench --sweep [SPEC]`): one sweep (default: 1000 random points of
# the seed on the analytical network, scenarios/sweeps/seed-1000.json) run from scratch with -j 1,
# -j 2 and, when this build has MPI, under `mpirun -np 2` with -j 1 per rank. Prints each wall time,
# points per second and the speedup over -j 1, and checks the three runs wrote the same results
# (sorted by id, wall times aside). Wall times on a shared machine are noisy: compare the ratios of
# one run.
set -euo pipefail
cd "$(dirname "$0")/.."
spec="${1:-scenarios/sweeps/seed-1000.json}"
epsim=build/tools/epsim
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

declare -a names walls
timed() {  # timed NAME COMMAND...: runs it, records its wall time in seconds
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$out/$name.log" 2>&1 || { echo "bench --sweep: $name failed:"; tail -5 "$out/$name.log"; exit 1; }
  t1=$(date +%s.%N)
  names+=("$name")
  walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
}

timed "threads -j 1" "$epsim" sweep "$spec" --out "$out/j1" -j 1
timed "threads -j 2" "$epsim" sweep "$spec" --out "$out/j2" -j 2
dirs=("$out/j1" "$out/j2")
if grep -q EPSIM_HAVE_MPI build/build.ninja 2>/dev/null && command -v mpirun >/dev/null; then
  flags=(--oversubscribe)
  [[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
  timed "MPI 2 ranks x -j 1" mpirun "${flags[@]}" -np 2 "$epsim" sweep "$spec" --out "$out/mpi" -j 1
  dirs+=("$out/mpi")
else
  echo "(this build has no MPI: the MPI run is left out)"
fi

points=$(wc -l <"$out/j1/results.jsonl")
printf "%-22s %10s %10s %9s\n" run "wall s" "points/s" speedup
for i in "${!names[@]}"; do
  awk -v n="${names[$i]}" -v w="${walls[$i]}" -v p="$points" -v w0="${walls[0]}" \
    'BEGIN { printf "%-22s %10.1f %10.2f %9.2f\n", n, w, p / w, w0 / w }'
done
python3 - "${dirs[@]}" <<'PY'
import json, sys
def load(d):
    rows = [json.loads(l) for l in open(d + "/results.jsonl")]
    for r in rows: del r["wall_s"]
    return sorted(rows, key=lambda r: r["id"])
first = load(sys.argv[1])
for d in sys.argv[2:]:
    assert load(d) == first, d + " differs from " + sys.argv[1]
print(f"{len(first)} points; every run wrote the same results (sorted by id, wall times aside)")
PY
