#!/usr/bin/env bash
# Issue 15 on two GPUs of one host, in one call: the peer dispatch kernel's throughput against its
# SM count (epsim-bench's peer_dispatch_sms rows), then the E = 32 EP-layer grid with the peer
# kernel on 16, 32 and 48 blocks. Not yet run: nvidia-h200-x2 was not lent in sessions 4-6.
#   OUT=dir GIT_COMMIT=sha [EPSIM_BENCH_BIN=...] [EP_BIN=...] bash kernels/run_comm_sms.sh
# Writes $OUT/sms/h200x2-dispatch-sms.json and $OUT/ep<B>/ep2-h200x2-sms<B>.json (built here when
# no binary is given). Then, here: `tools/epsim calibrate ... ` with the SM file for the sm_rates
# fit, and `tools/epsim validate kernels/results/ep2-h200x2-sms<B>.json --set schedule.comm_sms=<B>`.
set -u -o pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/comm-sms-out}
G=${GIT_COMMIT:-unknown}
nvidia-smi -L
mkdir -p "$OUT/sms"
GIT_COMMIT=$G LABEL=h200x2-dispatch-sms SDPA=0 EPSIM_DISPATCH_CFGS= EPSIM_DISPATCH_CE=none EPSIM_DISPATCH_HYBRID=none \
  EPSIM_DISPATCH_SMS=4,8,16,24,32,48,64,96,132 EPSIM_DISPATCH_TOKENS=1171,8192,32768 OUT="$OUT/sms" \
  timeout 240 bash "$HERE/run_bench.sh" full --only dispatch > "$OUT/sms.log" 2>&1
echo "SM sweep exit $?"; tail -5 "$OUT/sms.log"
for B in 16 32 48; do
  mkdir -p "$OUT/ep$B"
  GIT_COMMIT=$G LABEL=ep2-h200x2-sms$B DISPATCH=peer TOKENS="1024 4096 16384" LAYERS2_TOKENS= EXTRA="--peer-blocks $B" \
    OUT="$OUT/ep$B" timeout 150 bash "$HERE/run_ep_layer.sh" grid > "$OUT/ep$B.log" 2>&1
  echo "EP grid, $B peer blocks: exit $?"; tail -3 "$OUT/ep$B.log"
done
