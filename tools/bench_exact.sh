#!/usr/bin/env bash
# Issue 21's exact-mode (completion window 0) targets, two epsim binaries back to back: CPU seconds
# (user + sys) of each on the same machine in the same minutes, their ratio, and whether the two
# report.json files are byte-identical (less the "version" line, which names the build).
#   tools/bench_exact.sh BASE_EPSIM NEW_EPSIM [--with-512]
# BASE_EPSIM is typically a copy of main's build/tools/epsim. --with-512 adds the 261,632-flow
# jittered all-to-all (about 5 CPU-minutes per binary today).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ $# -lt 2 || ! -x "$1" || ! -x "$2" ]]; then
  echo "usage: tools/bench_exact.sh BASE_EPSIM NEW_EPSIM [--with-512] (both executable)" >&2
  exit 2
fi
base="$1" new="$2" with512=0
[[ "${3:-}" == "--with-512" ]] && with512=1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

cpu_of() {  # BINARY ARGS...: runs it, prints user + sys CPU seconds; its report (if any) -> $out/<tag>.json
  local tag="$1" bin="$2"
  shift 2
  rm -rf "$out/run"
  /usr/bin/time -f "%U %S" -o "$out/time" "$bin" "$@" >"$out/$tag.log" 2>&1 || { cat "$out/$tag.log" >&2; exit 1; }
  [[ -f "$out/run/report.json" ]] && grep -v '"version"' "$out/run/report.json" >"$out/$tag.json"
  awk '{printf "%.2f", $1 + $2}' "$out/time"
}

row() {  # NAME ARGS...
  local name="$1" a b same="-"
  shift
  rm -f "$out/base.json" "$out/new.json"
  a="$(cpu_of base "$base" "$@")"
  b="$(cpu_of new "$new" "$@")"
  if [[ -f "$out/base.json" ]]; then
    cmp -s "$out/base.json" "$out/new.json" && same="identical" || same="DIFFER"
  fi
  printf "%-22s %10s %10s %7s  %s\n" "$name" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", a / b}')" "$same"
}

net=(net --gpus-per-node 8 --pattern alltoall-jitter --bytes 1000000 --completion-window 0)
seed=(run scenarios/seed.json --no-trace --out "$out/run" --set routing.distribution=zipf --set network.model=flow)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf "%-22s %10s %10s %7s  %s\n" case "base cpu s" "new cpu s" ratio report.json
row jitter-256 "${net[@]}" --nodes 32
row zipf-serial "${seed[@]}" --set schedule.overlap=serial --set schedule.chunks=1
row zipf-serial-2-steps "${seed[@]}" --set schedule.overlap=serial --set schedule.chunks=1 --steps 2
row zipf-dual-8 "${seed[@]}" --set schedule.overlap=dual-microbatch --set schedule.chunks=8
((with512)) && row jitter-512 "${net[@]}" --nodes 64
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
