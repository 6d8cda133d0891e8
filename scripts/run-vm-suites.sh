#!/bin/bash
# Runs the VM end-to-end suite on every kernel given, all at once: each VM is
# one emulated CPU's work (TCG, single-threaded), so on a machine with as many
# CPUs as kernels they take the time of one. Lines are prefixed with their
# kernel; the exit status is the first failing suite's.
# usage: run-vm-suites.sh "KERNELS" "VM FLAGS" TEST_FILES...
set -uo pipefail
kernels=$1 flags=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
parallel=$(nproc)
running=0
for k in $kernels; do
	(
		# shellcheck disable=SC2086 # flags are words
		./bin/krsi vm --kernel "$k" $flags -- node --import tsx --test "$@" 2>&1 | sed -u "s/^/[$k] /"
		echo "${PIPESTATUS[0]}" >"$dir/$k.rc"
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
	echo "== VM end-to-end tests on Linux $k: $([ "$r" -eq 0 ] && echo passed || echo "FAILED (exit $r)")"
	[ "$rc" -ne 0 ] || rc=$r
done
exit "$rc"
