// The commands built on the control socket and on the policy files: krsi
// policy (validate, test, apply, show, diff), list, explain and stop, run
// in-process through main() against an in-memory agent on a socket.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { main } from '../../src/cli/main.js';
import { startControlServer, type ControlServer } from '../../src/control/server.js';
import { loadPolicies, parsePolicyText } from '../../src/policy/load.js';
import { HOOKS } from '../../src/policy/schema.js';
import { FakeControl } from '../lib/fake-control.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const examples = join(repo, 'policies/examples');
const fixtures = join(repo, 'test/fixtures/policy-test');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** main(argv) with stdout and stderr captured. */
async function krsi(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = process.stdout.write.bind(process.stdout);
  const stderr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code: number;
  try {
    code = await main(argv);
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
    process.exitCode = undefined;
  }
  return { code, stdout: out.join(''), stderr: err.join('') };
}

let dir: string;
let socket: string;
let control: FakeControl;
let server: ControlServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'krsi-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let serial = 0;
beforeEach(async () => {
  await server?.close();
  control = new FakeControl();
  socket = join(dir, `run${++serial}`, 'krsi.sock');
  server = await startControlServer(control, { path: socket, logger: pino({ level: 'silent' }) });
});
after(async () => {
  await server?.close();
});

async function applyExamples(): Promise<void> {
  const { policies, errors } = await loadPolicies([examples]);
  assert.deepEqual(errors, []);
  await control.applyPolicies(policies.map((l) => ({ policy: l.policy, source: l.source.file })));
}

// --- policy validate ------------------------------------------------------------

test('policy validate: the examples are valid, with a one-line summary', async () => {
  const r = await krsi('policy', 'validate', examples);
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.match(r.stdout, /^valid: \d+ policies; rules per hook: exec \d+, connect 2, module_load 4, mount 3\n$/);
  assert.equal(r.stderr, '');
});

const badPolicy = `apiVersion: krsi.dev/v1
kind: Policy
metadata:
  name: bad
spec:
  rules:
    - name: r1
      hook: exec
      match:
        uid: [root]
      action: deny
    - name: r2
      hook: connect
      match: {port: [80], list-typo: 1}
      action: secureexec
`;

test('policy validate: every error as file:line:col on stderr, exit 2', async () => {
  const file = join(dir, 'bad.yaml');
  await writeFile(file, badPolicy);
  const r = await krsi('policy', 'validate', file);
  assert.equal(r.code, ExitCode.usage);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0] ?? '', new RegExp(`^${file}:10:15: policy bad rule r1: `));
  assert.match(r.stderr, new RegExp(`${file}:14:\\d+: policy bad rule r2: unknown key "list-typo"`));
  assert.match(r.stderr, new RegExp(`${file}:15:15: policy bad rule r2: hook connect cannot secureexec`));
  assert.match(lines.at(-1) ?? '', /^\d+ errors$/);

  const j = await krsi('policy', 'validate', '--json', file);
  assert.equal(j.code, ExitCode.usage);
  const report = JSON.parse(j.stdout) as { valid: boolean; errors: Array<{ file: string; line: number; column: number; message: string }> };
  assert.equal(report.valid, false);
  assert.ok(report.errors.length >= 3);
  assert.deepEqual(
    { file: report.errors[0]?.file, line: report.errors[0]?.line, column: report.errors[0]?.column },
    { file, line: 10, column: 15 },
  );

  const empty = join(dir, 'empty');
  await mkdir(empty, { recursive: true });
  const e = await krsi('policy', 'validate', empty);
  assert.equal(e.code, ExitCode.usage);
  assert.match(e.stderr, /no policies found/);
});

// --- policy test ----------------------------------------------------------------

