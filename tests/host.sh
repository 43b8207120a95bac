#!/bin/sh
# Host-side checks of a ccvm launcher through its dry-run hook, no VM.
#
#   sh tests/host.sh                          # checks `ccvm vm`
#   sh tests/host.sh ./result/bin/ccvm vm     # checks another build of it
#   sh tests/host.sh /path/to/wrapper         # any wrapper with the same contract
#   CCVM=/path/to/wrapper sh tests/host.sh    # the same (what ccvm host does)
#
# The wrapper must print its launch plan as JSON when CCVM_DRYRUN=1.  Run
# from the project root (CCVM_MATRIX defaults to ./matrix there).  Needs
# python3 (to read the JSON).  Prints one line per check and exits non-zero
# when any check fails.

set -u

if [ "$#" -eq 0 ] && [ -n "${CCVM:-}" ]; then
	set -- "$CCVM" # ccvm host sets CCVM to the launcher with its dry-run hook on
elif [ "$#" -eq 0 ]; then
	set -- ccvm vm
fi
case $1 in
	*/*) # a path: make it absolute, the checks run in a scratch directory
		program=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
		shift
		set -- "$program" "$@"
		;;
esac
if [ -z "${CCVM_MATRIX:-}" ] && [ -d matrix ]; then
	CCVM_MATRIX=$PWD/matrix
	export CCVM_MATRIX
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ccvm-host-sh.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
secret="host-sh-planted-secret-$$"
mkdir -p "$work/home/.claude" "$work/cwd"
printf '{"model": "stub"}\n' >"$work/home/.claude/settings.json"
printf '{"token": "%s"}\n' "$secret" >"$work/home/.claude/.credentials.json"
chmod 600 "$work/home/.claude/.credentials.json"
: "${XDG_CACHE_HOME:=$HOME/.cache}"
export XDG_CACHE_HOME
HOME=$work/home
export HOME

passed=0
failed=0
check() {
	if [ "$2" = ok ]; then
		passed=$((passed + 1))
		echo "ok - $1"
	else
		failed=$((failed + 1))
		echo "FAIL - $1: $2"
	fi
}

dryrun() {
	(cd "$work/cwd" && CCVM_DRYRUN=1 "$@")
}

# Read one field of the plan on stdin: field PATH (e.g. share.mode).
field() {
	python3 -c 'import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[part]
print(json.dumps(value, ensure_ascii=False))' "$1"
}

plan=$(dryrun "$@" prog 2>"$work/stderr")
status=$?
if [ "$status" -eq 0 ]; then check "dry run prints a plan" ok; else check "dry run prints a plan" "exit $status"; fi

if printf '%s' "$plan" | grep -qF "$secret" || grep -qF "$secret" "$work/stderr"; then
	check "credential stays out of the plan and output" "secret found"
else
	check "credential stays out of the plan and output" ok
fi

mode=$(printf '%s' "$plan" | field staged | python3 -c 'import json, sys
modes = {f["guest_path"]: f["mode"] for f in json.load(sys.stdin)}
print(modes.get("~/.claude/.credentials.json", "missing"))')
if [ "$mode" = 0600 ]; then check "credentials staged with mode 0600" ok; else check "credentials staged with mode 0600" "$mode"; fi

# shellcheck disable=SC2016 # the dollar signs are data: they must arrive unexpanded
expected='["prog", "a b", "it'"'"'s", "$HOME", "back\\slash", "", "--shell", "héllo"]'
# shellcheck disable=SC2016
got=$(dryrun "$@" prog 'a b' "it's" '$HOME' 'back\slash' '' --shell 'héllo' | field guest_argv)
if [ "$got" = "$expected" ]; then check "argv passes verbatim" ok; else check "argv passes verbatim" "$got"; fi

got=$(CCVM_SHELL=1 dryrun "$@" | field mode)
if [ "$got" = '"shell"' ]; then check "CCVM_SHELL=1 selects the shell" ok; else check "CCVM_SHELL=1 selects the shell" "$got"; fi

got=$(CCVM_ACCEL=kvm dryrun "$@" --accel tcg prog | field accel)
if [ "$got" = '"tcg"' ]; then check "a flag beats the environment" ok; else check "a flag beats the environment" "$got"; fi

CCVM_ACCEL=foo dryrun "$@" prog >/dev/null 2>&1
status=$?
if [ "$status" -eq 2 ]; then check "CCVM_ACCEL=foo exits 2" ok; else check "CCVM_ACCEL=foo exits 2" "exit $status"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
