#!/usr/bin/env bash
# The epsim binary end to end: exit status 2 and one message naming path, value and rule for bad
# input; byte-identical reports; every scenario runs; every declared key is documented.
set -u
: "${EPSIM:?set EPSIM to the epsim binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_error NAME EXPECTED_SUBSTRING epsim-args...
expect_error() {
  local name=$1 want=$2; shift 2
  "$EPSIM" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -ne 2 ]]; then bad "$name: exit $rc, want 2"; return; fi
  if [[ $(wc -l <"$tmp/err") -ne 1 ]]; then bad "$name: want one line, got: $(cat "$tmp/err")"; return; fi
  grep -qF -- "$want" "$tmp/err" && ok || bad "$name: message '$(cat "$tmp/err")' lacks '$want'"
}

printf '{"model": {"layers": 3,}}' >"$tmp/malformed.json"
expect_error malformed "malformed JSON" run "$tmp/malformed.json" --out "$tmp/o"
expect_error missing-file "cannot open file" run "$tmp/nope.json" --out "$tmp/o"
echo '{"modle": {}}' >"$tmp/unknown.json"
expect_error unknown-key 'modle = {}: unknown key' run "$tmp/unknown.json" --out "$tmp/o"
expect_error wrong-type 'workload.tokens_per_gpu = "many": must be an integer' run scenarios/seed.json --set workload.tokens_per_gpu=many --out "$tmp/o"
expect_error zero-size 'workload.tokens_per_gpu = 0: must be an integer in [1, 1048576]' run scenarios/seed.json --set workload.tokens_per_gpu=0 --out "$tmp/o"
expect_error negative 'cluster.nic_gbps = -5: must be in [0.001, 1e+07] Gb/s' run scenarios/seed.json --set cluster.nic_gbps=-5 --out "$tmp/o"
expect_error sm-share 'network.fixed_sm_share = 2: must be in [0, 1]' run scenarios/seed.json --set network.fixed_sm_share=2 --out "$tmp/o"
expect_error topk 'model.top_k = 300: must be in [1, routed_experts = 256]' run scenarios/seed.json --set model.top_k=300 --out "$tmp/o"
expect_error max-nodes-groups 'routing.max_nodes = 2: node-limited routing replaces the group limit' run scenarios/seed.json --set model.groups=8 --set model.topk_groups=4 --set routing.max_nodes=2 --out "$tmp/o"
expect_error max-nodes-room 'routing.max_nodes = 1: must leave room for top_k = 12 experts (8 routed experts per node' run scenarios/seed.json --set parallelism.ep=16 --set model.routed_experts=16 --set model.top_k=12 --set routing.max_nodes=1 --out "$tmp/o"
expect_error ep 'parallelism.ep = 48: must divide the GPU count' run scenarios/seed.json --set parallelism.ep=48 --out "$tmp/o"
expect_error ep-experts 'parallelism.ep = 256: must divide model.routed_experts = 96' run scenarios/seed.json --set model.routed_experts=96 --out "$tmp/o"
expect_error shared-routed 'parallelism.shared_expert = "routed": needs model.shared_experts > 0' run scenarios/seed.json --set parallelism.shared_expert=routed --set model.shared_experts=0 --out "$tmp/o"
expect_error shared-slots 'parallelism.ep = 256: must divide the routed experts 257' run scenarios/seed.json --set parallelism.shared_expert=routed --out "$tmp/o"
expect_error slots 'parallelism.slots_per_gpu = 3: ep x slots_per_gpu = 216 slots must hold the 256 routed experts' run scenarios/seed.json --set cluster.nodes=9 --set parallelism.ep=72 --set parallelism.slots_per_gpu=3 --out "$tmp/o"
expect_error slots-strategy 'placement.strategy = "contiguous": parallelism.slots_per_gpu = 4 leaves 32 slots' run scenarios/seed.json --set cluster.nodes=9 --set parallelism.ep=72 --set parallelism.slots_per_gpu=4 --out "$tmp/o"
expect_error pp-mode 'parallelism.pp = 8: pipeline stages run a training step' run scenarios/train-pp8-ep32.json --set workload.mode=prefill --out "$tmp/o"
expect_error pp-dualpipe 'schedule.pipeline_micro_batches = 10: dualpipe: must be even and >= 2 x parallelism.pp = 16' run scenarios/train-pp8-ep32.json --set schedule.pipeline=dualpipe --set schedule.pipeline_micro_batches=10 --out "$tmp/o"
expect_error pp-ep 'parallelism.ep = 64: must divide the 32 GPUs of a pipeline stage' run scenarios/train-pp8-ep32.json --set parallelism.ep=64 --out "$tmp/o"
expect_error overlap-name 'schedule.overlap = "triple": must be one of serial, dual-microbatch, decode-5stage' run scenarios/seed.json --set schedule.overlap=triple --out "$tmp/o"
expect_error overlap-order 'schedule.overlap.forward[0].compute[0] = "experts@0": must come after dispatch@0' run scenarios/small-2node.json --set 'schedule.overlap={"forward": [{"compute": ["experts@0", "moe_out@0", "attention@0", "moe_in@0", "shared@0", "dense@0"], "comm": ["counts@0", "dispatch@0", "combine@0"]}]}' --out "$tmp/o"
expect_error gpus-nodes 'cluster.gpus = 20: must be a multiple of cluster.gpus_per_node = 8' run scenarios/seed.json --set cluster.gpus=20 --out "$tmp/o"
expect_error tp 'parallelism.attention_tp = 3: must divide cluster.gpus_per_node = 8' run scenarios/seed.json --set parallelism.attention_tp=3 --out "$tmp/o"
echo '{"num_hidden_layers": 61}' >"$tmp/config.json"
expect_error missing-hf 'config.json:hidden_size = (missing)' run scenarios/seed.json --set model.hf_config="$tmp/config.json" --out "$tmp/o"
expect_error bad-command "unknown command 'rnu'" rnu
expect_error window 'network.completion_window = 0.5: must be in [0, 0.05]' run scenarios/seed.json --set network.completion_window=0.5 --out "$tmp/o"
expect_error net-window '--completion-window = 0.2: must be in [0, 0.05]' net --nodes 2 --gpus-per-node 2 --pattern alltoall --bytes 1000 --completion-window 0.2
expect_error replica-choice 'placement.replica_choice = "closest": must be one of' run scenarios/seed.json --set placement.replica_choice=closest --out "$tmp/o"
# faults: names checked against the cluster, factors in range, failures the placement cannot absorb.
expect_error fault-link 'faults.link_bandwidth.gpu999.nic = 0.5: names no link' run scenarios/seed.json --set 'faults.link_bandwidth={"gpu999.nic":0.5}' --out "$tmp/o"
expect_error fault-factor 'faults.link_bandwidth.leaf3.up = 2: must be 0 (down) or a number in [0.001, 1]' run scenarios/seed.json --set 'faults.link_bandwidth={"leaf3.up":2}' --out "$tmp/o"
expect_error fault-speed 'faults.gpu_compute.17 = 0: must be a number in [0.001, 1]' run scenarios/seed.json --set 'faults.gpu_compute={"17":0}' --out "$tmp/o"
expect_error fault-gpu-key 'faults.gpu_compute.x = 0.5: the key must be a GPU id' run scenarios/seed.json --set 'faults.gpu_compute={"x":0.5}' --out "$tmp/o"
expect_error fault-gpu 'faults.failed_gpus[1] = 300: must be a GPU id, an integer in [0, 256)' run scenarios/seed.json --set 'faults.failed_gpus=[3,300]' --out "$tmp/o"
expect_error fault-node 'faults.failed_nodes[0] = 32: must be a node id, an integer in [0, 32)' run scenarios/seed.json --set 'faults.failed_nodes=[32]' --out "$tmp/o"
expect_error fault-lost 'faults.failed_nodes = [5]: 8 expert(s) lose their only replica (40, 41, 42, 43, 44, 45, 46, 47)' run scenarios/seed.json --set 'faults.failed_nodes=[5]' --out "$tmp/o"
expect_error fault-ep 'faults.failed_gpus = [3]: failed GPUs need one EP group' run scenarios/seed.json --set parallelism.ep=16 --set 'faults.failed_gpus=[3]' --out "$tmp/o"
expect_error fault-replan 'faults.replan_placement = true: only placement.strategy = eplb' run scenarios/seed.json --set faults.replan_placement=true --out "$tmp/o"
expect_error fault-replan-slots 'the 248 live GPUs hold 248 slots, fewer than the 256 experts' run scenarios/seed.json --set placement.strategy=eplb --set faults.replan_placement=true --set 'faults.failed_nodes=[5]' --out "$tmp/o"
expect_error fault-all 'faults.failed_nodes = [0,1]: leaves no GPU alive' run scenarios/small-2node.json --set 'faults.failed_nodes=[0,1]' --out "$tmp/o"
expect_error fault-jitter 'faults.kernel_spread_file = "": kernel_jitter = measured needs a layer file' run scenarios/seed.json --set faults.kernel_jitter=measured --out "$tmp/o"
expect_error fault-jitter-file 'no-such-layer.json: cannot open file' run scenarios/seed.json --set faults.kernel_jitter=measured --set faults.kernel_spread_file=no-such-layer.json --out "$tmp/o"

