#!/usr/bin/env bash
# The demo scenario: start the agent with a policy that denies one binary by
# identity (device and inode), run a few commands, try the denied binary
# under its own name and through a symlink, run a copy of it, stop the
# agent, and show what it saw.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d /tmp/krsi-demo.XXXXXX)
cp /usr/bin/true "$dir/vulnerable-tool"
ln -s "$dir/vulnerable-tool" "$dir/innocent-name"
cp /usr/bin/true "$dir/patched-tool"

bold='' plain=''
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }

# The file's device (major:minor) and inode, as stat(1) gives them.
read -r major minor ino < <(stat -c '%Hd %Ld %i' "$dir/vulnerable-tool")
cat >"$dir/policy.yaml" <<EOF
apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: demo }
spec:
  rules:
    - name: deny-vulnerable-tool
      hook: exec
      match:
        binary:
          inode: [{ dev: "$major:$minor", ino: $ino }]
      action: deny
EOF
./bin/krsi run --policy "$dir/policy.yaml" --lists "$dir/lists.json" --socket "$dir/krsi.sock" \
	--format text >"$dir/events.txt" 2>"$dir/agent.log" &
agent=$!
# Wait with shell builtins only, so the wait adds no exec events of its own.
for ((i = 0; i < 600; i++)); do
	[[ -s "$dir/events.txt" && $(<"$dir/events.txt") == *"agent ready"* ]] && break
	kill -0 "$agent" 2>/dev/null || { cat "$dir/agent.log" >&2; exit 1; }
	read -rt 0.1 <> <(:) || :
done
echo "krsi is running (pid $agent) with this policy:"
sed 's/^/    /' "$dir/policy.yaml"

step uname -sr
uname -sr
step id -un
id -un
step "$dir/vulnerable-tool"
"$dir/vulnerable-tool" || echo "-> refused with exit status $? (the kernel returned EPERM)"
step "$dir/innocent-name    # a symlink to it"
"$dir/innocent-name" || echo "-> refused too: same file, another name"
step "$dir/patched-tool     # a copy: another file"
"$dir/patched-tool" && echo "-> runs"

# The agent protects itself from signals; stopping it is an admin's request.
./bin/krsi stop --socket "$dir/krsi.sock" >/dev/null
wait "$agent"

printf '\n%sWhat krsi reported (one line per event; `krsi run` prints JSON lines by default):%s\n' "$bold" "$plain"
cat "$dir/events.txt"
rm -rf "$dir"
