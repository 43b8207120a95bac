#!/bin/sh
# ccvm-stub: stands where the real agent program would run and reports
# what the guest sees, one marked line per fact:  CCVM:FACT key=value
# Values that could hold any byte are hex-encoded.
# Exit status: $CCVM_STUB_EXIT (default 0).

fact() {
	printf 'CCVM:FACT %s=%s\n' "$1" "$2"
}

hex() {
	printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

fact argc "$#"
i=0
for arg in "$@"; do
	fact "argv.$i" "$(hex "$arg")"
	i=$((i + 1))
done
fact cwd "$(hex "$PWD")"

probe=.ccvm-probe
if [ -f "$probe" ]; then
	fact share.read "$(hex "$(cat "$probe")")"
else
	fact share.read missing
fi

token="${CCVM_STUB_TOKEN:-written-by-guest}"
if printf '%s' "$token" >.ccvm-guest-wrote 2>/dev/null && [ "$(cat .ccvm-guest-wrote)" = "$token" ]; then
	fact share.write ok
else
	fact share.write failed
fi
fact share.fstype "$(awk -v d="$PWD" '$2 == d { t = $3 } END { print t }' /proc/mounts)"

# Staged configuration: the settings are shown, a credential only by size.
if [ -f "$HOME/.claude/settings.json" ]; then
	fact home.settings "$(hex "$(cat "$HOME/.claude/settings.json")")"
else
	fact home.settings missing
fi
if [ -f "$HOME/.claude/.credentials.json" ]; then
	fact home.credentials "present:$(wc -c <"$HOME/.claude/.credentials.json" | tr -d ' ')"
else
	fact home.credentials missing
fi

exit "${CCVM_STUB_EXIT:-0}"
