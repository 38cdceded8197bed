#!/usr/bin/env bash
# Build, check and time kernels/ on a GPU machine, in one go.
#   kernels/run_bench.sh [full|quick] [extra epsim-bench args...]
# Writes under $OUT (default ./bench-out): epsim-bench.json (the one result file), bench.log,
# sdpa.json (PyTorch SDPA rows, merged into epsim-bench.json), env.txt. Prints the quality table last.
# Env: GIT_COMMIT (recorded in the JSON), LABEL (file name prefix), EPSIM_BENCH_BIN (use this
# binary instead of building; kernels/prebuilt/epsim-bench is the fallback if the build fails),
# SDPA=0 (skip the PyTorch attention reference, for runs that time no attention).
set -u -o pipefail
# Never use NVLink multicast on shared hosts.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1

HERE=$(cd "$(dirname "$0")" && pwd)
MODE=${1:-full}
shift || true
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
BUILD=${BUILD:-$HERE/build-bench}
LABEL=${LABEL:-epsim-bench}
JSON="$OUT/$LABEL.json"
LOG="$OUT/bench.log"

{
  echo "== date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,temperature.gpu,persistence_mode --format=csv
  nvidia-smi topo -m 2>/dev/null | head -8
  nvcc --version | tail -2
  cmake --version | head -1
  python3 -c 'import torch; print("torch", torch.__version__, "gpus", torch.cuda.device_count())' 2>&1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# NCCL: the toolkit's if present, else the one PyTorch's wheel ships.
if [ -z "${NCCL_ROOT:-}" ] && [ ! -e /usr/local/cuda/include/nccl.h ] && [ ! -e /usr/include/nccl.h ]; then
  NCCL_ROOT=$(python3 -c 'import nvidia.nccl as m, os; print(list(m.__path__)[0])' 2>/dev/null || true)
fi
export NCCL_ROOT=${NCCL_ROOT:-}
# Libraries PyTorch's wheels ship (used only if the system lacks them, e.g. by the prebuilt binary).
PYLIBS=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
dirs = []
for sp in site.getsitepackages():
    dirs += glob.glob(os.path.join(sp, "nvidia", "*", "lib"))
    dirs += glob.glob(os.path.join(sp, "nvidia", "cu13", "lib"))
print(":".join(sorted(set(dirs))))
EOF
)
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64:${PYLIBS}

BIN=${EPSIM_BENCH_BIN:-}
if [ -z "$BIN" ]; then
  t0=$(date +%s)
  if cmake -S "$HERE" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" \
       ${NCCL_ROOT:+-DNCCL_ROOT=$NCCL_ROOT} > "$OUT/build.log" 2>&1 &&
     ninja -C "$BUILD" >> "$OUT/build.log" 2>&1; then
    BIN="$BUILD/epsim-bench"
    echo "== built in $(( $(date +%s) - t0 )) s: $BIN"
  else
    tail -30 "$OUT/build.log"
    BIN="$HERE/prebuilt/epsim-bench"
    echo "== build failed; falling back to $BIN"
  fi
fi
grep -E "NCCL" "$OUT/build.log" 2>/dev/null | head -2

QUICK=()
[ "$MODE" = quick ] && QUICK=(--quick)

if [ "${SDPA:-1}" = 0 ]; then  # runs that time no attention leave the reference out
  echo '[]' > "$OUT/sdpa.json"
else
  echo "== PyTorch SDPA reference"
  python3 "$HERE/sdpa_torch.py" "$OUT/sdpa.json" "${QUICK[@]}" > "$OUT/sdpa.log" 2>&1 || { tail -5 "$OUT/sdpa.log"; echo '[]' > "$OUT/sdpa.json"; }
  tail -3 "$OUT/sdpa.log"
fi

SMI=$(nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit --format=csv,noheader 2>/dev/null)
echo "== epsim-bench ($MODE)"
"$BIN" --out "$JSON" --extra "$OUT/sdpa.json" --git "${GIT_COMMIT:-unknown}" --smi "$SMI" "${QUICK[@]}" "$@" 2> "$LOG"
rc=$?
grep -E "FAILED|CHECK|ERROR" "$LOG" | head -20
echo "== epsim-bench exit code $rc; $(grep -c . "$LOG") log lines"
exit $rc
