#!/usr/bin/env bash
# epsim sweep survives SIGKILL: a 200-point sweep is killed part-way (and a torn half line is left at
# the end of its results, as a kill inside a write would leave), then the same command is rerun. The
# final results.jsonl must hold each point exactly once, with the same values (all but wall_s) as
# an uninterrupted run of the same sweep.
set -u
: "${EPSIM:?set EPSIM to the epsim binary}"
source "$(dirname "$0")/test_lib.sh"
pid=
on_exit='[[ -n $pid ]] && kill -9 "$pid" 2>/dev/null'

# 200 points of the 2-node scenario under Zipf routing: every point a different gate sample.
cat >"$tmp/spec.json" <<'JSON'
{"name": "resume-200", "base": "scenarios/small-2node.json",
 "set": {"routing.distribution": "zipf", "model.layers": 12},
 "axes": [{"key": "schedule.overlap", "values": ["serial", "dual-microbatch"]}],
 "random": {"samples": 100, "seed": 11,
            "axes": [{"key": "routing.seed", "int": [1, 1000000]}, {"key": "routing.zipf_s", "uniform": [0.2, 1.2]}]}}
JSON

"$EPSIM" sweep "$tmp/spec.json" --out "$tmp/full" -j 2 >"$tmp/full.log" 2>&1 && ok || bad "uninterrupted sweep: $(tail -2 "$tmp/full.log")"

"$EPSIM" sweep "$tmp/spec.json" --out "$tmp/part" -j 2 >"$tmp/part.log" 2>&1 &
pid=$!
for _ in $(seq 1 3000); do
  [[ -f $tmp/part/results.jsonl && $(wc -l <"$tmp/part/results.jsonl") -ge 30 ]] && break
  sleep 0.01
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
killed_at=$(wc -l <"$tmp/part/results.jsonl")
[[ $killed_at -ge 30 && $killed_at -lt 200 ]] && ok || bad "the kill came at $killed_at of 200 points (want part-way)"
printf '{"id":"torn","index":' >>"$tmp/part/results.jsonl"   # a line cut short

"$EPSIM" sweep "$tmp/spec.json" --out "$tmp/part" -j 2 >"$tmp/rerun.log" 2>&1 && ok || bad "rerun: $(tail -2 "$tmp/rerun.log")"
grep -q "200 points: $((200 - killed_at)) run now, $killed_at already in" "$tmp/rerun.log" && ok \
  || bad "rerun did not skip the $killed_at finished points: $(grep 'epsim sweep:' "$tmp/rerun.log")"

python3 - "$tmp/full/results.jsonl" "$tmp/part/results.jsonl" <<'PY' && ok || bad "resumed results differ from the uninterrupted run"
import json, sys
def load(path):
    lines = [json.loads(l) for l in open(path)]
    ids = [r["id"] for r in lines]
    assert len(ids) == 200 and len(set(ids)) == 200, (path, len(ids), len(set(ids)))
    for r in lines:
        assert "error" not in r, r["error"]
        del r["wall_s"]
    return {r["id"]: r for r in lines}
full, part = load(sys.argv[1]), load(sys.argv[2])
assert full == part
assert len({json.dumps(r["metrics"], sort_keys=True) for r in full.values()}) > 100  # the points differ
PY
[[ $(wc -l <"$tmp/part/summary.csv") -eq 201 ]] && ok || bad "summary.csv should have a header and 200 rows"
cut -d, -f1-8 "$tmp/full/summary.csv" | cmp -s - <(cut -d, -f1-8 "$tmp/part/summary.csv") && ok || bad "summary.csv differs"

finish