# Determinism: the same command twice gives byte-identical report.json (the command line is part
# of the report, so both runs write to the same directory).
"$EPSIM" run scenarios/seed.json --out "$tmp/a" >/dev/null && cp "$tmp/a/report.json" "$tmp/first.json" \
  && "$EPSIM" run scenarios/seed.json --out "$tmp/a" >/dev/null \
  && cmp -s "$tmp/a/report.json" "$tmp/first.json" && ok || bad "seed report.json differs between two runs"
# report.json records the version, the command line and the resolved scenario, which reruns the same.
python3 - "$tmp/a/report.json" "$tmp/resolved.json" "$("$EPSIM" --version)" <<'PY' && ok || bad "report.json provenance"
import json, sys
r = json.load(open(sys.argv[1]))
assert "epsim " + r["version"] == sys.argv[3], (r["version"], sys.argv[3])
assert r["command"] == ["epsim", "run", "scenarios/seed.json", "--out", sys.argv[1].rsplit("/", 2)[0] + "/a"], r["command"]
assert r["resolved_scenario"]["gpu"]["peak_tflops"] == 400 and r["resolved_scenario"]["model"]["layers"] == 61
json.dump(r["resolved_scenario"], open(sys.argv[2], "w"))
PY
"$EPSIM" run "$tmp/resolved.json" --out "$tmp/r" --no-trace >/dev/null && python3 - "$tmp/a/report.json" "$tmp/r/report.json" <<'PY' \
  && ok || bad "the resolved scenario does not reproduce the seed's report"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for r in (a, b): del r["command"], r["resolved_scenario"]
