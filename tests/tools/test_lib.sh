# Sourced by the shell tests of tests/tools/ (not cli_test.sh): a temporary directory removed at exit
# (after running $on_exit, if set), pass/fail counters and the closing line.
tmp=$(mktemp -d)
on_exit=
trap 'eval "$on_exit"; rm -rf "$tmp"' EXIT
fails=0; passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
finish() {
  echo "$passes passed, $fails failed"
  [[ $fails -eq 0 ]]
}
