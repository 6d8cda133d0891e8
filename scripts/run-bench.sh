#!/bin/bash
# `make bench`: `krsi bench all` in one VM boot per kernel, the kernels side
# by side (each VM is one emulated CPU's work, as in run-vm-suites.sh). Every
# ratio is measured within one boot, so the two boots need not be quiet with
# respect to each other; nothing else should run on the machine meanwhile.
# usage: run-bench.sh "KERNELS" OUT_DIR [krsi bench flags...]
set -uo pipefail
kernels=$1 out=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$out"
for k in $kernels; do
	(
		./bin/krsi vm --kernel "$k" --timeout 1500 --writable "$out" -- \
			./bin/krsi bench all --out "$out" --command "make bench" "$@" 2>&1 | sed -u "s/^/[$k] /"
		echo "${PIPESTATUS[0]}" >"$dir/$k.rc"
	) &
done
wait
rc=0
for k in $kernels; do
	r=$(cat "$dir/$k.rc" 2>/dev/null || echo 1)
	echo "== benchmarks on Linux $k: $([ "$r" -eq 0 ] && echo done || echo "FAILED (exit $r)")"
	[ "$r" -eq 0 ] || [ "$rc" -ne 0 ] || rc=$r
done
exit "$rc"
