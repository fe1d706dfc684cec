# lib.sh - helpers for CLI end-to-end tests. Source it, call `check NAME CMD...` or
# `check_fails NAME EXPECTED_RC CMD...`, end with `finish`. Uses $CQUANTO and a scratch dir $T.
set -u
: "${CQUANTO:=build/release/cquanto}"
T=$(mktemp -d "${TMPDIR:-/tmp}/cqcli.XXXXXX")
trap 'rm -rf "$T"' EXIT
_pass=0 _fail=0
pass() { _pass=$((_pass + 1)); }
fail() { _fail=$((_fail + 1)); echo "  FAIL $*"; }
# check NAME CMD...: CMD must exit 0.
check() { local n=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then pass; else fail "$n (exit $?): $(head -c 300 "$T/err")"; fi; }
# check_rc NAME RC CMD...: CMD must exit with RC.
check_rc() { local n=$1 want=$2; shift 2; "$@" >"$T/out" 2>"$T/err"; local rc=$?; if [ $rc -eq "$want" ]; then pass; else fail "$n: exit $rc, wanted $want: $(head -c 300 "$T/err")"; fi; }
# expect NAME CONDITION-CMD...: a plain assertion.
expect() { local n=$1; shift; if "$@"; then pass; else fail "$n"; fi; }
finish() { echo "$_pass passed, $_fail failed"; [ $_fail -eq 0 ]; }
