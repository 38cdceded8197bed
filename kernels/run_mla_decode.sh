#!/usr/bin/env bash
# Issue 14, MLA decode (absorbed) on one GPU, in one go: a smoke run (the quick MLA rows and the
# quick MLA decode layer cases), then the MLA decode bench rows (sdpa_torch.py --mla-only: the
# absorbed core, kv_b_proj's absorbed products, the KV-append copies; an epsim-bench/1 file of
# their own) and the whole-layer program (LAYER_ARGS, default every model, phase and precision).
#   OUT=dir LABEL=h100-2026-12-06d EPSIM_OPS_LIB=.../libepsim_ops.so GIT_COMMIT=... CARD=... \
#   LAYER_ARGS="--models dsv3-mla --phases decode" bash kernels/run_mla_decode.sh
# Writes $OUT/$LABEL.json (epsim-bench/1), $OUT/$LABEL-layer.json (epsim-layer/1), logs.
set -u -o pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
LABEL=${LABEL:-mla-decode}
LIB=${EPSIM_OPS_LIB:-$HERE/prebuilt/libepsim_ops.so}
GIT=${GIT_COMMIT:-unknown}
SMI=$(nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit --format=csv,noheader 2>/dev/null)
CARD=${CARD:-$(echo "$SMI" | head -1 | cut -d, -f2 | sed 's/^ //')}
export SMI
echo "$SMI"
t0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t0 )) s: $*"; }

stamp "smoke: MLA rows and MLA decode layer (quick)"
python3 "$HERE/sdpa_torch.py" "$OUT/smoke-rows.json" --mla-only --quick > "$OUT/smoke-rows.log" 2>&1
echo "smoke rows exit $?"; grep -E "not run|Error|FAIL" "$OUT/smoke-rows.log" | head -8; tail -4 "$OUT/smoke-rows.log"
python3 "$HERE/epsim_layer.py" --lib "$LIB" --quick --models dsv3-mla --phases decode --out "$OUT/layer-smoke.json" \
  --git "$GIT" --card "$CARD" > "$OUT/layer-smoke.log" 2>&1
echo "smoke layer exit $?"; grep -E "layer |FAILED|Error|error" "$OUT/layer-smoke.log" | head -12
LAYER_OK=$(python3 -c "import json;d=json.load(open('$OUT/layer-smoke.json'));print(sum(c['check']['pass'] for c in d['cases']))" 2>/dev/null || echo 0)
if [ "$LAYER_OK" -eq 0 ]; then tail -40 "$OUT/layer-smoke.log"; exit 1; fi

stamp "MLA bench rows"
python3 "$HERE/sdpa_torch.py" "$OUT/$LABEL.json" --mla-only --git "$GIT" --card "$CARD" > "$OUT/rows.log" 2>&1
echo "rows exit $?"; grep -E "not run|FAIL" "$OUT/rows.log" | head -8
stamp "epsim_layer"
python3 "$HERE/epsim_layer.py" --lib "$LIB" --out "$OUT/$LABEL-layer.json" --git "$GIT" --card "$CARD" ${LAYER_ARGS:-} > "$OUT/layer.log" 2>&1
echo "layer exit $?"
stamp "done"
python3 - "$OUT/$LABEL.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["results"]:
    s = r["shape"]
    if r["kernel"] == "mla_decode_torch" and s["batch"] in (16, 256):
        print(f'{r["kernel"]:18s} B={s["batch"]:4d} L={s["kv_len"]:6d} {r["us_median"]:9.1f} us {r["gbps"]:7.0f} GB/s err {r["check"]["rel_err"]:.1e}')
    if r["kernel"] == "mla_absorb_torch" and s["m"] in (16, 256):
        print(f'{r["kernel"]:18s} m={s["m"]:4d} n={s["n"]} k={s["k"]} {r["us_median"]:8.1f} us err {r["check"]["rel_err"]:.1e}')
    if r["kernel"] == "kv_append_torch" and s["batch"] == 256:
        print(f'{r["kernel"]:18s} {s["segments"]}x{s["width"]} B=256 {r["us_median"]:7.2f} us')
print(len(d["results"]), "rows,", sum(not r["check"]["pass"] for r in d["results"]), "failed")
PY
grep -E "^[a-z0-9-]+-(prefill|decode|train)" "$OUT/layer.log" | cut -c1-110
grep -E "FAILED|Traceback" -A3 "$OUT/layer.log" | head -20
tail -1 "$OUT/layer.log"
