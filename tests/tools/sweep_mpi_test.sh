#!/usr/bin/env bash
# epsim sweep under mpirun with 2 ranks writes the same results (sorted, wall times aside) as one
# process, and rank 1 does run points. Run by ctest when the build has MPI (CI: Open MPI on 2 cores).
set -u
: "${EPSIM:?set EPSIM to the epsim binary}"
: "${MPIEXEC:?set MPIEXEC to mpirun}"
source "$(dirname "$0")/test_lib.sh"

cat >"$tmp/spec.json" <<'JSON'
{"name": "mpi-40", "base": "scenarios/small-2node.json", "set": {"routing.distribution": "zipf"},
 "axes": [{"key": "schedule.chunks", "values": [1, 2]}],
 "random": {"samples": 20, "seed": 3, "axes": [{"key": "routing.seed", "int": [1, 1000000]}]}}
JSON
# Open MPI refuses root without --allow-run-as-root; --oversubscribe lets 2 ranks share fewer cores.
flags=(--oversubscribe)
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)

"$EPSIM" sweep "$tmp/spec.json" --out "$tmp/one" -j 1 >"$tmp/one.log" 2>&1 && ok || bad "single process: $(tail -2 "$tmp/one.log")"
"$MPIEXEC" "${flags[@]}" -np 2 "$EPSIM" sweep "$tmp/spec.json" --out "$tmp/mpi" -j 1 >"$tmp/mpi.log" 2>&1 \
  && ok || bad "mpirun -np 2: $(tail -5 "$tmp/mpi.log")"
grep -q "x 2 MPI ranks" "$tmp/mpi.log" && ok || bad "the sweep did not run on 2 ranks: $(grep 'epsim sweep:' "$tmp/mpi.log")"
per_rank=$(grep -oE "points run per rank: [0-9]+, [0-9]+" "$tmp/mpi.log" | grep -oE "[0-9]+, [0-9]+")
[[ -n $per_rank && ${per_rank#*, } -gt 0 && ${per_rank%,*} -gt 0 ]] && ok || bad "every rank should run points: '$per_rank'"

python3 - "$tmp/one/results.jsonl" "$tmp/mpi/results.jsonl" <<'PY' && ok || bad "MPI results differ from the single-process run"
import json, sys
def load(path):
    lines = [json.loads(l) for l in open(path)]
    for r in lines: del r["wall_s"]
    return sorted(lines, key=lambda r: r["id"])
one, mpi = load(sys.argv[1]), load(sys.argv[2])
assert len(one) == 40 and len({r["id"] for r in one}) == 40
assert one == mpi
PY
# Rerun under MPI: nothing left to do, nothing duplicated.
"$MPIEXEC" "${flags[@]}" -np 2 "$EPSIM" sweep "$tmp/spec.json" --out "$tmp/mpi" -j 1 >"$tmp/again.log" 2>&1 \
  && grep -q "40 points: 0 run now, 40 already in" "$tmp/again.log" && [[ $(wc -l <"$tmp/mpi/results.jsonl") -eq 40 ]] \
  && ok || bad "MPI rerun: $(tail -3 "$tmp/again.log")"

finish
