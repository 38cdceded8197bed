#!/usr/bin/env bash
# Issue 14 on one GPU, in one go: epsim-bench (its suites; default all) with the PyTorch SDPA rows
# (sdpa_torch.py, the issue-14 attention rows included), then the whole-layer program
# epsim_layer.py. A quick smoke run of the new suites and of the layer goes first; the full layer
# run is skipped when the layer smoke produced no passing case.
#   OUT=dir LABEL=h100-... SUITES=all|gap,layer_ops,gemm_grid SDPA_ARGS=--layer-only \
#   EPSIM_BENCH_BIN=... EPSIM_OPS_LIB=... GIT_COMMIT=... bash kernels/run_issue14.sh
# Writes $OUT/$LABEL.json (epsim-bench/1), $OUT/$LABEL-layer.json (epsim-layer/1), logs.
set -u -o pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
LABEL=${LABEL:-issue14}
BIN=${EPSIM_BENCH_BIN:-$HERE/prebuilt/epsim-bench}
LIB=${EPSIM_OPS_LIB:-$HERE/prebuilt/libepsim_ops.so}
SUITES=${SUITES:-all}
GIT=${GIT_COMMIT:-unknown}
PYLIBS=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
dirs = []
for sp in site.getsitepackages():
    dirs += glob.glob(os.path.join(sp, "nvidia", "*", "lib"))
print(":".join(sorted(set(dirs))))
EOF
)
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64:${PYLIBS}
SMI=$(nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit --format=csv,noheader 2>/dev/null)
export SMI
{
  echo "== date: $(date -u +%FT%TZ)"; echo "$SMI"; nvcc --version 2>/dev/null | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t0 )) s: $*"; }

stamp "smoke: epsim-bench --quick (issue-14 suites)"
"$BIN" --quick --only gap,layer_ops,gemm_grid --out "$OUT/smoke.json" > "$OUT/smoke.txt" 2> "$OUT/smoke.log"
echo "smoke bench exit $?"; grep -E "FAIL|probe|ERROR" "$OUT/smoke.log" | head -8
stamp "smoke: epsim_layer --quick"
python3 "$HERE/epsim_layer.py" --lib "$LIB" --quick --models dsv3-mla,gqa4096 --phases prefill,decode,train \
  --out "$OUT/layer-smoke.json" --git "$GIT" > "$OUT/layer-smoke.log" 2>&1
echo "smoke layer exit $?"; grep -E "layer |FAILED|Error|error" "$OUT/layer-smoke.log" | head -20
LAYER_OK=$(python3 -c "import json;d=json.load(open('$OUT/layer-smoke.json'));print(sum(c['check']['pass'] for c in d['cases']))" 2>/dev/null || echo 0)

stamp "SDPA rows"
python3 "$HERE/sdpa_torch.py" "$OUT/sdpa.json" ${SDPA_ARGS:-} > "$OUT/sdpa.log" 2>&1 || { tail -5 "$OUT/sdpa.log"; echo '[]' > "$OUT/sdpa.json"; }
grep -c kernel "$OUT/sdpa.json"; grep -E "not run" "$OUT/sdpa.log" | head -5
ONLY=()
[ "$SUITES" != all ] && ONLY=(--only "$SUITES")
stamp "epsim-bench ${SUITES}"
"$BIN" --out "$OUT/$LABEL.json" --extra "$OUT/sdpa.json" --git "$GIT" --smi "$SMI" "${ONLY[@]}" > "$OUT/bench.txt" 2> "$OUT/bench.log"
echo "bench exit $?"; grep -E "CHECK FAILED|SUITE ERROR" "$OUT/bench.txt" | head -10
if [ "$LAYER_OK" -gt 0 ]; then
  stamp "epsim_layer (full)"
  python3 "$HERE/epsim_layer.py" --lib "$LIB" --out "$OUT/$LABEL-layer.json" --git "$GIT" ${LAYER_ARGS:-} > "$OUT/layer.log" 2>&1
  echo "layer exit $?"
else
  echo "layer smoke had no passing case: full layer run skipped"; tail -30 "$OUT/layer-smoke.log"
fi
stamp "done"
grep -E "^[a-z0-9-]+-(prefill|decode|train)" "$OUT/layer.log" 2>/dev/null | cut -c1-150
grep -E "FAILED|Traceback" -A3 "$OUT/layer.log" 2>/dev/null | head -20
tail -3 "$OUT/layer.log" 2>/dev/null