assert a == b
PY
"$EPSIM" --version | grep -qE '^epsim [^ ]+$' && ok || bad "--version"
python3 -c "import json,sys; t=json.load(open(sys.argv[1])); assert len(t['traceEvents'])>1000" "$tmp/a/trace.json" 2>/dev/null \
  && ok || bad "trace.json is not valid Chrome trace JSON"
for k in step_time_ms tokens_per_s_per_gpu '"per_gpu_gb"' '"fits"' compute_ms dispatch_ms combine_ms exposed_comm_ms; do
  grep -q "$k" "$tmp/a/report.json" && ok || bad "report.json lacks $k"
done

# Trace filters: only the GPUs and layers asked for; a GPU that does not exist is bad input.
"$EPSIM" run scenarios/small-2node.json --trace-gpus 0-1,5 --trace-layers 2 --out "$tmp/tf" >/dev/null && python3 - "$tmp/tf/trace.json" <<'PY' \
  && ok || bad "--trace-gpus / --trace-layers"
import json, sys
ev = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
assert {e["pid"] for e in ev} == {0, 1, 5} and {e["args"]["layer"] for e in ev} == {2}, ev[:2]
PY
expect_error trace-gpus '--trace-gpus = "0,300": GPU 300 does not exist (0-255)' run scenarios/seed.json --trace-gpus 0,300 --out "$tmp/o"
expect_error trace-layers '--trace-layers = "3-": must be a list of numbers and ranges' run scenarios/seed.json --trace-layers 3- --out "$tmp/o"

