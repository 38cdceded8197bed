#!/usr/bin/env bash
# Checks on the repository itself (issue 20): every path README.md names exists, and no
# ConfigObject integer is narrowed without a range check.
set -u
cd "$(dirname "$0")/../.."
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. Paths in README.md: every word that starts with one of the repository's folders (or is a
#    top-level file it names) must exist; globs must match. Outputs (out/, build/) and the
#    placeholder DIR/ are not paths in the repository. No path may leave it (../).
grep -n '\.\./' README.md | grep -v 'https\?://' | while read -r line; do echo "FAIL: README.md points outside the repository: $line"; done | grep . && fails=$((fails + 1))
# A path cited from another repository ("(github.com/deepseek-ai/DeepEP, docs/legacy.md)") is not
# ours: a match is skipped when its parenthesis, up to it, names a URL.
paths=$(python3 - <<'PY'
import re
seen = set()
for line in open("README.md", encoding="utf-8"):
    for m in re.finditer(r"(?<![A-Za-z0-9_./-])(?:\.ci|docs|kernels|models|placement|scenarios|sim|tests|tools|topology)/(?:[A-Za-z0-9_.*/-]|\{[A-Za-z0-9_.,-]*\})*", line):
        before = line[:m.start()]
        paren = before[before.rfind("(") + 1:] if "(" in before else ""
        if "github.com" in paren or "://" in paren:
            continue
        path = m.group(0).rstrip(".,:;")
        # One brace group, as the shell expands it: results/x{,-layer}.json names two files.
        b = re.search(r"\{([^}]*)\}", path)
        for alt in (b.group(1).split(",") if b else [None]):
            seen.add(path if alt is None else path[:b.start()] + alt + path[b.end():])
print("\n".join(sorted(seen)))
PY
)
n=0
for p in $paths; do
  n=$((n + 1))
  # shellcheck disable=SC2086
  compgen -G "$p" >/dev/null || [[ -e "$p" ]] || bad "README.md names $p, which does not exist"
done
[[ $n -gt 20 ]] || bad "README.md path check found only $n paths (the pattern broke?)"

# 2. Integer keys go through ConfigObject::integer_in (range-checked before narrowing): a cast of
#    integer(...) to a narrower type is how 2^32 + 1 became 1 (issue 20).
#    models/hf_config.cpp's HfReader::integer is not ConfigObject's: it bounds every value at 2^24.
hits=$(grep -rnE 'static_cast<[^>]*>\(\s*[A-Za-z_]+\.integer\(' --include=*.cpp --include=*.h models topology placement sim tools \
  | grep -v '^models/hf_config.cpp:' || true)
[[ -z "$hits" ]] || bad "narrowing casts of ConfigObject::integer (use integer_in<T>(key, min, max)):
$hits"

echo "repo checks: $n README paths; $fails failed"
[[ $fails -eq 0 ]]
