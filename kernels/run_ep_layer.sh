#!/usr/bin/env bash
# Build, check and time the expert-parallel MoE layer (epsim-ep-layer) on every GPU of this host,
# over the grid of issue 8, in one go.
#   kernels/run_ep_layer.sh [grid|smoke]
# Writes under $OUT (default ./ep-out): ep-layer.json (all cases merged), ep-layer.log (stderr of
# every run), env.txt, build.log. Prints the per-case table last.
# Env: EP_BIN (use this binary if it runs here; otherwise build), GIT_COMMIT, LABEL (file name),
#      EXPERTS (default 32), TOKENS (default "256 1024 4096 16384"), DISPATCH (default "nccl peer"),
#      LAYERS2_TOKENS (tokens per GPU of the extra 2-layer cases, default 4096; empty: none),
#      EXTRA (more epsim-ep-layer arguments for every run, e.g. "--gpus 1"),
#      ATTN (the attention block of every run, e.g. "--attention gqa --seq-len 512": each micro-batch
#      a whole decoder layer, dual micro-batches interleaved; default none),
#      SMOKE_TOKENS (tokens per GPU of the smoke case; default 512, smoke mode 256, with ATTN 1024:
#      two micro-batches of whole sequences).
set -u -o pipefail
# Never use NVLink multicast on shared hosts.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

HERE=$(cd "$(dirname "$0")" && pwd)
MODE=${1:-grid}
OUT=${OUT:-$PWD/ep-out}
mkdir -p "$OUT"
BUILD=${BUILD:-$HERE/build-ep}
LABEL=${LABEL:-ep-layer}
LOG="$OUT/$LABEL.log"
EXPERTS=${EXPERTS:-32}
TOKENS=${TOKENS:-256 1024 4096 16384}
DISPATCH=${DISPATCH:-nccl peer}
LAYERS2_TOKENS=${LAYERS2_TOKENS-4096}
ATTN=${ATTN:-}
SMOKE_TOKENS=${SMOKE_TOKENS:-}
if [ -n "$ATTN" ]; then SMOKE_TOKENS=${SMOKE_TOKENS:-1024}; fi
: > "$LOG"

{
  echo "== date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,temperature.gpu --format=csv
  nvidia-smi topo -m 2>/dev/null | head -6
  nvcc --version | tail -1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64:/usr/local/cuda/lib

BIN=${EP_BIN:-}
if [ -n "$BIN" ] && ! "$BIN" --help > /dev/null 2>&1; then
  echo "== $BIN does not run here; building"
  BIN=
fi
if [ -z "$BIN" ]; then
  t0=$(date +%s)
  if cmake -S "$HERE" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" \
       > "$OUT/build.log" 2>&1 && ninja -C "$BUILD" epsim-ep-layer >> "$OUT/build.log" 2>&1; then
    BIN="$BUILD/epsim-ep-layer"
    echo "== built in $(( $(date +%s) - t0 )) s"
  else
    tail -30 "$OUT/build.log"
    exit 2
  fi
fi
echo "== binary: $BIN"
SMI=$(nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit --format=csv,noheader 2>/dev/null | tr '\n' ';')
COMMON=(--experts "$EXPERTS" --git "${GIT_COMMIT:-unknown}" --smi "$SMI" ${EXTRA:-} $ATTN)
rc=0
parts=()
run() {  # name, time limit (s), args...
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*" | tee -a "$LOG"
  timeout "$limit" "$BIN" "${COMMON[@]}" --out "$OUT/part-$name.json" "$@" > /tmp/ep-part.txt 2>> "$LOG"
  local r=$?
  cat /tmp/ep-part.txt >> "$OUT/tables.txt"
  tail -n +3 /tmp/ep-part.txt
  [ $r -ne 0 ] && { echo "== $name: exit code $r"; tail -5 "$LOG"; rc=1; }
  [ -s "$OUT/part-$name.json" ] && parts+=("$OUT/part-$name.json")
  return $r
}

if [ "$MODE" = smoke ]; then
  run smoke 120 --tokens-per-gpu "${SMOKE_TOKENS:-256}" --skew uniform,zipf:1.2 --overlap serial,dual --chunks 1,2 --dispatch nccl,peer \
      --layers 2 --min-iters 3 --warmup 1
else
  # a quick smoke case first: stop early if the layer is broken
  run smoke 90 --tokens-per-gpu "${SMOKE_TOKENS:-512}" --skew zipf:1.2 --overlap dual --chunks 2 --dispatch nccl,peer --layers 2 \
      --min-iters 3 --warmup 1
  r=$?
  # exit code 1 = a failed check (keep going: the grid records it); anything else = crash/hang
  if [ $r -ne 0 ] && [ $r -ne 1 ]; then echo "== smoke crashed (exit $r); stopping"; exit 1; fi
  rm -f "$OUT/part-smoke.json"; parts=()
  for d in $DISPATCH; do
    run "$d" 240 --dispatch "$d" --tokens-per-gpu "$(echo $TOKENS | tr ' ' ',')" --skew uniform,zipf:1.2 \
        --overlap serial,dual --chunks 1,4
  done
  for t in $LAYERS2_TOKENS; do
    run "layers2-$t" 150 --dispatch nccl,peer --tokens-per-gpu "$t" --skew uniform,zipf:1.2 --overlap serial,dual \
        --chunks 1,4 --layers 2
  done
fi

# merge the parts into one file (same top-level fields as each part; cases concatenated)
python3 - "$OUT/$LABEL.json" "${parts[@]}" <<'EOF'
import json, sys
out, parts = sys.argv[1], sys.argv[2:]
merged = None
for p in parts:
    d = json.load(open(p))
    if merged is None:
        merged = d
        merged["commands"] = [d["command"]]
    else:
        merged["cases"] += d["cases"]
        merged["commands"].append(d["command"])
if merged is None:
    sys.exit("no results")
del merged["command"]
json.dump(merged, open(out, "w"), indent=1)
print(f"merged {len(merged['cases'])} cases from {len(parts)} runs into {out}")
print(f"{'dispatch':8} {'T':>6} {'skew':9} {'overlap':7} {'ch':>2} {'L':>1} {'ok':4} {'total':>9} " +
      " ".join(f"{k:>9}" for k in ["gate", "permute", "meta", "d_data", "experts", "combine", "unperm"]))
for c in merged["cases"]:
    o, p = c["options"], c["phases_us"]
    print(f"{o['dispatch']:8} {o['tokens_per_gpu']:>6} {o['skew']:9} {o['overlap']:7} {o['chunks']:>2} {o['layers']:>1} "
          f"{'ok' if c['check']['pass'] else 'FAIL':4} {c['total_us']:9.1f} " +
          " ".join(f"{p[k]:9.1f}" for k in ["gate", "permute", "dispatch_meta", "dispatch_data", "experts", "combine", "unpermute"]))
EOF
rm -f "$OUT"/part-*.json
echo "== exit code $rc"
exit $rc
