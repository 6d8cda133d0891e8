// The per-run guest scripts: the environment and the command must reach the
// guest byte for byte whatever they contain, and the set-up must fit the host.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { endSentinelPrefix, startSentinel } from '../../src/vm/console.js';
import {
  guestEnvironment,
  scratchMounts,
  setupScript,
  quoteAlways,
  shellQuote,
  stage2Script,
} from '../../src/vm/guest-scripts.js';

const hostile = [
  '',
  'plain',
  "it's",
  "''",
  '"double" and \\backslash\\',
  '$HOME ${PATH} $(id) `id` $((1+1))',
  'line one\nline two\n',
  '\ttab; semicolon & amp | pipe > gt < lt * ? [a] ~ # hash',
  "'; echo pwned; '",
  'unicode \u00e9\u{1f600}',
  '-n',
  '--',
];

// dash (Debian's /bin/sh, which runs stage 2) and busybox sh (stage 1).
const shells = [['/bin/sh'], ['/bin/busybox', 'sh']].filter(([path]) => path !== undefined && existsSync(path));

test('shellQuote and quoteAlways keep every value one literal word in dash and busybox sh', () => {
  const script = `printf '%s\\0' ${hostile.map(shellQuote).join(' ')} ${hostile.map(quoteAlways).join(' ')}`;
  for (const shell of shells) {
    const [command, ...args] = shell as [string, ...string[]];
    const result = spawnSync(command, [...args, '-c', script]);
    assert.equal(result.status, 0, `${command}: ${result.stderr.toString()}`);
    assert.deepEqual(result.stdout.toString('utf8').split('\0').slice(0, -1), [...hostile, ...hostile], command);
  }
});

test('a NUL byte cannot be passed and is refused', () => {
  assert.throws(() => shellQuote('a\0b'), /NUL/);
});

test('command words are never reserved words or assignments', () => {
  const script = stage2Script({ token: 't', env: new Map(), cwd: '/', command: ['A=1', 'if', '!'] });
  assert.match(script, /^'A=1' 'if' '!' <\/dev\/null$/m);
});

test('the stage 2 exports reach the command unchanged', () => {
  const env = new Map(hostile.map((value, i) => [`V${i}`, value]));
  const script = stage2Script({ token: 't', env, cwd: '/', command: ['true'] });
  // Multi-line values span several lines: take the block from the first
  // export to the cd line rather than filtering line by line.
  const block = script.slice(script.indexOf('export '), script.indexOf('\ncd '));
  assert.ok(block.startsWith('export V0='));
  const probe = `${block}\nfor i in ${hostile.map((_, i) => i).join(' ')}; do eval "printf '%s\\0' \\"\\$V$i\\""; done`;
  const result = spawnSync('/bin/sh', ['-c', probe]);
  assert.equal(result.status, 0, result.stderr.toString());
  assert.deepEqual(result.stdout.toString('utf8').split('\0').slice(0, -1), hostile);
});

