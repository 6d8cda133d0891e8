#!/bin/bash
# Runs one command in a VM per kernel given, side by side: each VM is one
# emulated CPU's work (TCG, single-threaded), so on a machine with as many
# CPUs as kernels they take the time of one. Lines are prefixed with their
# kernel; the exit status is the first failing kernel's. `make test-vm` runs
# the end-to-end suite this way, `make bench` the benchmarks.
# With KRSI_VM_LOGS set to a directory, each kernel's output, exit status and
# seconds are kept there too (<kernel>.log, .rc, .seconds: scripts/run-tests.sh).
# usage: in-each-vm.sh "KERNELS" "VM FLAGS" "WHAT" COMMAND...
set -uo pipefail
kernels=$1 flags=$2 what=$3
shift 3
if [ -n "${KRSI_VM_LOGS:-}" ]; then
	dir=$KRSI_VM_LOGS
	mkdir -p "$dir"
else
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
fi
parallel=$(nproc)
running=0
for k in $kernels; do
	rm -f "$dir/$k.rc" "$dir/$k.seconds"
	(
		start=$SECONDS
		# shellcheck disable=SC2086 # flags are words
		./bin/krsi vm --kernel "$k" $flags -- "$@" 2>&1 | sed -u "s/^/[$k] /" | tee "$dir/$k.log"
		echo "${PIPESTATUS[0]}" >"$dir/$k.rc"
		echo $((SECONDS - start)) >"$dir/$k.seconds"
	) &
	running=$((running + 1))
	if [ "$running" -ge "$parallel" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
rc=0
for k in $kernels; do
	r=$(cat "$dir/$k.rc" 2>/dev/null || echo 1)
	echo "== $what on Linux $k: $([ "$r" -eq 0 ] && echo passed || echo "FAILED (exit $r)") in $(cat "$dir/$k.seconds" 2>/dev/null || echo '?') s"
	[ "$rc" -ne 0 ] || rc=$r
done
exit "$rc"
