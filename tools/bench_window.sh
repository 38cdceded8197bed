#!/usr/bin/env bash
# Issue 21: the completion window against the exact run, per flow, and its CPU time.
#   tools/bench_window.sh [BASELINE_EPSIM] [--no-256]
# For each case, runs `epsim net` exact (--completion-window 0) and at the default window (1e-3),
# each writing its per-flow CSV, and prints each flow's end error relative to its exact duration
# (every flow starts at 0): the most early and the most late, against the bound 1e-3, with the CPU
# seconds (user + sys) of each run. BASELINE_EPSIM, an epsim binary built before this window rule
# (e.g. main's before issue 21's guarantee), adds its window run as a third column. Exit status 4
# when this build's window is beyond the bound on some case.
set -euo pipefail
cd "$(dirname "$0")/.."
new=build/tools/epsim
old=""
big=1
for a in "$@"; do
  case "$a" in
    --no-256) big=0 ;;
    *) old="$a" ;;
  esac
done
cases=("jitter-128|--nodes 16 --gpus-per-node 8 --pattern alltoall-jitter --bytes 1000000"
       "zipf-128|--nodes 16 --gpus-per-node 8 --pattern zipf --bytes 1000000")
((big)) && cases+=("jitter-256|--nodes 32 --gpus-per-node 8 --pattern alltoall-jitter --bytes 1000000")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# cpu BIN WINDOW CSV: runs it, prints its CPU seconds.
cpu() {
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$1" net $args --completion-window "$2" --csv "$3" > /dev/null
  awk '{printf "%.2f", $1 + $2}' "$tmp/time"
}
status=0
printf "%-11s %-9s %-9s %-9s | %-22s | %-22s\n" case "exact s" "window s" "before s" "window early / late" "before early / late"
for c in "${cases[@]}"; do
  name=${c%%|*}
  args=${c#*|}
  t0=$(cpu "$new" 0 "$tmp/exact.csv")
  t1=$(cpu "$new" 1e-3 "$tmp/window.csv")
  t2=-
  [[ -n "$old" ]] && t2=$(cpu "$old" 1e-3 "$tmp/before.csv")
  line=$(python3 - "$tmp" "$name" "$t0" "$t1" "$t2" <<'PY'
import csv, sys, os
tmp, name, t0, t1, t2 = sys.argv[1:]
def ends(path):
    with open(path) as f:
        return [float(r["completion_us"]) for r in csv.DictReader(f)]
exact = ends(os.path.join(tmp, "exact.csv"))
def worst(path):
    if not os.path.exists(path):
        return None
    rel = [(w - e) / e for w, e in zip(ends(path), exact)]
    return max(0.0, -min(rel)), max(0.0, max(rel))
w, b = worst(os.path.join(tmp, "window.csv")), worst(os.path.join(tmp, "before.csv"))
fmt = lambda p: "%.2e / %.2e" % p if p else "-"
ok = w[0] <= 1e-3 and w[1] <= 1e-3
print("%-11s %-9s %-9s %-9s | %-22s | %-22s %s" % (name, t0, t1, t2, fmt(w), fmt(b), "met" if ok else "EXCEEDED"))
PY
)
  echo "$line"
  [[ "$line" == *EXCEEDED* ]] && status=4
  rm -f "$tmp"/*.csv
done
exit $status
