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
expect_error zero-size 'workload.tokens_per_gpu = 0: must be >= 1' run scenarios/seed.json --set workload.tokens_per_gpu=0 --out "$tmp/o"
expect_error negative 'cluster.nic_gbps = -5: must be > 0' run scenarios/seed.json --set cluster.nic_gbps=-5 --out "$tmp/o"
expect_error topk 'model.top_k = 300: must be in [1, routed_experts = 256]' run scenarios/seed.json --set model.top_k=300 --out "$tmp/o"
expect_error max-nodes-groups 'routing.max_nodes = 2: node-limited routing replaces the group limit' run scenarios/seed.json --set model.groups=8 --set model.topk_groups=4 --set routing.max_nodes=2 --out "$tmp/o"
expect_error max-nodes-room 'routing.max_nodes = 1: must leave room for top_k = 12 experts (8 routed experts per node' run scenarios/seed.json --set parallelism.ep=16 --set model.routed_experts=16 --set model.top_k=12 --set routing.max_nodes=1 --out "$tmp/o"
expect_error ep 'parallelism.ep = 48: must divide the GPU count' run scenarios/seed.json --set parallelism.ep=48 --out "$tmp/o"
expect_error ep-experts 'parallelism.ep = 256: must divide model.routed_experts = 96' run scenarios/seed.json --set model.routed_experts=96 --out "$tmp/o"
expect_error shared-routed 'parallelism.shared_expert = "routed": needs model.shared_experts > 0' run scenarios/seed.json --set parallelism.shared_expert=routed --set model.shared_experts=0 --out "$tmp/o"
expect_error shared-slots 'parallelism.ep = 256: must divide the routed experts 257' run scenarios/seed.json --set parallelism.shared_expert=routed --out "$tmp/o"
expect_error slots 'parallelism.slots_per_gpu = 3: ep x slots_per_gpu = 216 slots must hold the 256 routed experts' run scenarios/seed.json --set cluster.nodes=9 --set parallelism.ep=72 --set parallelism.slots_per_gpu=3 --out "$tmp/o"
expect_error slots-strategy 'placement.strategy = "contiguous": parallelism.slots_per_gpu = 4 leaves 32 slots' run scenarios/seed.json --set cluster.nodes=9 --set parallelism.ep=72 --set parallelism.slots_per_gpu=4 --out "$tmp/o"
expect_error gpus-nodes 'cluster.gpus = 20: must be a multiple of cluster.gpus_per_node = 8' run scenarios/seed.json --set cluster.gpus=20 --out "$tmp/o"
expect_error tp 'parallelism.attention_tp = 3: must divide cluster.gpus_per_node = 8' run scenarios/seed.json --set parallelism.attention_tp=3 --out "$tmp/o"
echo '{"num_hidden_layers": 61}' >"$tmp/config.json"
expect_error missing-hf 'config.json:hidden_size = (missing)' run scenarios/seed.json --set model.hf_config="$tmp/config.json" --out "$tmp/o"
expect_error bad-command "unknown command 'rnu'" rnu
expect_error window 'network.completion_window = 0.5: must be in [0, 0.05]' run scenarios/seed.json --set network.completion_window=0.5 --out "$tmp/o"
expect_error net-window '--completion-window = 0.2: must be in [0, 0.05]' net --nodes 2 --gpus-per-node 2 --pattern alltoall --bytes 1000 --completion-window 0.2
expect_error replica-choice 'placement.replica_choice = "closest": must be one of' run scenarios/seed.json --set placement.replica_choice=closest --out "$tmp/o"

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

# epsim sweep: bad specifications and bad points exit 2 with one line naming the path.
echo '{"base": "scenarios/small-2node.json", "axes": [{"key": "schedule.chunk", "values": [1]}]}' >"$tmp/sweep-key.json"
expect_error sweep-key 'axes[0].key = "schedule.chunk": not a scenario key' sweep "$tmp/sweep-key.json" --out "$tmp/sw"
echo '{"base": "scenarios/small-2node.json", "axes": [{"key": "parallelism.ep", "values": [16, 6]}]}' >"$tmp/sweep-ep.json"
expect_error sweep-point 'parallelism.ep = 6: must divide the GPU count (nodes x gpus_per_node = 16) (sweep point 1: parallelism.ep=6;' sweep "$tmp/sweep-ep.json" --out "$tmp/sw"
[[ ! -s $tmp/sw/results.jsonl ]] && ok || bad "a rejected sweep must run no point"
expect_error sweep-missing "nope.json: cannot open file" sweep "$tmp/nope.json" --out "$tmp/sw"
expect_error sweep-jobs "-j -1: must be >= 0" sweep "$tmp/sweep-ep.json" -j -1
# skip_invalid: the rejected point is recorded with its message, the others run, exit 0.
echo '{"base": "scenarios/small-2node.json", "skip_invalid": true, "axes": [{"key": "parallelism.ep", "values": [16, 6]}]}' >"$tmp/sweep-skip.json"
"$EPSIM" sweep "$tmp/sweep-skip.json" --out "$tmp/skip" >"$tmp/out" 2>&1 && grep -q '"error":"parallelism.ep = 6' "$tmp/skip/results.jsonl" \
  && [[ $(grep -c step_time_ms "$tmp/skip/results.jsonl") -eq 1 ]] && ok || bad "skip_invalid: $(cat "$tmp/out")"

# --help documents every subcommand.
"$EPSIM" run --help >"$tmp/help"
for c in run keys net calibrate explain compare validate sweep; do grep -q "^  $c" "$tmp/help" && ok || bad "--help lacks $c"; done

# --steps prints a line per step.
"$EPSIM" run scenarios/small-2node.json --steps 3 --no-trace --out "$tmp/st" >"$tmp/steps" 2>&1 \
  && [[ $(grep -cE '^ +[0-2] +[0-9.]+ ' "$tmp/steps") -eq 3 ]] && ok || bad "--steps 3 did not print 3 step lines"
"$EPSIM" run scenarios/seed.json --steps 0 --out "$tmp/o" >/dev/null 2>"$tmp/err"; [[ $? -eq 2 ]] && ok || bad "--steps 0 must exit 2"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