test('policy test: passing fixtures exit 0 with a TAP report', async () => {
  const r = await krsi('policy', 'test', join(fixtures, 'pass.yaml'));
  assert.equal(r.code, ExitCode.ok, r.stdout + r.stderr);
  assert.match(r.stdout, /^TAP version 13\n# .*pass\.yaml\nok 1 - the fixture's list replaces/);
  assert.match(r.stdout, /\n1\.\.5\n# pass 5\n# fail 0\n$/);
});

test('policy test: a failing case says what was expected and what came, exit 1', async () => {
  const r = await krsi('policy', 'test', join(fixtures, 'pass.yaml'), join(fixtures, 'fail.yaml'));
  assert.equal(r.code, ExitCode.failure);
  assert.match(r.stdout, /\nok 6 - tmp is denied\n/);
  assert.match(r.stdout, /\nnot ok 7 - usr bin is denied \(wrong\): expected deny by no-exec-from-tmp\/deny-scratch-dirs, got allow by default\n/);
  assert.match(r.stdout, /\n {2}# ✘ no-exec-from-tmp\/deny-scratch-dirs \(deny\): ✘ binary: \/usr\/bin\/nc matches none of its forms\n/);
  assert.match(r.stdout, /\nnot ok 8 - wrong action: expected action kill, got deny\n/);
  assert.match(r.stdout, /\n1\.\.8\n# pass 6\n# fail 2\n$/);
});

test('policy test: invalid fixtures are reported as file:line:col, nothing runs, exit 2', async () => {
  const invalid = join(fixtures, 'invalid.yaml');
  const policies = join(fixtures, 'invalid-policies.yaml');
  const r = await krsi('policy', 'test', invalid, policies);
  assert.equal(r.code, ExitCode.usage);
  assert.equal(r.stdout, '');
  const expected = [
    `${invalid}:7:19: cases.0.event.hook: expected one of ${HOOKS.join(', ')}; got "exce"`,
    `${invalid}:10:48: cases.1.event.binary.inode: unknown key "inode"; expected one of path, dev, ino, sha256`,
    `${invalid}:10:64: cases.1.event.uid: must be at least 0, got -1`,
    `${invalid}:11:24: cases.1.expect.decision: expected one of allow, deny; got "maybe"`,
    `${invalid}:11:37: cases.1.expect.rule: "no slash" is not valid: expected policy/rule, e.g. egress/deny-blocked-destinations`,
    `${invalid}:12:5: cases.2: missing required key "expect"`,
    `${invalid}:14:5: cases.2.extra: unknown key "extra"; expected one of name, event, expect`,
    `${policies}:4:5: policies.1: no-such-policy.yaml: no such file or directory`,
    `${policies}:10:41: policy inline rule r: expected one of audit, allow, deny, kill, secureexec; got "nuke"`,
    `${policies}:12:3: lists.nope: no policy of this fixture declares a list nope (declared: blocked-destinations)`,
    `${policies}:13:26: lists.blocked-destinations.0: "not-an-address": an address list takes IPv4 or IPv6 addresses and networks`,
    'krsi: 11 errors in the fixtures; no case was run',
  ];
  assert.deepEqual(r.stderr.trim().split('\n'), expected);
});

test('policy test: the example policies pass their fixture (test/fixtures/policy-test/examples.yaml)', async () => {
  const r = await krsi('policy', 'test', join(repo, 'test/fixtures/policy-test/examples.yaml'));
  assert.equal(r.code, ExitCode.ok, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /not ok/);
  const plan = /\n1\.\.(\d+)\n/.exec(r.stdout);
  assert.ok(plan && Number(plan[1]) >= 10, 'the fixture has cases for every example');
});

// --- policy apply, show, diff ----------------------------------------------------

test('policy apply: sends the set, prints generation, rules, entries and timings', async () => {
  const egress = join(examples, 'egress.yaml');
  const r = await krsi('policy', 'apply', '--socket', socket, egress, join(examples, 'exec-from-tmp.yaml'));
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.equal(
    r.stdout,
    'applied generation 1: 2 policies; rules per hook: connect 2, exec 1; 3 rules and 2 entries in the kernel (compile 1.3 ms, swap 0.5 ms)\n',
  );
  assert.deepEqual(
    control.policies.map((p) => [p.policy.metadata.name, p.source]),
    [
      ['egress', resolve(egress)],
      ['no-exec-from-tmp', resolve(examples, 'exec-from-tmp.yaml')],
    ],
  );
  const j = await krsi('policy', 'apply', '--json', '--socket', socket, egress);
  assert.equal(j.code, ExitCode.ok);
  assert.deepEqual(JSON.parse(j.stdout), { generation: 2, compileMs: 1.25, swapMs: 0.5, rules: 2, entries: 2 });
  assert.deepEqual(
    control.policies.map((p) => p.policy.metadata.name),
    ['egress'],
    'the set sent replaces the set in force',
  );
});

test('policy apply: invalid files send nothing (exit 2); an agent refusal is exit 2 too', async () => {
  const file = join(dir, 'bad-apply.yaml');
  await writeFile(file, badPolicy);
  const r = await krsi('policy', 'apply', '--socket', socket, file);
  assert.equal(r.code, ExitCode.usage);
  assert.match(r.stderr, new RegExp(`${file}:10:15: `));
  assert.match(r.stderr, /krsi: \d+ errors; nothing was applied\n$/);
  assert.deepEqual(control.calls, []);

  const { InputError } = await import('../../src/errors.js');
  control.applyFailure = new InputError('policy egress rule deny-blocked-destinations: too many glob states');
  const refused = await krsi('policy', 'apply', '--socket', socket, join(examples, 'egress.yaml'));
  assert.equal(refused.code, ExitCode.usage);
  assert.equal(refused.stderr, 'krsi: policy egress rule deny-blocked-destinations: too many glob states\n');
});

test('policy show: the generation and the policies as YAML with their sources', async () => {
  const empty = await krsi('policy', 'show', '--socket', socket);
  assert.equal(empty.stdout, '# generation 0: no policies\n');
  await applyExamples();
  const r = await krsi('policy', 'show', '--socket', socket);
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.match(r.stdout, /^# generation 1: \d+ policies\n---\n# source: .*container-allowlist\.yaml\napiVersion: krsi\.dev\/v1\n/);
  // What show prints, apply takes back.
  const again = parsePolicyText(r.stdout, 'shown.yaml');
  assert.deepEqual(again.errors, []);
  assert.deepEqual(
    again.policies.map((p) => p.policy),
    control.policies.map((p) => p.policy),
  );
  const j = await krsi('policy', 'show', '--json', '--socket', socket);
  const shown = JSON.parse(j.stdout) as { generation: number; policies: Array<{ source: string; policy: { metadata: { name: string } } }> };
  assert.equal(shown.generation, 1);
  assert.deepEqual(
    shown.policies.map((p) => p.policy.metadata.name),
    control.policies.map((p) => p.policy.metadata.name),
  );
});

test('policy diff: exit 0 when the same, 1 with added, removed and changed policies and rules, 2 when invalid', async () => {
  await applyExamples();
  const same = await krsi('policy', 'diff', '--socket', socket, examples);
  assert.equal(same.code, ExitCode.ok, same.stderr);
  assert.equal(same.stdout, 'no differences (agent generation 1)\n');

  const local = join(dir, 'diff');
  await mkdir(local, { recursive: true });
  const egress = (await readFile(join(examples, 'egress.yaml'), 'utf8'))
    .replace('port: [80]', 'port: [80, 8080]')
    .replace('  rules:\n', '  rules:\n    - name: deny-telnet\n      hook: connect\n      match: {port: [23]}\n      action: deny\n');
  await writeFile(join(local, 'egress.yaml'), egress);
  await writeFile(join(local, 'tmp.yaml'), (await readFile(join(examples, 'exec-from-tmp.yaml'), 'utf8')).replace('mode: enforce', ''));
  await writeFile(
    join(local, 'new.yaml'),
    'apiVersion: krsi.dev/v1\nkind: Policy\nmetadata: {name: brand-new}\nspec:\n  rules: [{name: r, hook: mount, match: {fstype: [vfat]}, action: deny}]\n',
  );
  const r = await krsi('policy', 'diff', '--socket', socket, local);
  assert.equal(r.code, ExitCode.failure, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], '--- agent (generation 1)');
  assert.equal(lines[1], `+++ ${local}`);
  assert.ok(lines.includes(`+ policy brand-new (${join(local, 'new.yaml')})`), r.stdout);
  assert.ok(lines.includes('- policy kernel-modules (' + join(examples, 'kernel-modules.yaml') + ')'), r.stdout);
  assert.ok(lines.includes(`~ policy egress (${join(local, 'egress.yaml')})`), r.stdout);
  assert.ok(lines.includes('    + rule deny-telnet'), r.stdout);
  assert.ok(lines.includes('    ~ rule metadata-service-root-only: match'), r.stdout);
  assert.ok(!lines.some((l) => l.includes('no-exec-from-tmp')), 'an unchanged policy is not listed');

  const j = await krsi('policy', 'diff', '--json', '--socket', socket, local);
  assert.equal(j.code, ExitCode.failure);
  const diff = JSON.parse(j.stdout) as { same: boolean; added: string[]; changed: Array<{ name: string; rules: { added: string[] } }> };
  assert.equal(diff.same, false);
  assert.deepEqual(diff.added, ['brand-new']);
  assert.deepEqual(diff.changed.find((c) => c.name === 'egress')?.rules.added, ['deny-telnet']);

  await writeFile(join(local, 'broken.yaml'), badPolicy);
  const bad = await krsi('policy', 'diff', '--socket', socket, local);
  assert.equal(bad.code, ExitCode.usage);
});

// --- list -------------------------------------------------------------------------

test('list show, add (with a TTL) and remove', async () => {
  await applyExamples();
  const shown = await krsi('list', 'show', 'blocked-destinations', '--socket', socket);
  assert.equal(shown.code, ExitCode.ok, shown.stderr);
  assert.equal(shown.stdout, 'blocked-destinations (address, id 2): 2 entries\n  198.51.100.0/24\n  2001:db8:bad::/48\n');

  const added = await krsi('list', 'add', '--socket', socket, 'blocked-destinations', '203.0.113.7', '198.51.100.0/24', '--ttl', '10m');
  assert.equal(added.code, ExitCode.ok, added.stderr);
  assert.equal(added.stdout, 'added 1 entry to blocked-destinations; 1 already there: 198.51.100.0/24; expiring in 600 s\n');
  const expiry = control.listsByName.get('blocked-destinations')?.entries.get('203.0.113.7');
  assert.ok(expiry !== undefined && Math.abs(expiry - Date.now() - 600_000) < 5000);

  const all = await krsi('list', 'show', '--json', '--socket', socket);
  const lists = JSON.parse(all.stdout) as Array<{ name: string; entries: Array<{ entry: string; expires?: string }> }>;
  assert.deepEqual(
    lists.map((l) => l.name),
    ['webapp-binaries', 'blocked-destinations', 'approved-modules', 'bad-module-content'],
  );
  assert.ok(lists[1]?.entries.find((e) => e.entry === '203.0.113.7')?.expires);

  const removed = await krsi('list', 'remove', '--socket', socket, 'blocked-destinations', '203.0.113.7', '192.0.2.1');
  assert.equal(removed.stdout, 'removed 1 entry from blocked-destinations; 1 not there: 192.0.2.1\n');

  const unknown = await krsi('list', 'add', '--socket', socket, 'no-such-list', 'x');
  assert.equal(unknown.code, ExitCode.usage);
  assert.equal(unknown.stderr, 'krsi: no list named no-such-list\n');
  const missing = await krsi('list', 'show', 'no-such-list', '--socket', socket);
  assert.equal(missing.code, ExitCode.usage);
  assert.match(missing.stderr, /^krsi: no list named no-such-list; the lists are webapp-binaries, blocked-destinations, approved-modules, bad-module-content\n$/);

  const badTtl = await krsi('list', 'add', '--socket', socket, 'blocked-destinations', '203.0.113.8', '--ttl', 'soon');
  assert.equal(badTtl.code, ExitCode.usage);
  assert.match(badTtl.stderr, /a duration/);
  assert.equal(control.listsByName.get('blocked-destinations')?.entries.has('203.0.113.8'), false);
});

// --- explain ----------------------------------------------------------------------

const execEvent = {
  schema: 'krsi/v1',
  kind: 'exec',
  time: '2025-01-01T00:00:00.000000000Z',
  decision: 'denied',
  policy: {
    generation: 1,
    decided_by: 'rule',
    rule: { policy: 'no-exec-from-tmp', rule: 'deny-scratch-dirs', action: 'deny', mode: 'enforce' },
    default: null,
    would_deny: null,
    default_would_deny: false,
    audit: null,
    matched: ['no-exec-from-tmp/deny-scratch-dirs'],
    secureexec: false,
    killed: false,
    context_unknown: false,
  },
  process: {
    pid: 4242,
    tid: 4242,
    ppid: 1,
    uid: 1000,
    gid: 1001,
    euid: 1000,
    egid: 1001,
    comm: 'sh',
    cgroup_id: '18446744073709551000',
    start_boottime_ns: '123456789',
  },
  exec: {
    path: '/tmp/payload',
    path_unresolved: false,
    filename: './payload',
    filename_truncated: false,
    dev: '8:1',
    ino: '1234567',
    argc: 1,
    argv: ['./payload'],
    argv_truncated: false,
    argv_unreadable: false,
  },
};

test('explain --event: an exec event of `krsi run` mapped to the facts, the decision and the trace', async () => {
  await applyExamples();
  const r = await krsi('explain', '--socket', socket, '--event', JSON.stringify(execEvent));
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.deepEqual(control.lastFacts, {
    hook: 'exec',
    binary: { path: '/tmp/payload', dev: '8:1', ino: 1234567n },
    uid: 1000,
    gid: 1001,
    cgroups: [18446744073709551000n],
  });
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], 'deny by no-exec-from-tmp/deny-scratch-dirs (action deny)');
  assert.ok(lines.includes('exec rules, in order:'), r.stdout);
  assert.ok(lines.includes('  ✔ no-exec-from-tmp/deny-scratch-dirs  deny'), r.stdout);
  assert.ok(lines.includes('      ✔ binary: prefix /tmp/'), r.stdout);
  assert.ok(lines.includes('  ✘ webserver-no-shell/kill-shell-under-web-server  kill'), r.stdout);
  assert.ok(lines.includes('      ? ancestor: the ancestry is unknown'), r.stdout);
  assert.ok(lines.includes('when the event happened: denied by no-exec-from-tmp/deny-scratch-dirs (generation 1)'), r.stdout);
  assert.ok(lines.some((l) => l.startsWith('note: an exec event does not carry the environment')));

  // Flags add to the event's facts.
  const withEnv = await krsi('explain', '--socket', socket, '--event', JSON.stringify(execEvent), '--env', 'LD_PRELOAD', '--ancestor', '/usr/sbin/nginx');
  assert.equal(withEnv.code, ExitCode.ok, withEnv.stderr);
  assert.deepEqual(control.lastFacts?.env, ['LD_PRELOAD']);
  assert.deepEqual(control.lastFacts?.ancestors, [{ path: '/usr/sbin/nginx' }]);

  const agent = await krsi('explain', '--socket', socket, '--event', '{"schema":"krsi/v1","kind":"agent","state":"ready"}');
  assert.equal(agent.code, ExitCode.usage);
  assert.match(agent.stderr, /^krsi: --event: an agent event/);
  const garbage = await krsi('explain', '--socket', socket, '--event', '{nope');
  assert.equal(garbage.code, ExitCode.usage);
  assert.match(garbage.stderr, /^krsi: --event: not JSON/);
});

test('explain with flags, and --json', async () => {
  await applyExamples();
  const r = await krsi('explain', '--socket', socket, '--hook', 'exec', '--binary', '/usr/bin/nc', '--uid', '1000', '--env', 'LD_PRELOAD', '--env', 'HOME');
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.deepEqual(control.lastFacts, { hook: 'exec', binary: { path: '/usr/bin/nc' }, uid: 1000, env: ['LD_PRELOAD', 'HOME'] });
  assert.match(r.stdout, /^allow by the exec default \(allow\)\nthe program runs in secure-execution mode \(AT_SECURE\)\n/);
  assert.match(r.stdout, /\n {6}✔ env: LD_PRELOAD is set\n/);

  const j = await krsi('explain', '--json', '--socket', socket, '--hook', 'connect', '--address', '169.254.169.254', '--port', '80', '--uid', '1000');
  const decision = JSON.parse(j.stdout) as { verdict: string; decidedBy: { rule: string } };
  assert.equal(decision.verdict, 'deny');
  assert.equal(decision.decidedBy.rule, 'metadata-service-root-only');

  const noHook = await krsi('explain', '--socket', socket, '--binary', '/bin/ls');
  assert.equal(noHook.code, ExitCode.usage);
  const badHook = await krsi('explain', '--socket', socket, '--hook', 'open');
  assert.equal(badHook.code, ExitCode.usage);
  assert.match(badHook.stderr, /hook/);
  assert.deepEqual(control.calls.filter((c) => c === 'explain').length, 2, 'invalid facts are not sent');
});

// --- stop, and no agent -----------------------------------------------------------

test('stop asks the agent to stop and waits for it', async () => {
  control.onStop = () => server.close();
  const r = await krsi('stop', '--socket', socket);
  assert.equal(r.code, ExitCode.ok, r.stderr);
  assert.equal(r.stdout, `agent (pid ${process.pid}) stopped\n`);
  assert.equal(control.stops, 1);
});

test('with no agent, agent commands fail with one clear line (exit 1); KRSI_SOCKET is honoured', async () => {
  const nowhere = join(dir, 'nowhere.sock');
  for (const argv of [
    ['policy', 'show'],
    ['list', 'show'],
    ['stop'],
    ['explain', '--hook', 'exec'],
    ['policy', 'apply', join(examples, 'egress.yaml')],
  ]) {
    const r = await krsi(...argv, '--socket', nowhere);
    assert.equal(r.code, ExitCode.failure, argv.join(' '));
    assert.equal(r.stderr, `krsi: no krsi agent is running (nothing listens on ${nowhere}); start one with \`krsi run\`\n`);
  }
  process.env['KRSI_SOCKET'] = socket;
  try {
    const r = await krsi('policy', 'show');
    assert.equal(r.code, ExitCode.ok, r.stderr);
  } finally {
    delete process.env['KRSI_SOCKET'];
  }
});
