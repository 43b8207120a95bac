#!/bin/sh
# ccvm guest init (PID 1 of the embedded default guest).
#
# Protocol, on the control channel (the virtio port named ccvm.control, or
# /dev/hvc1 when a launcher gives two virtio consoles instead; separate from
# the kernel's serial console and from the program's output):
#   CCVM:INIT <stage>     progress
#   CCVM:FAIL <reason>    init could not set the guest up; the host fails at once
#   CCVM:EXIT <status>    the program's exit status, last line before power-off
# The program's output goes to the port named in CCVM_OUTPUT_PORT (else
# /dev/hvc0; on a terminal always hvc0, its tty), which carries nothing else,
# so nothing the program prints can be taken for a protocol line.  A port,
# unlike a console, waits for a slow host instead of losing bytes.  init
# holds the control channel open on fd 5 (a port is open to one process at
# a time); the program never gets that descriptor.
# Configuration arrives out of band through fw_cfg (opt/ccvm/*), never
# through the kernel command line.

PATH=/bin
export PATH

/bin/busybox mkdir -p /proc /sys /dev /tmp /run /etc
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# ccvm's own guest-side state (overlay layers, HOME) lives under /ccvm, which
# the launcher never lets the share be mounted over.
mkdir -p /ccvm
mount -t tmpfs tmpfs /ccvm

exec 5>/dev/console # the control channel, once it is there
say() {
	printf 'CCVM:%s\n' "$*" >&5
}

# The device of the virtio port named $1; fails while there is none.
port_named() {
	for named in /sys/class/virtio-ports/*/name; do
		if [ "$(cat "$named" 2>/dev/null)" = "$1" ]; then
			named=${named%/name}
			[ -c "/dev/${named##*/}" ] && echo "/dev/${named##*/}" && return 0
		fi
	done
	return 1
}

# Runs the function $2 every 0.05 s until it succeeds; after 10 s init fails with $1.
await() {
	tries=0
	until "$2"; do
		tries=$((tries + 1))
		[ "$tries" -gt 200 ] && fail "$1"
		sleep 0.05
	done
}

fail() {
	say "FAIL $*"
	echo "ccvm init: FAIL: $*" >/dev/console
	sync
	poweroff -f
	sleep 5
	exit 1
}

# The window size relay (a terminal launch): the host writes "size ROWS COLS"
# lines on the virtio port named $1; each is set on hvc0, and the kernel
# sends SIGWINCH to the program's foreground job; "CCVM:TTY size ROWS COLS"
# says it is set (the host holds the keys typed after a resize until then).
# "CCVM:INIT tty" tells the host that sizes are read from now on. Anything
# else on the port is ignored.
winsize_relay() {
	tries=0
	until port=$(port_named "$1"); do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			echo "ccvm init: warning: no virtio port $1 after 5s; the window size stays as it was" >&2
			return 0
		fi
		sleep 0.05
	done
	exec 3<"$port" || return 0
	say "INIT tty"
	while read -r what rows cols <&3; do
		[ "$what" = size ] || continue
		case $rows$cols in '' | *[!0-9]*) continue ;; esac
		[ "$rows" -gt 0 ] && [ "$cols" -gt 0 ] || continue
		stty -F /dev/hvc0 rows "$rows" cols "$cols" && say "TTY size $rows $cols"
	done
}

while read -r module; do
	[ -n "$module" ] || continue
	insmod "/lib/modules/$module" 2>/dev/console || echo "ccvm init: warning: insmod $module failed" >/dev/console
done </etc/ccvm/modules

# The control channel (the port ccvm.control, else hvc1) and the fw_cfg entries.
control_ready() {
	[ -d /sys/firmware/qemu_fw_cfg/by_name/opt/ccvm ] || return 1
	control=$(port_named ccvm.control) || { control=/dev/hvc1 && [ -c "$control" ]; }
}
await "no control channel (virtio port ccvm.control, or /dev/hvc1) or fw_cfg after 10s" control_ready
exec 5>"$control"
say "INIT channel"

CFG=/sys/firmware/qemu_fw_cfg/by_name/opt/ccvm
cfg() {
	cat "$CFG/$1/raw" 2>/dev/null
}

# Settings: plain KEY=VALUE lines, shell-quoted by the host.
cfg config.sh >/etc/ccvm/config.sh || fail "no opt/ccvm/config.sh in fw_cfg"
# shellcheck source=/dev/null # written above from fw_cfg
. /etc/ccvm/config.sh

