#!/usr/bin/env bash
# make demo: runs the scripted scenario where BPF LSM programs can run: here
# if this kernel allows them, otherwise in a VM booting Debian's Linux 6.12.
set -euo pipefail
cd "$(dirname "$0")/.."

if ./bin/krsi doctor >/dev/null 2>&1; then
	exec ./demo/scenario.sh
fi
echo "demo: this kernel cannot run BPF LSM programs (./bin/krsi doctor says why);" >&2
echo "demo: running the scenario in a VM with Debian's Linux 6.12 instead." >&2
exec ./bin/krsi vm --kernel 6.12 -- ./demo/scenario.sh