# Every shipped scenario runs.
for s in scenarios/*.json; do
  "$EPSIM" run "$s" --out "$tmp/s" --no-trace >/dev/null 2>"$tmp/err" && ok || bad "$s: $(cat "$tmp/err")"
done

# The flow solver's work line (README "What the flow solver did"), worked by hand on small-2node (16 GPUs,
# 2 nodes x 8; uniform, so every all-to-all's 240 flows start together and equal flows end
# together): only the first MoE layer's dispatch and combine are solved (the other 12 replay).
# Each: a start (one full filling of its 240 flows, all new rates), the 112 NVLink flows end first
# (7 per GPU on its NVLink port, faster than 8 on its 50 GB/s NIC: lambda* is their rate, above
# every NIC flow's, so nothing is re-filled), then the 128 NIC flows end (everything removed,
# nothing kept: counted from level 0, no flow to fill). 2 x (3 solves, 2 from level 0, 240 re-filled).
"$EPSIM" run scenarios/small-2node.json --set network.model=flow --no-trace --out "$tmp/fw" >"$tmp/fw.txt" 2>&1 \
  && grep -qF "flow solver: 480 flows solved, 6 re-solves (4 from level 0), 480 flows re-filled (480 at a new rate), 0 completed early by the window" "$tmp/fw.txt" \
  && "$EPSIM" run scenarios/small-2node.json --no-trace --out "$tmp/aw" >"$tmp/aw.txt" 2>&1 \
  && ! grep -q "flow solver" "$tmp/aw.txt" \
  && ok || bad "flow solver line: $(grep -h 'flow solver' "$tmp/fw.txt" "$tmp/aw.txt")"

# Faults: noisy steps print their distribution and report it; compare runs the fault states.
"$EPSIM" run scenarios/small-2node.json --steps 4 --no-trace --out "$tmp/noisy" --set faults.kernel_jitter=measured \
  --set faults.kernel_spread_file=kernels/results/h100-2026-12-06c-layer.json >"$tmp/noisy.txt" 2>&1 \
  && grep -q "over 4 steps: p50" "$tmp/noisy.txt" \
  && python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['steps']; assert s['steps']==4 and s['step_ms']['p99']>=s['step_ms']['p50']" "$tmp/noisy/report.json" \
  && ok || bad "noisy steps: $(tail -3 "$tmp/noisy.txt")"
"$EPSIM" compare scenarios/small-2node.json --placements eplb --set placement.redundant_slots=16 \
  --faults '{"failed_nodes":[1]}' --out "$tmp/fcmp" >"$tmp/fcmp.txt" 2>&1 \
  && grep -q "^eplb healthy" "$tmp/fcmp.txt" && grep -q "^eplb degraded" "$tmp/fcmp.txt" && grep -q "^eplb replanned" "$tmp/fcmp.txt" \
  && ok || bad "compare --faults: $(cat "$tmp/fcmp.txt")"
# Models from config.json: each shipped family scenario prints every key it used or ignored (one
# line each, the count matching report.json's record) and runs from another working directory,
# its config.json found beside the scenario.
for s in scenarios/hf-*.json; do
  (cd "$tmp" && "$EPSIM" run "$OLDPWD/$s" --out "$tmp/hf" --no-trace >"$tmp/hf.out" 2>"$tmp/err") && python3 - "$tmp/hf.out" "$tmp/hf/report.json" <<'PY' \
    && ok || bad "$s: $(cat "$tmp/err")"
import json, re, sys
out = open(sys.argv[1]).read()
rec = json.load(open(sys.argv[2]))["hf_config"]
m = re.search(r"config.json \S+ \((\w+)\): (\d+) keys used, (\d+) ignored", out)
assert m and int(m[2]) == len(rec["used"]) and int(m[3]) == len(rec["ignored"]), (m and m.groups(), len(rec["used"]))
lines = [l for l in out.splitlines() if re.match(r"    (used|ignored) ", l)]
assert len(lines) == len(rec["used"]) + len(rec["ignored"]) and len(rec["ignored"]) > 0, len(lines)
assert rec["model_type"] == m[1]
PY
done
# An unknown config.json key is reported as ignored, not refused.
python3 -c "import json; c=json.load(open('scenarios/models/mixtral-8x22b.json')); c['my_new_knob']=1; json.dump(c, open('$tmp/cfg.json','w'))"
"$EPSIM" run scenarios/hf-mixtral-8x22b-prefill.json --set model.hf_config="$tmp/cfg.json" --no-trace --out "$tmp/o" 2>&1 \
  | grep -qF "ignored  my_new_knob = 1: not read by epsim" && ok || bad "an unknown config.json key is not reported as ignored"
# A path in a scenario resolves against the scenario's folder; the error names the path tried.
mkdir -p "$tmp/sc/sub"
echo '{"model": {"hf_config": "sub/missing.json"}}' >"$tmp/sc/paths.json"
expect_error scenario-path "$tmp/sc/sub/missing.json: cannot open file" run "$tmp/sc/paths.json" --out "$tmp/o"
# GB200 NVL72: DeepSeek-V3 at EP 72 keeps dispatch and combine inside the rack's NVLink domain.
"$EPSIM" run scenarios/gb200-nvl72-deepseek-v3.json --no-trace --out "$tmp/nvl" >"$tmp/nvl.out" 2>&1 \
  && grep -qF "EP 72 inside one domain: dispatch and combine stay on NVLink" "$tmp/nvl.out" \
  && python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['traffic_gb']['infiniband']==0 and r['traffic_gb']['nvlink']>0 and r['nvlink_domain']=={'gpus':72,'domains':1,'ep_group_inside':True}" "$tmp/nvl/report.json" \
  && ok || bad "gb200-nvl72: $(cat "$tmp/nvl.out" | tail -3)"
# A description file runs as the shipped description it copies.
cp scenarios/schedules/dual-microbatch.json "$tmp/mine.json"
"$EPSIM" run scenarios/small-2node.json --set schedule.overlap="$tmp/mine.json" --no-trace --out "$tmp/m1" >/dev/null 2>&1 \
  && "$EPSIM" run scenarios/small-2node.json --set schedule.overlap=dual-microbatch --no-trace --out "$tmp/m2" >/dev/null 2>&1 \
  && [[ "$(grep step_time_ms "$tmp/m1/report.json")" == "$(grep step_time_ms "$tmp/m2/report.json")" ]] && ok \
  || bad "a copied schedule description file does not run as the shipped one"

# epsim net speaks nccl-tests: -b/-e/-f sizes with suffixes, each size one rank's buffer. 2 nodes x
# 2 GPUs, 4M per rank: 1M to each rank; a NIC carries 2 x 1048576 B at 50 GB/s (41.943 us) plus the
# across-rails route's 3 us: 44.94 us; algbw 4194304 B / 44.943 us = 93.32 GB/s, busbw x 3/4 = 69.99.
"$EPSIM" net --nodes 2 --gpus-per-node 2 --pattern alltoall -b 1M -e 4M -f 2 >"$tmp/net.out" 2>&1 \
  && [[ $(grep -cE '^ +[0-9]+ +[0-9]+ +float ' "$tmp/net.out") -eq 3 ]] \
  && grep -qE '^ +4194304 +1048576 +float +44\.94 +93\.32 +69\.99$' "$tmp/net.out" && ok || bad "net -b/-e/-f: $(cat "$tmp/net.out")"
expect_error net-size '-b = "4Q": must be a byte count' net --nodes 2 --gpus-per-node 2 -b 4Q
expect_error net-small '-b = 2: must be at least the rank count 4' net --nodes 2 --gpus-per-node 2 -b 2
expect_error net-range '-e = 1024: must be >= -b = 2048' net --nodes 2 --gpus-per-node 2 -b 2K -e 1K
expect_error net-a2a-size '--nodes x --gpus-per-node = 8192: --pattern alltoall has GPUs^2 flows: at most 4096 GPUs' net --nodes 1024 --gpus-per-node 8 --pattern alltoall
# --vs-exact: the completion window against the exact run, every flow within the window.
"$EPSIM" net --nodes 2 --pattern alltoall-jitter --bytes 100000 --vs-exact >"$tmp/netw.out" 2>&1 \
  && grep -qE "^  vs exact +most early [0-9.e+-]+, most late [0-9.e+-]+ of a flow's duration \(window 0.004: met\)" "$tmp/netw.out" \
  && ok || bad "net --vs-exact: $(cat "$tmp/netw.out")"
expect_error net-vs-exact '--vs-exact = --model analytical: compares the flow model' net --nodes 2 --model analytical --vs-exact
# Routes come from the topology on demand: a 16,384-GPU fabric runs a permutation (one flow per GPU).
"$EPSIM" net --nodes 2048 --gpus-per-node 8 --pattern permutation --bytes 1000000 >"$tmp/net16k.out" 2>&1 \
  && grep -Eq "^  flows +16384$" "$tmp/net16k.out" && ok || bad "net: a 16,384-GPU permutation must run ($(tail -2 "$tmp/net16k.out"))"
# --calibration adds the profile's NCCL all-to-all terms: its fixed cost at least.
"$EPSIM" net --nodes 1 --gpus-per-node 8 --pattern alltoall -b 16M --calibration h200-measured >"$tmp/netc.out" 2>&1 \
  && "$EPSIM" net --nodes 1 --gpus-per-node 8 --pattern alltoall -b 16M >"$tmp/net0.out" 2>&1 \
  && python3 - "$tmp/netc.out" "$tmp/net0.out" <<'PY' && ok || bad "net --calibration: $(cat "$tmp/netc.out")"
import re, sys
t = [float(re.search(r"^ +16777216 +\d+ +float +([0-9.]+)", open(p).read(), re.M)[1]) for p in sys.argv[1:]]
assert t[0] > t[1] + 20, t  # h200-measured: 20.3 us per collective, and NCCL's lower NVLink rate
PY

# Placements and load statistics in each serving framework's format, written by compare and read
# back by placement.file and placement.load_stats.
for f in eplb sglang vllm vllm-ascend; do
  "$EPSIM" compare scenarios/small-2node.json --placements eplb --format "$f" --out "$tmp/fmt-$f" >/dev/null 2>"$tmp/err" \
    && "$EPSIM" run scenarios/small-2node.json --set placement.strategy=file --set placement.file="$tmp/fmt-$f/placement-eplb.json" \
         --no-trace --out "$tmp/o" >/dev/null 2>>"$tmp/err" \
    && "$EPSIM" run scenarios/small-2node.json --set placement.strategy=eplb --set placement.load_stats="$tmp/fmt-$f/load-stats.json" \
         --no-trace --out "$tmp/o" >/dev/null 2>>"$tmp/err" && ok || bad "format $f: $(cat "$tmp/err")"
done
grep -q physical_to_logical_map "$tmp/fmt-sglang/placement-eplb.json" && grep -q logical_count "$tmp/fmt-sglang/load-stats.json" \
  && grep -q layer_list "$tmp/fmt-vllm-ascend/placement-eplb.json" && ok || bad "format files lack their keys"

# compare on the routed shared expert (its per-step gate samples carry the shared expert's column).
"$EPSIM" compare scenarios/seed-shared-routed.json --placements eplb --out "$tmp/cmp" >/dev/null 2>"$tmp/err" \
  && ok || bad "compare seed-shared-routed: $(cat "$tmp/err")"

# Every declared key is documented in scenarios/README.md.
"$EPSIM" keys | grep -o '^| `[^`]*`' | tr -d '|` ' >"$tmp/keys"
while read -r key; do
  grep -qF "\`$key\`" scenarios/README.md && ok || bad "scenarios/README.md does not document $key"
done <"$tmp/keys"

# ... and every sweep specification key.
"$EPSIM" keys --sweep | grep -o '^| `[^`]*`' | tr -d '|` ' >"$tmp/sweep-keys"
[[ $(wc -l <"$tmp/sweep-keys") -gt 10 ]] && ok || bad "epsim keys --sweep lists too few keys"
while read -r key; do
  grep -qF "\`$key\`" scenarios/README.md && ok || bad "scenarios/README.md does not document $key"
done <"$tmp/sweep-keys"

# ... and every search specification key.
"$EPSIM" keys --search | grep -o '^| `[^`]*`' | tr -d '|` ' >"$tmp/search-keys"
[[ $(wc -l <"$tmp/search-keys") -gt 10 ]] && ok || bad "epsim keys --search lists too few keys"
while read -r key; do
  grep -qF "\`$key\`" scenarios/README.md && ok || bad "scenarios/README.md does not document $key"
done <"$tmp/search-keys"

# epsim sweep: bad specifications and bad points exit 2 with one line naming the path.
echo '{"base": "scenarios/small-2node.json", "axes": [{"key": "schedule.chunk", "values": [1]}]}' >"$tmp/sweep-key.json"
expect_error sweep-key 'axes[0].key = "schedule.chunk": not a scenario key' sweep "$tmp/sweep-key.json" --out "$tmp/sw"
echo '{"base": "scenarios/small-2node.json", "axes": [{"key": "parallelism.ep", "values": [16, 6]}]}' >"$tmp/sweep-ep.json"
expect_error sweep-point 'parallelism.ep = 6: must divide the GPU count (nodes x gpus_per_node = 16) (sweep point 1: parallelism.ep=6;' sweep "$tmp/sweep-ep.json" --out "$tmp/sw"
[[ ! -s $tmp/sw/results.jsonl ]] && ok || bad "a rejected sweep must run no point"
expect_error sweep-missing "nope.json: cannot open file" sweep "$tmp/nope.json" --out "$tmp/sw"
expect_error sweep-jobs "-j -1: must be in [0, 1024]" sweep "$tmp/sweep-ep.json" -j -1
# skip_invalid: the rejected point is recorded with its message, the others run, exit 0.
echo '{"base": "scenarios/small-2node.json", "skip_invalid": true, "axes": [{"key": "parallelism.ep", "values": [16, 6]}]}' >"$tmp/sweep-skip.json"
"$EPSIM" sweep "$tmp/sweep-skip.json" --out "$tmp/skip" >"$tmp/out" 2>&1 && grep -q '"error":"parallelism.ep = 6' "$tmp/skip/results.jsonl" \
  && [[ $(grep -c step_time_ms "$tmp/skip/results.jsonl") -eq 1 ]] && ok || bad "skip_invalid: $(cat "$tmp/out")"

# --ops lists one layer's ops; report.json carries them; the fp8 precision section shows in both.
"$EPSIM" run scenarios/decode.json --ops --no-trace --out "$tmp/ops" >"$tmp/ops.txt" 2>&1 \
  && grep -q "quant_act.expert_down" "$tmp/ops.txt" && grep -q "MoE layer 3, forward" "$tmp/ops.txt" \
  && python3 -c "import json,sys; o=json.load(open(sys.argv[1]))['ops']; l=o['layers'][1]; assert l['kind']=='moe' and any(x['op']=='expert_up' and x['precision']=='fp8' for x in l['ops'])" "$tmp/ops/report.json" \
  && ok || bad "run --ops: $(tail -3 "$tmp/ops.txt")"

# epsim serve: bad serving keys and traces exit 2 naming the path; serve.json is deterministic.
expect_error serve-key 'serving.rat = 5: unknown key' serve scenarios/serve-small.json --set serving.rat=5 --out "$tmp/sv"
expect_error serve-spread 'serving.length_spread = 1.5: must be in [0, 1)' serve scenarios/serve-small.json --set serving.length_spread=1.5 --out "$tmp/sv"
expect_error serve-pool 'serving.prefill = {}: a prefill or decode pool needs serving.disaggregated = true' serve scenarios/serve-small.json --set serving.prefill='{}' --out "$tmp/sv"
expect_error serve-pool-key 'serving.prefill.set.cluster.nodez = 1: unknown key' serve scenarios/serve-small.json --set serving.disaggregated=true --set 'serving.prefill={"set": {"cluster.nodez": 1}}' --out "$tmp/sv"
expect_error serve-instances 'serving.instances = 1: disaggregated pools give their own counts' serve scenarios/serve-small.json --set serving.disaggregated=true --set serving.instances=1 --out "$tmp/sv"
printf 'arrival_s,input_tokens,output_tokens\n0,100,10\n0.5,-4,10\n' >"$tmp/trace.csv"
expect_error serve-trace 'trace.csv:3: "0.5,-4,10": input_tokens must be >= 1' serve scenarios/serve-small.json --set serving.arrivals=trace --set serving.trace="$tmp/trace.csv" --out "$tmp/sv"
expect_error serve-trace-missing 'nope.csv: cannot open file (serving.trace)' serve scenarios/serve-small.json --set serving.arrivals=trace --set serving.trace=nope.csv --out "$tmp/sv"
expect_error serve-kv 'serving.kv_memory_fraction = 1e-06: request 0 needs' serve scenarios/serve-small.json --set serving.kv_memory_fraction=0.000001 --out "$tmp/sv"
expect_error serve-jobs '-j -1: must be >= 0' serve scenarios/serve-small.json -j -1
"$EPSIM" serve scenarios/serve-small.json --out "$tmp/sv" >/dev/null && cp "$tmp/sv/serve.json" "$tmp/serve1.json" \
  && "$EPSIM" serve scenarios/serve-small.json --out "$tmp/sv" >/dev/null && cmp -s "$tmp/sv/serve.json" "$tmp/serve1.json" \
  && ok || bad "serve.json differs between two runs"
# ... whatever the threads pricing the steps.
"$EPSIM" serve scenarios/serve-small.json --out "$tmp/sv1" -j 1 >/dev/null && python3 - "$tmp/sv/serve.json" "$tmp/sv1/serve.json" <<'PY' && ok || bad "serve -j 1 differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for r in (a, b): del r["command"]
assert a == b
PY
python3 - "$tmp/sv" <<'PY' && ok || bad "serve outputs"
import csv, json, sys
d = sys.argv[1]
j = json.load(open(d + "/serve.json"))
assert j["requests"] == 400 and j["ttft_ms"]["count"] == 400 and j["tpot_ms"]["p99"] >= j["tpot_ms"]["p50"] > 0, j["ttft_ms"]
assert j["resolved_scenario"]["serving"]["rate"] == 20 and j["resolved_scenario"]["gpu"]["peak_tflops"] > 0
rows = list(csv.DictReader(open(d + "/requests.csv")))
assert len(rows) == 400 and float(rows[0]["ttft_ms"]) > 0
assert len(open(d + "/kv.csv").read().splitlines()) > 10
PY
# serve.json's resolved scenario serves the same figures.
python3 -c "import json,sys; json.dump(json.load(open(sys.argv[1]))['resolved_scenario'], open(sys.argv[2], 'w'))" "$tmp/sv/serve.json" "$tmp/resolved-serve.json"
"$EPSIM" serve "$tmp/resolved-serve.json" --out "$tmp/sv2" >/dev/null && python3 - "$tmp/sv/serve.json" "$tmp/sv2/serve.json" <<'PY' && ok || bad "the resolved serving scenario does not reproduce"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for r in (a, b): del r["command"], r["resolved_scenario"]
assert a == b
PY

# epsim search: bad specifications exit 2; a small search writes front scenarios that epsim serve
# and epsim run reproduce exactly.
echo '{"base": "scenarios/small-2node.json", "nodes": 2, "space": {"overlap": ["serial", "dual"]}}' >"$tmp/search-tp.json"
expect_error search-list 'space.overlap[1] = "dual": must be one of: serial, dual-microbatch, decode-5stage' search "$tmp/search-tp.json" --out "$tmp/se"
echo '{"base": "scenarios/small-2node.json", "nodes": 2, "targets": {"percentile": 95}}' >"$tmp/search-pct.json"
expect_error search-percentile 'targets.percentile = 95: must be 50, 90 or 99' search "$tmp/search-pct.json" --out "$tmp/se"
echo '{"base": "scenarios/small-2node.json", "nodes": 2, "space": {"instance_nodes": [4]}}' >"$tmp/search-nodes.json"
expect_error search-budget 'space.instance_nodes = [4]: 4 nodes: more than the budget' search "$tmp/search-nodes.json" --out "$tmp/se"
echo '{"base": "scenarios/small-2node.json", "nodes": 2, "traffic": {"length_spread": 2}}' >"$tmp/search-spread.json"
expect_error search-spread 'traffic.length_spread = 2: must be in [0, 1)' search "$tmp/search-spread.json" --out "$tmp/se"
cat >"$tmp/search.json" <<'JSON'
{"name": "tiny", "base": "scenarios/small-2node.json", "nodes": 4,
 "traffic": {"input_tokens": 512, "output_tokens": 64, "length_spread": 0.5, "requests": 150},
 "targets": {"ttft_ms": 400, "tpot_ms": 40},
 "space": {"instance_nodes": [1, 2], "attention_tp": [1, 2], "prefill_nodes": [1, 2],
           "max_batch_per_gpu": [4, 16], "max_prefill_tokens_per_gpu": [2048], "loads": [0.5, 0.8]},
 "confirm": 5}
JSON
"$EPSIM" search "$tmp/search.json" --out "$tmp/se" >"$tmp/search.out" 2>&1 && [[ -s $tmp/se/front.svg && -s $tmp/se/front-1.json ]] \
  && ok || bad "search: $(tail -5 "$tmp/search.out")"
grep -q '<svg' "$tmp/se/front.svg" && grep -q 'polyline\|circle' "$tmp/se/front.svg" && ok || bad "front.svg"
# The same search on one thread writes the same results (the output folder aside).
"$EPSIM" search "$tmp/search.json" --out "$tmp/se1" -j 1 >/dev/null 2>&1 \
  && cmp -s <(sed "s|$tmp/se1/|OUT/|g" "$tmp/se1/search.json") <(sed "s|$tmp/se/|OUT/|g" "$tmp/se/search.json") \
  && cmp -s "$tmp/se1/front.svg" "$tmp/se/front.svg" && ok || bad "search results differ between runs"
for f in "$tmp"/se/front-*.json; do
  "$EPSIM" serve "$f" --out "$tmp/fr" >/dev/null 2>"$tmp/err" && "$EPSIM" run "$f" --out "$tmp/fr" --no-trace >/dev/null 2>>"$tmp/err" \
    && python3 - "$tmp/se/search.json" "$f" "$tmp/fr" <<'PY' && ok || bad "$f does not reproduce its figures: $(cat "$tmp/err")"
import json, sys
search, scenario, out = sys.argv[1:]
point = next(p for p in json.load(open(search))["confirmed"] if p.get("scenario_file") == scenario)
served = json.load(open(out + "/serve.json"))
pct = "p%d" % json.load(open(search))["percentile"]
assert served["sustained"]["output_tokens_per_s_per_gpu"] == point["sustained_output_tokens_per_s_per_gpu"], (served["sustained"], point)
assert served["ttft_ms"][pct] == point["ttft_ms"] and served["tpot_ms"][pct] == point["tpot_ms"], point
assert json.load(open(out + "/report.json"))["step_time_ms"] == point["decode_step_ms"], point
PY
done

# --help documents every subcommand.
"$EPSIM" run --help >"$tmp/help"
for c in run keys net calibrate explain compare validate sweep serve search; do grep -q "^  $c" "$tmp/help" && ok || bad "--help lacks $c"; done

# --steps prints a line per step.
"$EPSIM" run scenarios/small-2node.json --steps 3 --no-trace --out "$tmp/st" >"$tmp/steps" 2>&1 \
  && [[ $(grep -cE '^ +[0-2] +[0-9.]+ ' "$tmp/steps") -eq 3 ]] && ok || bad "--steps 3 did not print 3 step lines"
"$EPSIM" run scenarios/seed.json --steps 0 --out "$tmp/o" >/dev/null 2>"$tmp/err"; [[ $? -eq 2 ]] && ok || bad "--steps 0 must exit 2"

# The interference fit (tools/fit_interference.py): two points of its rule on the E = 32 file's NCCL
# cases; 1.4 is the fitted round_stretch, so the current constants tie with it and are kept.
python3 tools/fit_interference.py kernels/results/ep2-h200x2-2026-11-29.json --impl nccl --epsim "$EPSIM" \
  --grid network.round_stretch=1.4,1.8 >"$tmp/fit" 2>&1 \
  && grep -qE '^ +1\.8 +2\.57 +9\.83$' "$tmp/fit" \
  && grep -qF 'choice: the current constants (median 3.36%, max 6.91%)' "$tmp/fit" && ok || bad "fit_interference: $(cat "$tmp/fit")"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
