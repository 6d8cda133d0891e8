#!/usr/bin/env bash
# Installs the Debian packages krsi builds and tests with. Idempotent: when
# everything is present it only asks dpkg, which takes a fraction of a second.
set -euo pipefail

packages=(
	# BPF toolchain: clang -target bpf, bpftool (vmlinux.h, object linking), libbpf.
	clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	# node-gyp's needs for the native binding; curl fetches the Node runtime
	# from the npm registry (scripts/setup-node.sh).
	make g++ python3 curl ca-certificates
	# The VM harness: QEMU, a static busybox for the initramfs, kmod's depmod,
	# xz and zstd to unpack the 6.12 kernel's compressed modules and image.
	qemu-system-x86 busybox-static kmod xz-utils zstd
	# The benchmarks' classic baseline (krsi bench exec): audit, as in the seed.
	auditd
	# The kernel-module and mount tests: out-of-tree modules built against
	# the VM kernels' headers (gcc-12, as Debian builds them), file system images.
	gcc-12 e2fsprogs dosfstools
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if ((EUID != 0)); then
	echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
