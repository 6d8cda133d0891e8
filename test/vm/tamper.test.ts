// The tamper suite, in a kernel with BPF LSM: as root, with kill, bpftool,
// rm, umount and the BPF syscall itself, try everything an attacker would
// against the agent; every attempt must be denied and reported, while the
// agent and its authenticated admin path (the control socket) keep working.
// The result is printed as a table.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { native } from '../../src/bpf/native.js';
import type { KrsiEvent, TamperEvent } from '../../src/events/schema.js';
import { policyFile, startAgent, type AgentProcess } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { repoPath } from '../lib/paths.js';

// One LSM program that allows everything: it loads anywhere krsi does not refuse it.
const intruderObject = repoPath('build/bpf/testdata/lsm_intruder.bpf.o');
const ptracer = repoPath('build/test/ptracer');
const isTamper = (e: KrsiEvent): e is TamperEvent => e.kind === 'tamper';

interface Row {
  attempt: string;
  outcome: string;
  denied: boolean;
}

/** Runs fn; a thrown error with an errno code is the outcome. */
function attempt(fn: () => unknown): { denied: boolean; outcome: string } {
  try {
    fn();
    return { denied: false, outcome: 'succeeded' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0];
    return { denied: code === 'EPERM' || code === 'EACCES', outcome: String(code) };
  }
}

// umount(8) says "must be superuser" for the EPERM it got, even to root.
const DENIED = /not permitted|permission denied|must be superuser|\bEPERM\b/i;

function command(cmd: string, args: string[]): { denied: boolean; outcome: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  const lines = `${r.stdout}${r.stderr}`.trim().split('\n');
  const said = lines.find((l) => DENIED.test(l)) ?? lines.pop() ?? '';
  return { denied: r.status !== 0 && DENIED.test(`${r.stdout}${r.stderr}`), outcome: `exit ${r.status}: ${said.slice(0, 80)}` };
}

describe('tamper suite', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  let agent: AgentProcess;
  const rows: Row[] = [];
  const pinRoot = `/sys/fs/bpf/krsi-tamper-${process.pid}`;
  const policy = policyFile(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: tamper-test }
spec:
  rules:
    - { name: deny-nothing-much, hook: exec, match: { binary: { path: [/nonexistent/krsi] } }, action: deny }
`);

  before(async () => {
    agent = await startAgent({ policies: [policy], pinRoot });
  });

  after(async () => {
    const table = ['| attempt | outcome | denied |', '|---|---|---|', ...rows.map((r) => `| ${r.attempt} | ${r.outcome} | ${r.denied ? 'yes' : 'NO'} |`)];
    for (const line of table) console.log(`# ${line}`);
    if (agent) await agent.stop();
  });

  const record = (name: string, r: { denied: boolean; outcome: string }): void => {
    rows.push({ attempt: name, ...r });
    assert.ok(r.denied, `${name}: ${r.outcome}`);
  };

  test('signals and ptrace', (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const pid = agent.child.pid!;
    for (const sig of ['SIGKILL', 'SIGTERM', 'SIGSTOP', 'SIGHUP'] as const) record(`kill -${sig} agent`, attempt(() => process.kill(pid, sig)));
    assert.doesNotThrow(() => process.kill(pid, 0), 'signal 0 (does it exist?) is answered');
    record('read /proc/PID/mem', attempt(() => openSync(`/proc/${pid}/mem`, 'r')));
    record('ptrace attach the agent', command(ptracer, ['attach', String(pid)]));
    assert.ok(agent.child.exitCode === null, 'the agent is alive');
  });

  test('its maps, programs and links', (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    record('bpftool map dump pinned counters', command('bpftool', ['map', 'dump', 'pinned', join(pinRoot, 'maps', 'counters')]));
    record('bpftool map update pinned policy_active', command('bpftool', ['map', 'update', 'pinned', join(pinRoot, 'maps', 'policy_active'), 'key', '0', '0', '0', '0', 'value', '0', '0', '0', '0']));
    record('open a pinned link (BPF_OBJ_GET)', attempt(() => native.BpfLink.open(join(pinRoot, 'links', 'exec_check'))));
    // Every map id: the agent's are refused, others open.
    let refused = 0;
    let opened = 0;
    for (let id = 1; id < 4096; id++) {
      try {
        native.BpfMap.openById(id).close();
        opened++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EPERM') refused++;
      }
    }
    record(`map fds by id (${refused} refused, ${opened} opened)`, { denied: refused >= 10, outcome: `${refused} EPERM` });
    const progs = command('bpftool', ['prog', 'show', 'name', 'exec_check']);
    record('bpftool prog show name exec_check', { denied: !/exec_check/.test(progs.outcome) || progs.denied, outcome: progs.outcome });
    record('load an LSM program (bpftool prog load)', command('bpftool', ['prog', 'load', intruderObject, `/sys/fs/bpf/krsi-tamper-intruder-${process.pid}`]));
  });

  test('its pins and their file system', (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    record('rm a pinned link', attempt(() => unlinkSync(join(pinRoot, 'links', 'exec_check'))));
    record('mv a pinned map', attempt(() => renameSync(join(pinRoot, 'maps', 'policy_active'), join(pinRoot, 'maps', 'x'))));
    record('rmdir the pin directory', attempt(() => rmdirSync(join(pinRoot, 'links'))));
    record('umount /sys/fs/bpf', command('umount', ['/sys/fs/bpf']));
  });

  test('every attempt was reported; the agent and its admin path still work', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    await agent.waitFor((e) => isTamper(e) && e.attempt === 'bpffs_umount', 'the last tamper event');
    const kinds = new Set(agent.events.filter(isTamper).map((e) => e.attempt));
    for (const k of ['signal', 'ptrace', 'bpf_pin_open', 'bpf_map_fd', 'bpf_prog_load', 'pin_remove', 'bpffs_umount']) {
      assert.ok(kinds.has(k as TamperEvent['attempt']), `a ${k} event`);
    }
    const status = JSON.parse(agent.krsi('status', '--json').stdout) as { tamper: Record<string, number>; locked: boolean };
    assert.ok((status.tamper['signal'] ?? 0) >= 4, 'counted');
    const r = agent.krsi('policy', 'apply', policy);
    assert.equal(r.status, 0, `the admin path applies a policy: ${r.stderr}`);
  });

  test('krsi lock: the policy is immutable, even for the agent', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const locked = agent.krsi('lock');
    assert.equal(locked.status, 0, locked.stderr);
    const r = agent.krsi('policy', 'apply', policy);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /locked until reboot/);
    const status = JSON.parse(agent.krsi('status', '--json').stdout) as { locked: boolean };
    assert.equal(status.locked, true);
    rows.push({ attempt: 'policy apply after krsi lock', outcome: 'refused (maps frozen)', denied: true });
  });
});
