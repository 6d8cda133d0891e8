// End to end, in a kernel with BPF LSM: known-vulnerable content without
// IMA (`krsi run --no-ima`, the fallback for kernels without
// bpf_ima_file_hash). The agent computes the sha256 of each file the kernel
// asks about, keyed by dev+inode and stamped with its ctime; the first exec
// or mapping of listed content runs and is killed by the agent as soon as the
// digest is known, every later one is refused by the kernel; a file opened
// for writing loses its digest.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectControl, type ControlClient } from '../../src/control/client.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import { startAgent, type AgentProcess } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { repoPath } from '../lib/paths.js';

const libload = repoPath('build/test/libload');
const LIBZ = '/usr/lib/x86_64-linux-gnu/libz.so.1';

const run = (cmd: string, args: string[]): SpawnSyncReturns<string> => spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
const errno = (r: SpawnSyncReturns<string>): string | undefined => (r.error as NodeJS.ErrnoException | undefined)?.code;
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Runs cmd in the background; resolves with how it ended. */
function ended(cmd: string, args: string[]): { pid: number; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return { pid: child.pid!, done: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, out }))) };
}

describe('content digests computed by the agent (no IMA)', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-content-');
  let agent: AgentProcess;
  let control: ControlClient;

  const copy = (src: string, name: string, extra: string): string => {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    copyFileSync(src, path);
    appendFileSync(path, extra);
    chmodSync(path, 0o755);
    return path;
  };

  before(async () => {
    chmodSync(dir, 0o755);
    agent = await startAgent({ args: ['--no-ima', '--no-allowed'] });
    control = await connectControl(agent.socket);
  });

  after(async () => {
    control?.close();
    if (agent) assert.equal(await agent.stop(), 0, agent.stderr());
    rmSync(dir, { recursive: true, force: true });
  });

  const reaction = (pid: number) => (e: KrsiEvent): boolean => e.kind === 'reaction' && e.trigger.pid === pid;

  test('exec of listed content: the first run is killed by the agent, later ones are refused; a write forgets the digest', async (t) => {
    if (!requireKernel(t, '5.11', 'sleepable BPF LSM')) return;
    const bin = copy('/usr/bin/sleep', 'bin/vulnerable-sleep', 'krsi-vulnerable-build-1\n');
    const listed = sha256(bin);
    const original = readFileSync(bin);
    const parsed = parsePolicyText(
      `apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: content }
spec:
  lists:
    - { name: vulnerable-binaries, type: sha256, entries: ["${listed}"] }
    - { name: vulnerable-libraries, type: sha256 }
  rules:
    - { name: no-vulnerable-exec, hook: exec, match: { binary: { list: [vulnerable-binaries] } }, action: deny }
    - { name: no-vulnerable-lib, hook: mmap_exec, match: { library: { list: [vulnerable-libraries] } }, action: deny }
`,
      'content.test.yaml',
    );
    assert.deepEqual(parsed.errors, []);
    await control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'content.test' })));

    const first = ended(bin, ['30']);
    const r = await agent.waitFor(reaction(first.pid), 'the late kill');
    assert.ok(r.kind === 'reaction');
    assert.deepEqual(r.actions, [{ do: 'kill', pids: [first.pid] }]);
    assert.equal(r.trigger.rule, 'no-vulnerable-exec');
    assert.equal((await first.done).signal, 'SIGKILL');
    assert.equal(errno(run(bin, ['0'])), 'EPERM', 'the kernel refuses it now, from the digest the agent wrote');
    const denied = (await agent.waitFor((e) => e.kind === 'exec' && e.exec.path === bin && e.decision === 'denied', 'the kernel denial')) as ExecEvent;
    assert.equal(denied.policy.rule?.rule, 'no-vulnerable-exec');
    assert.equal(run('/usr/bin/true', []).status, 0, 'other programs run');

    // Changed content: the digest goes with the write, and the new content is not listed.
    appendFileSync(bin, 'patched\n');
    const patched = ended(bin, ['1']);
    assert.equal((await patched.done).code, 0, 'the patched program runs to its end');
    // Back to the listed content: never judged by the patched digest.
    truncateSync(bin, 0);
    appendFileSync(bin, original);
    const again = ended(bin, ['30']);
    await agent.waitFor(reaction(again.pid), 'the late kill after the rewrite');
    assert.equal((await again.done).signal, 'SIGKILL');
    assert.equal(errno(run(bin, ['0'])), 'EPERM');
  });

  test('a listed library: the first program to map it is killed, later ones cannot load it', async (t) => {
    if (!requireKernel(t, '5.11', 'sleepable BPF LSM')) return;
    const lib = copy(LIBZ, 'lib/libz-vulnerable.so', 'krsi-vulnerable-lib-1\n');
    const good = copy(LIBZ, 'lib/libz-good.so', 'krsi-good-lib\n');
    await control.listAdd('vulnerable-libraries', [sha256(lib)]);
    const first = ended(libload, ['dlopen', lib, '30']);
    const r = await agent.waitFor(reaction(first.pid), 'the late kill of the library user');
    assert.ok(r.kind === 'reaction');
    assert.equal(r.trigger.kind, 'mmap_exec');
    assert.equal((await first.done).signal, 'SIGKILL');
    const second = run(libload, ['dlopen', lib]);
    assert.equal(second.status, 1);
    assert.match(second.stdout, /^dlopen: /);
    const e = await agent.waitFor((x) => x.kind === 'mmap_exec' && x.library.path === lib && x.decision === 'denied', 'the library denial');
    assert.ok(e.kind === 'mmap_exec');
    assert.equal(e.library.sha256, sha256(lib));
    assert.equal(e.program.path, libload);
    assert.equal(run(libload, ['dlopen', good]).stdout.trim(), 'ok');
  });
});
