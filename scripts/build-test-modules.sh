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
# built with gcc-12, the host's gcc; the others are built with the host's gcc
# too (see below), and a newer Debian's kbuild programs run on the C library
# of their own Debian, unpacked beside them.
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

# True when the kbuild programs under $1 cannot run on this host's C
# library (a newer Debian's: sid's need glibc 2.38 or later).
needs_newer_libc() {
	local modpost probe
	modpost=$(find "$1" -name 'modpost.real-lsb-64' -type f | head -1)
	[[ -n $modpost ]] || modpost=$(find "$1" -path '*scripts/mod/modpost' -type f | head -1)
	[[ -n $modpost ]] && ! probe=$("$modpost" 2>&1) && grep -q 'GLIBC_.* not found' <<<"$probe"
}

# Makes the kbuild programs of tree $1 run on the newest C library apt
# knows (the private configuration's sid), unpacked into $1/.libc and
# started through its own loader, so that nothing of the host changes. Each
# program becomes a script of that name; the program itself is NAME.elf.
# $2 is where the tree will be once in place.
run_on_own_libc() {
	local tree=$1 final=$2 tmp lib f libc
	tmp=$(mktemp -d "$cache/headers/.libc-XXXXXX")
	(cd "$tmp" && apt-get download -q "${sandbox[@]}" libc6 >/dev/null)
	libc=$(dpkg-deb -f "$tmp"/libc6_*.deb Version)
	dpkg-deb -x "$tmp"/libc6_*.deb "$tree/.libc"
	rm -rf "$tmp"
	lib=$final/.libc/usr/lib/x86_64-linux-gnu
	while IFS= read -r -d '' f; do
		readelf -l "$f" 2>/dev/null | grep -q 'program interpreter' || continue
		mv "$f" "$f.elf"
		# --argv0: Debian's wrappers (objtool, modpost) run "$0.real-<arch>".
		printf '#!/bin/sh\nexec %s/ld-linux-x86-64.so.2 --argv0 "$0" --library-path %s:/usr/lib/x86_64-linux-gnu "$0.elf" "$@"\n' \
			"$lib" "$lib" >"$f"
		chmod +x "$f"
	done < <(find "$tree"/usr/lib/linux-kbuild-* -type f -perm -u+x -print0)
	echo "build-test-modules: $(basename "$final")'s kbuild programs run on libc6 $libc, beside them" >&2
}

# Unpacks the headers of kernel $1 into $cache/headers/$1 (once); prints the
# directory to give `make -C`.
headers_for() {
	local version=$1 dest=$cache/headers/$1 tmp pkgs deb build
	build=$dest/usr/src/linux-headers-$version
	# A tree without its Makefile is a failed fetch's, and one whose kbuild
	# programs cannot run an older script's: fetched again.
	if [[ ! -f $dest/.krsi-headers || ! -f $build/Makefile ]] || needs_newer_libc "$dest"; then
		mkdir -p "$cache/headers"
		tmp=$(mktemp -d "$cache/headers/.tmp-XXXXXX")
		# shellcheck disable=SC2064
		trap "rm -rf '$tmp'" RETURN
		mapfile -t pkgs < <(header_packages "linux-headers-$version")
		((${#pkgs[@]} > 0)) || return 1
		echo "build-test-modules: fetching ${pkgs[*]}" >&2
		mkdir -p "$tmp/debs" "$tmp/tree"
		(cd "$tmp/debs" && apt-get download -q "${sandbox[@]}" "${pkgs[@]}" >/dev/null)
		for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/tree"; done
		# The arch-specific tree's Makefile names the -common tree (and in
		# 7.x itself, as KBUILD_OUTPUT) by absolute paths under /usr/src:
		# point them into the cache instead.
		sed -i -e "s#^include /usr/src/#include $dest/usr/src/#" -e "s#^KBUILD_OUTPUT=/usr/src/#KBUILD_OUTPUT=$dest/usr/src/#" \
			"$tmp/tree/usr/src/linux-headers-$version/Makefile"
		if needs_newer_libc "$tmp/tree"; then run_on_own_libc "$tmp/tree" "$dest"; fi
		printf '%s\n' "${pkgs[@]}" >"$tmp/tree/.krsi-headers"
		rm -rf "$dest"
		mv "$tmp/tree" "$dest"
	fi
	echo "$build"
}

# As src/vm/kernels.ts: as root, download as root (the _apt user cannot
# write into root's temporary directory).
sandbox=()
((EUID == 0)) && sandbox=(-o APT::Sandbox::User=root)

for version in "${versions[@]}"; do
	build=$(headers_for "$version")
	# The kernel's own compiler where the host has it, else the host's gcc
	# (bullseye's 5.10 was built with gcc-10, sid's 7.x with gcc-16). A
	# module of a few lines needs none of a newer gcc's features, but kbuild
	# passes the options the kernel's compiler had: those the host's lacks
	# are turned off (-fmin-function-alignment: -falign-functions instead).
	kcc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\).*/\1/p' "$build/.config" 2>/dev/null || true)
	cc=()
	if [[ -n $kcc ]] && ! command -v "$kcc" >/dev/null; then
		echo "build-test-modules: $version was built with $kcc, which this host lacks: building with gcc" >&2
		# Attributes gcc-12 does not know (counted_by) are warned of by the thousand.
		cc=(CC=gcc KCFLAGS=-Wno-attributes)
		if ! gcc -fmin-function-alignment=16 -x c -c -o /dev/null /dev/null 2>/dev/null; then
			cc+=(CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=)
		fi
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
