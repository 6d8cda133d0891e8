#!/bin/bash
# The test phases of `make test`: the unit tests, the host kernel tests, then
# the VM suites on every kernel side by side. Every phase runs whatever the
# others did; its output goes to the terminal and to $RESULTS/<phase>.log.
# At the end, one table: per phase (per kernel), the tests passed, failed and
# skipped, and the minutes. Exit status 0 only when every phase passed.
# usage: run-tests.sh RESULTS   (UNIT_TESTS, HOST_TESTS, VM_KERNELS, VM_FLAGS
# and VM_SUITE in the environment, as the Makefile exports them)
set -uo pipefail
results=${1:?usage: run-tests.sh RESULTS}
rm -rf "$results"
mkdir -p "$results"
started=$SECONDS

# Runs a host phase: NAME COMMAND...
phase() {
	local name=$1 start=$SECONDS
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$results/$name.log"
	echo "${PIPESTATUS[0]}" >"$results/$name.rc"
	echo $((SECONDS - start)) >"$results/$name.seconds"
}

# shellcheck disable=SC2086 # the lists are words
phase unit node --import tsx --test $UNIT_TESTS
# shellcheck disable=SC2086
phase host node --import tsx --test $HOST_TESTS
echo "== VM end-to-end suites on Linux $VM_KERNELS, side by side"
# shellcheck disable=SC2086
KRSI_VM_LOGS=$results/vm ./scripts/in-each-vm.sh "$VM_KERNELS" "$VM_FLAGS" "VM end-to-end suites" $VM_SUITE

# The node test runner's closing counts (the last "ℹ pass N" etc. of a log).
# Skipped: the runner counts skipped tests but not skipped suites (a suite
# below its kernel minimum, whose tests never run), so the column counts the
# runner's skip lines ("﹣ name # reason"), one per skipped test or suite.
count() { # LOG WORD
	if [ "$2" = skipped ] && [ -f "$1" ]; then
		grep -acE '^(\[[^]]*\] )? *﹣ .* # ' "$1"
		return
	fi
	grep -aE "ℹ $2 [0-9]+\$" "$1" 2>/dev/null | tail -n 1 | grep -oE '[0-9]+$' || echo '-'
}
row() { # LABEL LOG RC SECONDS
	local rc status
	rc=$(cat "$3" 2>/dev/null || echo 1)
	status=$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")
	printf '%-28s %7s %7s %8s %8s  %s\n' "$1" "$(count "$2" pass)" "$(count "$2" fail)" "$(count "$2" skipped)" \
		"$(awk -v s="$(cat "$4" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f", s / 60 }')" "$status"
	[ "$rc" -eq 0 ]
}

echo
echo "== make test: summary"
printf '%-28s %7s %7s %8s %8s  %s\n' 'phase' 'passed' 'failed' 'skipped' 'minutes' 'result'
ok=0
row 'unit (host)' "$results/unit.log" "$results/unit.rc" "$results/unit.seconds" || ok=1
row "host kernel $(uname -r | cut -d- -f1)" "$results/host.log" "$results/host.rc" "$results/host.seconds" || ok=1
for k in $VM_KERNELS; do
	row "VM, Linux $k" "$results/vm/$k.log" "$results/vm/$k.rc" "$results/vm/$k.seconds" || ok=1
done
echo "wall time $(awk -v s=$((SECONDS - started)) 'BEGIN { printf "%.1f", s / 60 }') min; logs in $results"
exit "$ok"
