#!/usr/bin/env bash
# Builds the kernel-module test fixtures (test/fixtures/hide) for each VM
# kernel the suites boot (their series, e.g. "6.1 6.12", as the Makefile's
# VM_KERNELS; other kernels in the cache are left alone):
# build/test/modules/<uname -r>/krsi_hide.ko, which the VM tests load from the
# shared host root.
#
# A module must be built against its kernel's own headers: Debian's
# linux-headers-<version> (and the -common and linux-kbuild packages it
# depends on), fetched with apt-get download, never installed, and unpacked
# next to the kernel in the cache ($KRSI_CACHE_DIR/headers/<version>), as
# src/vm/kernels.ts does with the kernel images. Both Debian 12 kernels are
# built with gcc-12, the host's gcc.
#
# Idempotent: a kernel whose headers are unpacked is not fetched again, and
# kbuild rebuilds a module only when its sources changed.
#
# Usage: scripts/build-test-modules.sh OUTDIR "SERIES..."
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: build-test-modules.sh OUTDIR "SERIES..."}
read -r -a series <<<"${2:?usage: build-test-modules.sh OUTDIR \"SERIES...\"}"
[[ $out = /* ]] || out=$PWD/$out
if [[ -n ${KRSI_CACHE_DIR:-} ]]; then
	cache=$(realpath -m "$KRSI_CACHE_DIR")
elif ((EUID == 0)); then
	cache=/var/cache/krsi
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/krsi
fi
fixtures=(hide)
# The private apt configuration src/vm/kernels.ts fetched the kernels with
# (the host's sources plus bullseye and sid; src/vm/apt.ts).
if [[ -f $cache/apt/apt.conf ]]; then
	export APT_CONFIG=$cache/apt/apt.conf
fi

# The kernel versions the VM boots: the markers of the unpacked kernels of
# the series asked for.
versions=()
for want in "${series[@]}"; do
	found=
	for m in "$cache"/kernels/*/.krsi-kernel.json; do
		[[ -f $m ]] || continue
		[[ $(sed -n 's/^ *"series": *"\([^"]*\)".*/\1/p' "$m") = "$want" ]] || continue
		found=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$m")
	done
	if [[ -z $found ]]; then
		echo "build-test-modules: no $want kernel in $cache/kernels; run \`make kernels\` first" >&2
		exit 1
	fi
	versions+=("$found")
done

# The packages a linux-headers package depends on that hold the build tree:
# linux-headers-*-common and linux-kbuild-*.
header_packages() {
	local pkg=$1 deps
	deps=$(apt-cache show --no-all-versions "$pkg" | sed -n 's/^Depends: //p' | head -1)
	if [[ -z $deps ]]; then
		echo "build-test-modules: apt knows no $pkg; run apt-get update" >&2
		return 1
	fi
	echo "$pkg"
	tr ',|' '\n\n' <<<"$deps" | sed 's/^ *//; s/ .*//' | grep -E '^(linux-headers-.*-common|linux-kbuild-)' | sort -u
}

# Unpacks the headers of kernel $1 into $cache/headers/$1 (once); prints the
# directory to give `make -C`.
headers_for() {
	local version=$1 dest=$cache/headers/$1 tmp pkgs deb build sandbox
	build=$dest/usr/src/linux-headers-$version
	# A tree without its Makefile is a failed fetch's: fetched again.
	if [[ ! -f $dest/.krsi-headers || ! -f $build/Makefile ]]; then
		mkdir -p "$cache/headers"
		tmp=$(mktemp -d "$cache/headers/.tmp-XXXXXX")
		# shellcheck disable=SC2064
		trap "rm -rf '$tmp'" RETURN
		mapfile -t pkgs < <(header_packages "linux-headers-$version")
		((${#pkgs[@]} > 0)) || return 1
		echo "build-test-modules: fetching ${pkgs[*]}" >&2
		mkdir -p "$tmp/debs" "$tmp/tree"
		# As src/vm/kernels.ts: as root, download as root (the _apt user
		# cannot write into root's temporary directory).
		sandbox=()
		((EUID == 0)) && sandbox=(-o APT::Sandbox::User=root)
		(cd "$tmp/debs" && apt-get download -q "${sandbox[@]}" "${pkgs[@]}" >/dev/null)
		for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/tree"; done
		# The arch-specific tree's Makefile includes the -common tree by its
		# absolute path under /usr/src: point it into the cache instead.
		sed -i "s#^include /usr/src/#include $dest/usr/src/#" "$tmp/tree/usr/src/linux-headers-$version/Makefile"
		printf '%s\n' "${pkgs[@]}" >"$tmp/tree/.krsi-headers"
		rm -rf "$dest"
		mv "$tmp/tree" "$dest"
	fi
	echo "$build"
}

for version in "${versions[@]}"; do
	build=$(headers_for "$version")
	# The kbuild programs of a kernel from a newer Debian (sid's 7.x) are
	# linked against a newer C library than this host's and cannot run here:
	# no module can be built for it. The tests that load one say so, with
	# this reason (test/vm/modules-mounts.test.ts).
	rm -f "$out/$version/UNBUILDABLE"
	modpost=$(find "$cache/headers/$version" -name 'modpost.real-lsb-64' -type f | head -1)
	[[ -n $modpost ]] || modpost=$(find "$cache/headers/$version" -path '*scripts/mod/modpost' -type f | head -1)
	if [[ -n $modpost ]] && ! probe=$("$modpost" 2>&1) && grep -q 'not found' <<<"$probe"; then
		mkdir -p "$out/$version"
		echo "the kbuild programs of $version cannot run on this host: $(head -1 <<<"$probe")" | tee "$out/$version/UNBUILDABLE" >&2
		continue
	fi
	# The kernel's own compiler (bullseye's 5.10: gcc-10) where the host has
	# it, else the host's gcc: a newer gcc builds an older kernel's modules.
	kcc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\).*/\1/p' "$build/.config" 2>/dev/null || true)
	cc=()
	if [[ -n $kcc ]] && ! command -v "$kcc" >/dev/null; then
		echo "build-test-modules: $version was built with $kcc, which this host lacks: building with gcc" >&2
		cc=(CC=gcc)
	fi
	for f in "${fixtures[@]}"; do
		dir=$out/$version/$f
		mkdir -p "$dir"
		# kbuild writes next to the sources: build a copy, refreshed only when changed.
		for src in "$root"/test/fixtures/"$f"/*; do
			cmp -s "$src" "$dir/$(basename "$src")" || cp "$src" "$dir/"
		done
		# No BTF for the fixture: generating it needs pahole and the
		# kernel's vmlinux, and modules load without it.
		make -s -C "$build" M="$dir" "${cc[@]}" CONFIG_DEBUG_INFO_BTF_MODULES= modules >&2
		for ko in "$dir"/*.ko; do
			cmp -s "$ko" "$out/$version/$(basename "$ko")" || cp "$ko" "$out/$version/"
		done
	done
done
