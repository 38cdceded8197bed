#!/usr/bin/env bash
# epsim report in a real browser: the HTML pages of a run, a compare and a sweep are loaded in headless
# Chromium (Debian's chromium; `tools/epsim test` installs it as root, this test installs nothing;
# without it the test is skipped, exit 77, unless EPSIM_REQUIRE_BROWSER=1 as in CI). Each must
# draw every chart with data (figure[data-chart] carries data-points > 0), raise no script error or
# blocked fetch (the page records them on <html data-errors>), reference nothing outside itself; a
# screenshot is taken. A page with a broken script must be caught (the check itself can fail).
set -u
: "${EPSIM:?set EPSIM to the epsim binary}"
source "$(dirname "$0")/test_lib.sh"

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
  if [[ ${EPSIM_REQUIRE_BROWSER:-0} == 1 ]]; then
    echo "FAIL: chromium is not installed and EPSIM_REQUIRE_BROWSER=1 (apt-get install chromium)"
    exit 1
  fi
  echo "SKIP: chromium is not installed, so the HTML report was not loaded in a browser" \
       "(tools/epsim test installs it when run as root; or: apt-get install chromium)"
  exit 77
fi
chrome() {  # chrome ARGS... URL: a fresh profile each time, nothing fetched in the background
  local profile; profile=$(mktemp -d -p "$tmp")
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-extensions --hide-scrollbars --user-data-dir="$profile" "$@" 2>/dev/null
}

# check_page NAME HTML CHART-IDS...: loaded, every chart drawn with data, no errors.
check_page() {
  local name=$1 html=$2; shift 2
  grep -qiE '(src|href)="?[a-z]+://' "$html" && bad "$name: the page references something outside itself" || ok
  chrome --dump-dom "file://$html" >"$tmp/$name.dom"
  python3 - "$tmp/$name.dom" "$@" <<'PY' 2>"$tmp/$name.err" && ok || bad "$name: $(tail -1 "$tmp/$name.err")"
import re, sys
dom = open(sys.argv[1]).read()
tag = re.search(r"<html[^>]*>", dom).group(0)
assert "data-errors" not in tag, "script errors: " + tag
drawn = dict(re.findall(r'<figure class="chart" data-chart="([^"]+)" data-points="(\d+)"', dom))
for chart in sys.argv[2:]:
    assert chart in drawn, f"chart {chart} missing (drawn: {sorted(drawn)})"
    assert int(drawn[chart]) > 0, f"chart {chart} has no data"
assert f'data-drawn="{len(drawn)}"' in tag, tag
PY
}

# A run: small-2node under Zipf routing (GPUs differ), dual micro-batch.
"$EPSIM" run scenarios/small-2node.json --set routing.distribution=zipf --set schedule.overlap=dual-microbatch \
  --no-trace --out "$tmp/run" >/dev/null && ok || bad "epsim run"
"$EPSIM" report "$tmp/run" -o "$tmp/run.html" >"$tmp/log" && ok || bad "epsim report (run): $(cat "$tmp/log")"
check_page run "$tmp/run.html" layer-breakdown heatmap-compute heatmap-exposed top-links placement-map memory
chrome --window-size=1280,2400 --screenshot="$tmp/run.png" "file://$tmp/run.html" >/dev/null
[[ -s $tmp/run.png && $(stat -c %s "$tmp/run.png") -gt 20000 ]] && ok || bad "no screenshot of the run report"

# A compare of two strategies.
"$EPSIM" compare scenarios/small-2node.json --placements contiguous,round_robin --out "$tmp/cmp" >/dev/null && ok || bad "epsim compare"
"$EPSIM" report "$tmp/cmp" -o "$tmp/cmp.html" >/dev/null && ok || bad "epsim report (compare)"
check_page compare "$tmp/cmp.html" cmp-step-time cmp-tokens cmp-link-tokens cmp-exposed cmp-balance cmp-expected cmp-memory

# A sweep over two axes: a line per value of the second, and the heatmap over both.
cat >"$tmp/spec.json" <<'JSON'
{"name": "report-test", "base": "scenarios/small-2node.json",
 "axes": [{"key": "schedule.chunks", "values": [1, 2, 4]}, {"key": "schedule.overlap", "values": ["serial", "dual-microbatch"]}]}
JSON
"$EPSIM" sweep "$tmp/spec.json" --out "$tmp/sweep" -j 2 >/dev/null && ok || bad "epsim sweep"
"$EPSIM" report "$tmp/sweep/results.jsonl" -o "$tmp/sweep.html" >/dev/null && ok || bad "epsim report (sweep)"
check_page sweep "$tmp/sweep.html" sweep-line sweep-heatmap

# The check catches a broken page: a script error is recorded and fails it.
sed 's/data.kind === .run./data.kind.no.such.thing === 1/' "$tmp/run.html" >"$tmp/broken.html"
chrome --dump-dom "file://$tmp/broken.html" | grep -q '<html[^>]*data-errors=' && ok || bad "a broken script went unnoticed"

# Bad input: one line, exit 2.
"$EPSIM" report "$tmp" -o "$tmp/x.html" >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -eq 2 && $(wc -l <"$tmp/err") -eq 1 ]] && grep -q "holds no results.jsonl" "$tmp/err" && ok || bad "report of an empty directory: exit $rc, $(cat "$tmp/err")"

finish