# The program's channel: the port the host named, else hvc0.
output_ready() {
	if [ -n "${CCVM_OUTPUT_PORT:-}" ]; then
		output=$(port_named "$CCVM_OUTPUT_PORT")
	else
		output=/dev/hvc0
		[ -c "$output" ]
	fi
}
await "no program channel (${CCVM_OUTPUT_PORT:-/dev/hvc0}) after 10s" output_ready

mkdir -p "$CCVM_CWD"
if [ "$CCVM_SHARE" = writable ]; then
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ccvm-cwd "$CCVM_CWD" ||
		fail "cannot mount the 9p share"
else
	mkdir -p /ccvm/lower /ccvm/overlay/upper /ccvm/overlay/work
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro ccvm-cwd /ccvm/lower ||
		fail "cannot mount the 9p share"
	mount -t overlay overlay \
		-o lowerdir=/ccvm/lower,upperdir=/ccvm/overlay/upper,workdir=/ccvm/overlay/work "$CCVM_CWD" ||
		fail "cannot mount the overlay over the share"
fi
say "INIT share $CCVM_SHARE"

cfg env.sh >/etc/ccvm/env.sh || fail "no opt/ccvm/env.sh in fw_cfg"
cfg argv.sh >/etc/ccvm/argv.sh || fail "no opt/ccvm/argv.sh in fw_cfg"

# HOME is guest memory, never inside the share: staged configuration and
# the program's writes to it cannot reach the host, whatever the share mode.
HOME=/ccvm/home
mkdir -p "$HOME"
export HOME
# Staged configuration (opt/ccvm/home/<path>) becomes $HOME/<path>, private
# to the guest: its writes stay in the guest's memory.
if [ -d "$CFG/home" ]; then
	find -L "$CFG/home" -name raw -type f | while read -r raw; do
		rel=${raw#"$CFG/home/"}
		rel=${rel%/raw}
		mkdir -p "$HOME/$(dirname "$rel")"
		cat "$raw" >"$HOME/$rel"
		chmod 600 "$HOME/$rel"
	done
fi
cd "$CCVM_CWD" || fail "cannot enter $CCVM_CWD"
say "INIT run"
if [ "$CCVM_MODE" = shell ] || [ "${CCVM_TTY:-}" = 1 ]; then
	# On a terminal: hvc0 is the program's controlling terminal. With
	# CCVM_TTY=1 the host told its TERM and window size, and later sizes
	# come on the virtio port named CCVM_WINSIZE_PORT (see winsize_relay).
	# init holds hvc0 open throughout: a terminal's size (and settings) last
	# only while someone has it open, and the relay may set one at any time.
	exec 4<>/dev/hvc0
	relay=
	if [ "${CCVM_TTY:-}" = 1 ]; then
		if [ "${CCVM_ROWS:-0}" -gt 0 ] && [ "${CCVM_COLS:-0}" -gt 0 ]; then
			stty rows "$CCVM_ROWS" cols "$CCVM_COLS" <&4 2>/dev/console
		fi
		if [ -n "${CCVM_WINSIZE_PORT:-}" ]; then
			winsize_relay "$CCVM_WINSIZE_PORT" </dev/null >/dev/null 2>/dev/console 4>&- &
			relay=$!
		fi
	fi
	# A subshell is not a process-group leader, so setsid runs the program
	# in place (no fork) and init waits for it; -c makes hvc0 its terminal.
	(
		if [ "${CCVM_TTY:-}" = 1 ]; then
			if [ -n "$CCVM_TERM" ]; then export TERM="$CCVM_TERM"; else unset TERM; fi
		fi
		# shellcheck source=/dev/null # written above from fw_cfg
		. /etc/ccvm/env.sh
		if [ "$CCVM_MODE" = shell ]; then
			set -- sh -l
		else
			# shellcheck source=/dev/null
			. /etc/ccvm/argv.sh
		fi
		exec setsid -c "$@"
	) <>/dev/hvc0 >&0 2>&0 4>&- 5>&-
	status=$?
	if [ -n "$relay" ]; then kill "$relay" 2>/dev/null; fi
	exec 4>&-
else
	# shellcheck disable=SC2094 # stty sets hvc0's mode; nothing is read from the program's channel
	(
		# Not a terminal session: the program's bytes pass unchanged (a port;
		# on hvc0 no \n -> \r\n: this subshell holds it open, so that sticks).
		if [ "$output" = /dev/hvc0 ]; then stty -F /dev/hvc0 -onlcr 2>/dev/null; fi
		# shellcheck source=/dev/null # written above from fw_cfg
		. /etc/ccvm/env.sh
		# shellcheck source=/dev/null
		. /etc/ccvm/argv.sh
		exec "$@"
	) <>/dev/null >"$output" 2>&1 5>&-
	status=$?
fi
say "EXIT $status"
sync
poweroff -f
sleep 5