test('stage 2 runs the command as a child with the sentinels around it', () => {
  const script = stage2Script({ token: 'abc', env: new Map([['PATH', '/bin']]), cwd: "/work/it's", command: ['node', '-e', 'console.log(1)'] });
  const lines = script.split('\n');
  const commandLine = lines.findIndex((l) => l.startsWith("'node' '-e' 'console.log(1)'"));
  assert.ok(commandLine > 0, 'the command line is there, quoted');
  assert.ok(!lines[commandLine]?.startsWith('exec '), 'not exec: PID 1 stays');
  assert.ok(lines.findIndex((l) => l.includes(startSentinel('abc'))) < commandLine);
  assert.ok(lines.findIndex((l) => l.includes(endSentinelPrefix('abc'))) > commandLine);
  assert.match(script, /^cd '\/work\/it'\\''s' \|\|/m);
  assert.match(script, /^echo "\$status" > \/run\/krsi-vm\/exit-status$/m);
  assert.match(script, /echo o > \/proc\/sysrq-trigger/);
});

test('stage 2 parses in dash', () => {
  const script = stage2Script({ token: 'abc', env: new Map([['A', "x'y"]]), cwd: '/', command: ['sh', '-c', 'exit 7'] });
  const result = spawnSync('/bin/sh', ['-n', '-c', script]);
  assert.equal(result.status, 0, result.stderr.toString());
});

test('the set-up binds the modules before the scratch tmpfs, and parses in busybox sh', (t) => {
  const script = setupScript({
    kernelVersion: '6.1.0-56-amd64',
    modulesDir: '/var/cache/krsi/kernels/linux-image-6.1.0-56-amd64/lib/modules/6.1.0-56-amd64',
    modulesMountPoint: '/usr/lib/modules',
    scratch: [{ path: '/tmp', mode: '1777' }],
    writableShares: [{ tag: 'krsiw0', path: '/work/out dir' }],
  });
  const bind = script.indexOf('mount --bind /newroot/var/cache/krsi/kernels/linux-image-6.1.0-56-amd64/lib/modules/6.1.0-56-amd64 /newroot/usr/lib/modules/6.1.0-56-amd64');
  const tmp = script.indexOf('tmpfs /newroot/tmp');
  assert.ok(bind > 0 && tmp > bind, 'bind first');
  assert.match(script, /mount -t 9p -o trans=virtio,version=9p2000\.L,msize=512000 krsiw0 \/newroot'\/work\/out dir'/);
  assert.match(script, /mount -t securityfs securityfs \/newroot\/sys\/kernel\/security/);
  assert.match(script, /mount -t bpf .* \/newroot\/sys\/fs\/bpf/);
  assert.match(script, /mount -t cgroup2 .* \/newroot\/sys\/fs\/cgroup/);
  if (!existsSync('/bin/busybox')) {
    t.skip('no busybox');
    return;
  }
  const result = spawnSync('/bin/busybox', ['sh', '-n', '-c', script]);
  assert.equal(result.status, 0, result.stderr.toString());
});

test('the guest environment: the defaults, KRSI_*, --env, and the VM markers', () => {
  const env = guestEnvironment({
    hostEnv: {
      PATH: '/usr/bin',
      HOME: '/home/dev',
      SECRET_TOKEN: 'not passed',
      KRSI_LOG_LEVEL: 'debug',
      KRSI_VM_ACCEL: 'tcg',
      NODE_OPTIONS: '--enable-source-maps',
      EDITOR: 'vi',
    },
    assignments: ['EXTRA=a=b', 'EDITOR', 'HOME=/root'],
    series: '6.1',
    hostStdoutIsTty: true,
  });
  assert.equal(env.get('PATH'), '/usr/bin');
  assert.equal(env.get('HOME'), '/root', '--env wins');
  assert.equal(env.get('KRSI_LOG_LEVEL'), 'debug');
  assert.equal(env.has('KRSI_VM_ACCEL'), false, 'host-only');
  assert.equal(env.has('SECRET_TOKEN'), false);
  assert.equal(env.get('NODE_OPTIONS'), '--enable-source-maps');
  assert.equal(env.get('EXTRA'), 'a=b', 'only the first = splits');
  assert.equal(env.get('EDITOR'), 'vi', 'NAME alone passes the host value');
  assert.equal(env.get('KRSI_IN_VM'), '1');
  assert.equal(env.get('KRSI_VM_KERNEL'), '6.1');
  assert.equal(env.get('TERM'), 'dumb');
  assert.equal(env.get('LANG'), 'C.UTF-8');
  assert.equal(env.has('NO_COLOR'), false, 'the host stdout is a terminal');
});

test('a host stdout that is not a terminal turns colours off unless asked for', () => {
  const base = { assignments: [], series: '6.12' as const, hostStdoutIsTty: false };
  assert.equal(guestEnvironment({ ...base, hostEnv: {} }).get('NO_COLOR'), '1');
  assert.equal(guestEnvironment({ ...base, hostEnv: { FORCE_COLOR: '1' } }).has('NO_COLOR'), false);
  assert.equal(guestEnvironment({ ...base, hostEnv: {}, assignments: ['KRSI_IN_VM=0'] }).get('KRSI_IN_VM'), '1');
});

test('--env refuses names that are not shell variable names', () => {
  for (const bad of ['1X=a', 'A-B=c', '=x', 'A B=c', 'A;rm=x']) {
    assert.throws(
      () => guestEnvironment({ hostEnv: {}, assignments: [bad], series: '6.1', hostStdoutIsTty: true }),
      /not a valid variable name/,
      bad,
    );
  }
});

test('scratch tmpfs: existing directories only; a working directory below one is carried through', () => {
  const exists = (p: string): boolean => ['/tmp', '/var/tmp', '/root', '/var/log'].includes(p);
  const fromWork = scratchMounts('/work/main', exists);
  assert.deepEqual(fromWork.mounts.map((m) => m.path), ['/tmp', '/var/tmp', '/root', '/var/log']);
  assert.deepEqual(fromWork.carried, []);
  const fromTmp = scratchMounts('/tmp/ci/krsi', exists);
  assert.deepEqual(fromTmp.carried, ['/tmp/ci/krsi']);
  assert.ok(fromTmp.mounts.some((m) => m.path === '/tmp'), '/tmp is still writable');
  assert.deepEqual(scratchMounts('/tmpfoo', exists).carried, [], '/tmpfoo is not inside /tmp');
  const atTmp = scratchMounts('/tmp', exists);
  assert.deepEqual(atTmp.carried, []);
  assert.ok(!atTmp.mounts.some((m) => m.path === '/tmp'), 'the working directory itself is never hidden');
});

test('the set-up sets a carried working directory aside before the tmpfs and moves it back after', () => {
  const script = setupScript({
    kernelVersion: '6.1.0-56-amd64',
    modulesDir: '/cache/lib/modules/6.1.0-56-amd64',
    modulesMountPoint: '/usr/lib/modules',
    scratch: [{ path: '/tmp', mode: '1777' }],
    carried: ['/tmp/ci run/krsi'],
    writableShares: [],
  });
  const aside = script.indexOf("mount --bind /newroot'/tmp/ci run/krsi' /carried/0");
  const tmp = script.indexOf('tmpfs /newroot/tmp');
  const back = script.indexOf("mount --move /carried/0 /newroot'/tmp/ci run/krsi'");
  assert.ok(aside > 0 && tmp > aside && back > tmp, script);
});
