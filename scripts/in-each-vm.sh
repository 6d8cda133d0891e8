#!/bin/bash
# Runs one command in a VM per kernel given, side by side: each VM is one
# emulated CPU's work (TCG, single-threaded), so on a machine with as many
# CPUs as kernels they take the time of one. Lines are prefixed with their
# kernel; the exit status is the first failing kernel's. `make test-vm` runs
# the end-to-end suite this way, `make bench` the benchmarks.
# usage: in-each-vm.sh "KERNELS" "VM FLAGS" "WHAT" COMMAND...
set -uo pipefail
kernels=$1 flags=$2 what=$3
shift 3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
parallel=$(nproc)
running=0
for k in $kernels; do
	(
		# shellcheck disable=SC2086 # flags are words
		./bin/krsi vm --kernel "$k" $flags -- "$@" 2>&1 | sed -u "s/^/[$k] /"
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
	echo "== $what on Linux $k: $([ "$r" -eq 0 ] && echo passed || echo "FAILED (exit $r)")"
	[ "$rc" -ne 0 ] || rc=$r
done
exit "$rc"
