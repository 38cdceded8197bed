#!/usr/bin/env bash
# The sweep benchmark: `tools/epsim bench --sweep [SPEC] [ROUNDS]`. One sweep (default: 1000 random
# points of the seed on the analytical network, scenarios/sweeps/seed-1000.json) run from scratch with
# -j 1, with -j 2 and, when this build has MPI, under `mpirun -np 2` with -j 1 per rank; ROUNDS
# (default 1) times, the three one after another in each round, so that a change in the machine's
# load hits every configuration of a round alike. Prints each run's wall time and points per second,
# each round's speedups over -j 1 and their medians, and checks every run wrote the same results
# (sorted by id, wall times aside). Each run's CPU time (user + system, its processes and threads
# together) over its wall time is the cores it got: on a shared machine the speedup is read beside it.
# EPSIM=path runs another binary (e.g. a copy, so that a rebuild during a long benchmark cannot swap it).
set -euo pipefail
cd "$(dirname "$0")/.."
spec="${1:-scenarios/sweeps/seed-1000.json}"
rounds="${2:-1}"
epsim="${EPSIM:-build/tools/epsim}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

configs=("threads -j 1" "threads -j 2")
mpi=()
if grep -q EPSIM_HAVE_MPI build/build.ninja 2>/dev/null && command -v mpirun >/dev/null; then
  mpi=(mpirun --oversubscribe -np 2)
  [[ $(id -u) -eq 0 ]] && mpi=(mpirun --oversubscribe --allow-run-as-root -np 2)
  configs+=("MPI 2 ranks x -j 1")
else
  echo "(this build has no MPI: the MPI run is left out)"
fi

run() {  # run CONFIG DIR
  case "$1" in
    "threads -j 1") "$epsim" sweep "$spec" --out "$2" -j 1 ;;
    "threads -j 2") "$epsim" sweep "$spec" --out "$2" -j 2 ;;
    *) "${mpi[@]}" "$epsim" sweep "$spec" --out "$2" -j 1 ;;
  esac
}

printf "%-6s %-22s %10s %8s %11s %10s %9s\n" round run "wall s" "CPU s" "cores used" "points/s" speedup
dirs=()
for ((r = 1; r <= rounds; ++r)); do
  base=
  for i in "${!configs[@]}"; do
    dir="$out/r$r-$i"
    t0=$(date +%s.%N)
    # CPU time of the run's whole process tree (mpirun's ranks are its waited-for children).
    /usr/bin/time -f "%U %S" -o "$dir.cpu" bash -c "$(declare -f run); $(declare -p epsim spec mpi); run \"\$1\" \"\$2\"" _ \
      "${configs[$i]}" "$dir" >"$dir.log" 2>&1 || { echo "bench --sweep: ${configs[$i]} failed:"; tail -5 "$dir.log"; exit 1; }
    t1=$(date +%s.%N)
    dirs+=("$dir")
    points=$(wc -l <"$dir/results.jsonl")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    cpu=$(awk '{ print $1 + $2 }' "$dir.cpu")
    [[ -z $base ]] && base=$wall
    awk -v r="$r" -v n="${configs[$i]}" -v w="$wall" -v c="$cpu" -v p="$points" -v w0="$base" \
      'BEGIN { printf "%-6s %-22s %10.1f %8.1f %11.2f %10.2f %9.2f\n", r, n, w, c, c / w, p / w, w0 / w }' | tee -a "$out/table"
  done
done
# Median speedup of each configuration over the rounds.
for n in "${configs[@]:1}"; do
  grep -F "$n" "$out/table" | awk '{ print $NF }' | sort -n | awk -v n="$n" '{ v[NR] = $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median speedup of %s over -j 1: %.2f (%d round%s)\n", n, m, NR, (NR > 1 ? "s" : "") }'
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
