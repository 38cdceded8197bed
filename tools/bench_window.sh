#!/usr/bin/env bash
# Issue 21: the completion window against the exact run, per flow, and its CPU time.
#   tools/bench_window.sh [BASELINE_EPSIM] [--no-256] [--windows "W1 W2 ..."]
# For each case, runs `epsim net` exact (--completion-window 0) and at each window W (default: 1e-3),
# each writing its per-flow CSV, and prints each flow's end error relative to its exact duration
# (every flow starts at 0): the most early and the most late, against the bound W, with the CPU
# seconds (user + sys) of each run. BASELINE_EPSIM, an epsim binary built before this window rule
# (main at fddcfb3, say), adds its run at each W. Exit status 4 when this build is beyond W on some
# row (the baseline's rows are only printed).
set -euo pipefail
cd "$(dirname "$0")/.."
new=build/tools/epsim
old=""
big=1
windows="1e-3"
while (($#)); do
  case "$1" in
    --no-256) big=0 ;;
    --windows) windows="$2"; shift ;;
    *) old="$1" ;;
  esac
  shift
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
# worst CSV: most early / most late against exact.csv, relative to each flow's exact end.
worst() {
  python3 - "$tmp/exact.csv" "$1" <<'PY'
import csv, sys
ends = lambda p: [float(r["completion_us"]) for r in csv.DictReader(open(p))]
rel = [(w - e) / e for w, e in zip(ends(sys.argv[2]), ends(sys.argv[1]))]
print("%.2e %.2e" % (max(0.0, -min(rel)), max(0.0, max(rel))))
PY
}
status=0
printf "%-11s %-6s %-8s | %-9s %-9s %-8s %-5s | %-9s %-9s %-9s\n" case W "exact s" "early" "late" "cpu s" "bound" "before: early" "late" "cpu s"
for c in "${cases[@]}"; do
  name=${c%%|*}
  args=${c#*|}
  t0=$(cpu "$new" 0 "$tmp/exact.csv")
  for w in $windows; do
    t1=$(cpu "$new" "$w" "$tmp/window.csv")
    read -r e1 l1 <<<"$(worst "$tmp/window.csv")"
    verdict=$(python3 -c "print('met' if max($e1, $l1) <= $w else 'OVER')")
    [[ $verdict == met ]] || status=4
    e2=- l2=- t2=-
    if [[ -n "$old" ]]; then
      t2=$(cpu "$old" "$w" "$tmp/before.csv")
      read -r e2 l2 <<<"$(worst "$tmp/before.csv")"
    fi
    printf "%-11s %-6s %-8s | %-9s %-9s %-8s %-5s | %-9s %-9s %-9s\n" "$name" "$w" "$t0" "$e1" "$l1" "$t1" "$verdict" "$e2" "$l2" "$t2"
  done
done
exit $status
