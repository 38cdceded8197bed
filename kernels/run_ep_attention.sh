#!/usr/bin/env bash
# The whole-decoder-layer EP program (epsim-ep-layer --attention, issue 16) in one go: smoke cases
# of every attention kind (each checked against float64 host references; their JSON and the checks'
# errors printed), then the grid of run_ep_layer.sh with ATTN (default GQA 64/16 x 128, sequences
# of 512) over TOKENS (default "1024 4096 16384").
#   OUT=... LABEL=ep1-h100-attn-DATE EXTRA="--gpus 1" bash kernels/run_ep_attention.sh   # one GPU
#   OUT=... LABEL=ep2-h200x2-attn-DATE bash kernels/run_ep_attention.sh                  # all GPUs
# Env as run_ep_layer.sh (EP_BIN, GIT_COMMIT, LABEL, EXTRA, TOKENS, DISPATCH, LAYERS2_TOKENS), ATTN.
# If the GQA smoke fails its checks with the pipelined attention core, the rest runs with the first
# version (EPSIM_ATTN_CORE=simple), which the result file then names in options.attention_core.
set -u -o pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/ep-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
BIN=${EP_BIN:-}
if [ -z "$BIN" ] || ! "$BIN" --help > /dev/null 2>&1; then
  BUILD=${BUILD:-$HERE/build-ep}
  cmake -S "$HERE" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" \
    > "$OUT/build.log" 2>&1 && ninja -C "$BUILD" epsim-ep-layer >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 2; }
  BIN=$BUILD/epsim-ep-layer
fi
nvidia-smi --query-gpu=index,name,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv,noheader
smoke() {  # name, args
  local n=$1; shift
  timeout 90 "$BIN" ${EXTRA:-} --min-iters 3 --warmup 1 --out "$OUT/smoke-$n.json" "$@" > "$OUT/smoke-$n.txt" 2>&1
  local r=$?
  echo "== smoke $n: exit $r"; tail -4 "$OUT/smoke-$n.txt"
  [ -s "$OUT/smoke-$n.json" ] && python3 - "$OUT/smoke-$n.json" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    o, k = c["options"], c["check"]
    print(" ", o["overlap"], o.get("attention", "none"), o.get("attention_core", ""), "pass" if k["pass"] else "FAIL",
          "moe out", k["out_rel_err"], k.get("attention_rel_err"), "total", c["total_us"],
          {p: round(v) for p, v in c["phases_us"].items()})
PY
  return $r
}
smoke none --tokens-per-gpu 1024 --overlap serial,dual
smoke gqa --attention gqa --seq-len 512 --tokens-per-gpu 1024 --overlap serial,dual
rg=$?
smoke mla --attention mla --seq-len 512 --tokens-per-gpu 1024 --overlap serial,dual
EPSIM_ATTN_CORE=simple smoke gqa-simplecore --attention gqa --seq-len 512 --tokens-per-gpu 1024 --overlap serial
smoke mha --attention mha --heads 32 --seq-len 256 --tokens-per-gpu 1024 --overlap dual --layers 2
if [ $rg -ne 0 ]; then
  echo "== the GQA smoke failed with the pipelined attention core: the first version (EPSIM_ATTN_CORE=simple)"
  export EPSIM_ATTN_CORE=simple
  smoke gqa-simple --attention gqa --seq-len 512 --tokens-per-gpu 1024 --overlap serial,dual || { echo "== no grid"; exit 1; }
fi
EP_BIN=$BIN ATTN=${ATTN:-"--attention gqa --seq-len 512"} TOKENS=${TOKENS:-"1024 4096 16384"} OUT=$OUT \
  bash "$HERE/run_ep_layer.sh" grid
