// End to end: the policies krsi ships. policies/default.yaml in force from
// the agent's start, then policies/hardened.yaml applied to the same running
// agent, as an operator hardens a host (one agent: each start costs ~20 s of
// emulation). A normal workload (a shell, coreutils, apt-get, python3, node,
// dpkg) runs under both with nothing denied; under the default one the
// suspicious signals are reported, under the hardened one the same attacks
// are refused.
import assert from 'node:assert/strict';
import { spawn, spawnSync, spawnSync as spawnSyncRaw, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectControl, type ControlClient } from '../../src/control/client.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import { loadPolicies } from '../../src/policy/load.js';
import { startAgent, type AgentProcess } from '../lib/agent-process.js';
import { settled } from '../lib/settle.js';
import { atLeast, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { repoPath } from '../lib/paths.js';

const root = repoPath('');
// The attacks' helpers run from /run: a checkout under /tmp (as CI may make)
// must not have them refused by hardened.yaml's own no-exec-from-/tmp rule.
let fixtureDir: string | null = null;
const fixture = (name: string): string => {
  fixtureDir ??= mkdtempSync('/run/krsi-fixtures-');
  chmodSync(fixtureDir, 0o755);
  const path = join(fixtureDir, name);
  if (!existsSync(path)) {
    copyFileSync(join(root, 'build/test', name), path);
    chmodSync(path, 0o755);
  }
  return path;
};
const NOBODY = 65534;

const sh = (script: string, opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> =>
  spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', timeout: 120_000, ...opts });

/** What a Debian machine does all day; every step must succeed. */
function workload(scratch: string): void {
  const steps: Array<[string, string]> = [
    ['shell and coreutils', `echo hello | tr a-z A-Z | grep -q HELLO && ls /usr/bin >/dev/null && sort /etc/passwd | head -3 >/dev/null && id -u && date +%s >/dev/null`],
    ['files', `cd ${scratch} && mkdir -p w && echo data > w/f && cp w/f w/g && mv w/g w/h && sha256sum w/h >/dev/null && tar czf w.tgz w && rm -r w w.tgz`],
    ['apt-get', 'apt-get --version >/dev/null'],
    ['dpkg', 'dpkg -l coreutils >/dev/null'],
    ['python3', 'python3 -c "import json, hashlib; print(json.dumps({1: hashlib.sha256(b\'x\').hexdigest()[:4]}))" >/dev/null'],
    ['node', 'node -e "require(\'node:crypto\').randomBytes(8); console.log(process.version)" >/dev/null'],
    ['perl and find', `perl -e 'print "ok\\n"' >/dev/null && find /etc -maxdepth 1 -name '*.conf' | head -2 >/dev/null`],
    ['processes', 'ps -e >/dev/null 2>&1 || true; cat /proc/self/status >/dev/null'],
  ];
  for (const [what, script] of steps) {
    const r = sh(script);
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  }
}

describe('the shipped policies: default from the start, then hardened', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-shipped-');
  const scratch = join(dir, 'work');
  const copy = (src: string, name: string): string => {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    copyFileSync(src, path);
    chmodSync(path, 0o755);
    return path;
  };

  let agent: AgentProcess;
  let control: ControlClient;

  before(async () => {
    chmodSync(dir, 0o755);
    mkdirSync(scratch, { recursive: true });
    agent = await startAgent({ policies: [join(root, 'policies/default.yaml')] });
    control = await connectControl(agent.socket);
  });
  after(async () => {
    control?.close();
    if (agent) assert.equal(await agent.stop(), 0, agent.stderr());
    rmSync(dir, { recursive: true, force: true });
  });

  const denials = (agent: AgentProcess, since: number): KrsiEvent[] =>
    agent.events.slice(since).filter((e) => 'decision' in e && (e.decision === 'denied' || e.policy.killed));

  let attackRuns = 0;
  /** The attacks both tests perform; returns what each did. */
  async function attacks(agent: AgentProcess): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const spawnSync = (cmd: string, args: string[], opts: Parameters<typeof spawnSyncRaw>[2] = {}): { stdout: string } => {
      const r = spawnSyncRaw(cmd, args, { encoding: 'utf8', ...opts });
      return { stdout: r.error ? `spawn: ${(r.error as NodeJS.ErrnoException).code}` : String(r.stdout) };
    };
    const dropped = copy('/usr/bin/true', 'dropped/payload');
    const r = spawnSyncRaw(dropped, ['dropped'], { encoding: 'utf8' });
    out['exec-from-tmp'] = r.error ? (r.error as NodeJS.ErrnoException).code ?? 'error' : `exit ${r.status}`;
    out['fileless'] = spawnSync(fixture('fileless'), ['memfd', '/usr/bin/true', 'attack'], { encoding: 'utf8' }).stdout.trim() || 'ok';
    // Outside the scratch directories, which hardened refuses to run anything from.
    const selfDir = mkdtempSync('/run/krsi-shipped-');
    const self = join(selfDir, 'dropper');
    copyFileSync(fixture('selfexe'), self);
    chmodSync(self, 0o755);
    out['self-delete'] = spawnSync(self, ['unlink'], { encoding: 'utf8' }).stdout.trim();
    // A marker of its own per run: both runs are made against the same agent.
    const marker = join(dir, `preload-marker-${++attackRuns}`);
    spawnSyncRaw('/usr/bin/true', [], { env: { PATH: '/usr/bin', LD_PRELOAD: fixture('preload.so'), KRSI_PRELOAD_MARKER: marker } });
    out['ld-preload'] = existsSync(marker) ? 'ran' : 'ignored';
    const lib = copy('/usr/lib/x86_64-linux-gnu/libz.so.1', 'lib/libz.so');
    out['library-from-tmp'] = spawnSync(fixture('libload'), ['dlopen', lib], { encoding: 'utf8' }).stdout.trim().startsWith('dlopen:') ? 'refused' : 'ok';
    // PTRACE_TRACEME by a user's process: Yama's relational scope allows it, so krsi decides.
    out['ptrace-by-user'] = spawnSync(fixture('ptracer'), ['traceme'], { encoding: 'utf8', uid: NOBODY, gid: NOBODY }).stdout.trim();
    const victim = spawn('/usr/bin/sleep', ['20']);
    await agent.waitFor((e) => e.kind === 'exec' && e.process.pid === victim.pid && e.exec.path === '/usr/bin/sleep', 'the exec of the victim');
    out['ptrace-by-root'] = spawnSync(fixture('ptracer'), ['attach', String(victim.pid)], { encoding: 'utf8' }).stdout.trim();
    victim.kill('SIGKILL');
    out['bpf-by-root'] = spawnSync(fixture('bpfload'), ['krsi_shipped'], { encoding: 'utf8' }).stdout.trim();
    out['bpf-by-user'] = spawnSync(fixture('bpfload'), ['krsi_shipped_u'], { encoding: 'utf8', uid: NOBODY, gid: NOBODY }).stdout.trim();
    return out;
  }

  test('default: the workload runs, nothing is denied, every signal is reported', async () => {
    const since = agent.events.length;
    workload(scratch);
    const did = await attacks(agent);
    assert.deepEqual(did, {
      'exec-from-tmp': 'exit 0',
      fileless: 'ok',
      'self-delete': 'ok',
      'ld-preload': 'ran',
      'library-from-tmp': 'ok',
      'ptrace-by-user': 'ok',
      'ptrace-by-root': 'ok',
      'bpf-by-root': 'ok',
      'bpf-by-user': 'bpf: EPERM', // unprivileged BPF is off in Debian: the kernel refuses, not krsi
    });
    await settled(control);
    assert.deepEqual(denials(agent, since), [], 'the default policy denies nothing');
    const audited = (rule: string): boolean => agent.events.some((e) => 'policy' in e && e.policy.audit?.rule === rule);
    for (const rule of ['loader-injection', 'exec-from-scratch', 'fileless-exec', 'self-delete', 'library-from-scratch', 'ptrace-attach', 'bpf-program-load']) {
      assert.ok(audited(rule), `the ${rule} signal was reported`);
    }
    const preload = agent.events.find((e): e is ExecEvent => e.kind === 'exec' && e.policy.audit?.rule === 'loader-injection');
    assert.equal(preload?.exec.env?.['LD_PRELOAD'], fixture('preload.so'), 'with the value, recorded by default');
  });

  test('hardened, applied to the running agent: the workload runs, the attacks are refused', async () => {
    const hardened = await loadPolicies([join(root, 'policies/hardened.yaml')]);
    assert.deepEqual(hardened.errors, []);
    await control.applyPolicies(hardened.policies.map((p) => ({ policy: p.policy, source: p.source.file })));
    const since = agent.events.length;
    workload(scratch);
    await settled(control);
    assert.deepEqual(denials(agent, since), [], 'the workload needs nothing the hardened policy refuses');
    const did = await attacks(agent);
    assert.deepEqual(did, {
      'exec-from-tmp': 'EPERM',
      fileless: 'exec: EPERM',
      'self-delete': 'unlink: EPERM',
      'ld-preload': 'ignored',
      'library-from-tmp': 'refused',
      'ptrace-by-user': 'traceme: EPERM',
      'ptrace-by-root': 'ok',
      'bpf-by-root': 'ok',
      'bpf-by-user': 'bpf: EPERM',
    });
    await settled(control);
    const by = (rule: string): boolean => agent.events.slice(since).some((e) => 'policy' in e && e.policy.rule?.rule === rule && e.decision === 'denied');
    for (const rule of ['no-exec-from-scratch', 'no-fileless-exec', 'no-self-delete', 'no-libraries-from-scratch', 'no-ptrace-by-users']) {
      assert.ok(by(rule), `${rule} denied the attack`);
    }
    // Before 6.9 the kernel refuses unprivileged bpf() before the LSM hook.
    if (atLeast('6.9')) assert.ok(by('no-bpf-by-users'));
    assert.ok(agent.events.slice(since).some((e) => e.kind === 'exec' && e.policy.secureexec && e.exec.env?.['LD_PRELOAD'] !== undefined));
  });
});
