// Choosing a kernel package when the pinned one is gone, and extracting the
// ELF kernel that qemu boots faster.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CliError, ExitCode } from '../../src/cli/exit-codes.js';
import { setLogLevel } from '../../src/log.js';
import {
  chooseKernelPackage,
  compareVersionsNaturally,
  extractVmlinux,
  kernelPackageSet,
  kernelsCacheDir,
  lsmBootWords,
  packageSizeFromAptShow,
  parseKernelSeries,
  PINNED_KERNEL_PACKAGES,
  prepareKernel,
} from '../../src/vm/kernels.js';

// `apt-cache pkgnames linux-image-6.1` / `linux-image-6.12`, abridged, with
// names a future point release could add.
const pkgnames61 = `linux-image-6.1.0-9-amd64
linux-image-6.1.0-47-amd64-dbg
linux-image-6.1.0-47-amd64-unsigned
linux-image-6.1.0-47-cloud-amd64
linux-image-6.1.0-57-cloud-amd64
linux-image-6.1.0-57-rt-amd64
linux-image-6.1.0-57-amd64-dbg
linux-image-6.1.0-56-amd64
linux-image-6.1.0-57-amd64
linux-image-6.1.0-57-amd64-unsigned
linux-image-6.12.117+deb12-amd64
linux-image-6.12-amd64
`;
const pkgnames612 = `linux-image-6.12-amd64
linux-image-6.12-amd64-dbg
linux-image-6.12-amd64-signed-template
linux-image-6.12-cloud-amd64
linux-image-6.12.100+deb12-amd64
linux-image-6.12.99+deb12-amd64
linux-image-6.12.117+deb12-amd64
linux-image-6.12.117+deb12-rt-amd64
linux-image-6.12.118+deb12-cloud-amd64
linux-image-6.12.117+deb12-amd64-dbg
linux-image-6.12.117+deb12-amd64-unsigned
`;

test('the newest generic amd64 image of the series, by numeric version order', () => {
  assert.deepEqual(chooseKernelPackage('6.1', pkgnames61.split('\n')), { packageName: 'linux-image-6.1.0-57-amd64', flavour: 'amd64' });
  assert.deepEqual(chooseKernelPackage('6.12', pkgnames612.split('\n')), {
    packageName: 'linux-image-6.12.117+deb12-amd64',
    flavour: 'amd64',
  });
});

test('6.1 never picks a 6.12 package, and metapackages are skipped', () => {
  const only612 = ['linux-image-6.12.117+deb12-amd64', 'linux-image-6.12-amd64', 'linux-image-6.1-amd64'];
  assert.equal(chooseKernelPackage('6.1', only612), undefined);
});

test('other flavours only when no generic one exists; -dbg never', () => {
  assert.deepEqual(chooseKernelPackage('6.1', ['linux-image-6.1.0-50-cloud-amd64', 'linux-image-6.1.0-51-rt-amd64', 'linux-image-6.1.0-52-amd64-dbg']), {
    packageName: 'linux-image-6.1.0-50-cloud-amd64',
    flavour: 'cloud-amd64',
  });
  assert.deepEqual(chooseKernelPackage('6.1', ['linux-image-6.1.0-50-cloud-amd64', 'linux-image-6.1.0-49-amd64-unsigned']), {
    packageName: 'linux-image-6.1.0-49-amd64-unsigned',
    flavour: 'amd64-unsigned',
  });
  assert.equal(chooseKernelPackage('6.1', ['linux-image-6.1.0-52-amd64-dbg']), undefined);
  assert.equal(chooseKernelPackage('6.12', []), undefined);
});

test('versions compare by their numbers', () => {
  assert.ok(compareVersionsNaturally('6.1.0-9', '6.1.0-56') < 0);
  assert.ok(compareVersionsNaturally('6.12.117+deb12', '6.12.57+deb13') > 0);
  assert.ok(compareVersionsNaturally('6.12.117+deb12', '6.12.117+deb12') === 0);
  assert.ok(compareVersionsNaturally('6.12.117', '6.12.117+deb12') < 0);
});

test('the download size comes from the Size field of apt-cache show', () => {
  const show = 'Package: linux-image-6.1.0-56-amd64\nVersion: 6.1.192-2\nInstalled-Size: 400652\nSize: 70550672\nSHA256: ab\n';
  assert.equal(packageSizeFromAptShow(show), 70550672);
  assert.equal(packageSizeFromAptShow('Package: x\n'), undefined);
});

test('kernel series are validated', () => {
  assert.equal(parseKernelSeries('6.12'), '6.12');
  assert.throws(() => parseKernelSeries('5.15'), /unknown kernel series/);
});

/** A minimal bzImage: the boot header fields extractVmlinux reads, then the payload. */
function fakeBzImage(payload: Buffer, size: number): Buffer {
  const setupSectors = 1;
  const header = Buffer.alloc((setupSectors + 1) * 512);
  header[0x1f1] = setupSectors;
  header.write('HdrS', 0x202, 'latin1');
  header.writeUInt16LE(0x20f, 0x206);
  const sizeBytes = Buffer.alloc(4);
  sizeBytes.writeUInt32LE(size);
  const offset = 16;
  header.writeUInt32LE(offset, 0x248);
  header.writeUInt32LE(payload.length + 4, 0x24c);
  return Buffer.concat([header, Buffer.alloc(offset), payload, sizeBytes, Buffer.from('trailing decompressor code')]);
}

test('vmlinux is extracted from a gzip bzImage, and only an ELF of the announced size counts', async () => {
  const elf = Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(1000, 7)]);
  const extracted = await extractVmlinux(fakeBzImage(gzipSync(elf), elf.length));
  assert.ok(extracted?.equals(elf));
  assert.equal(await extractVmlinux(fakeBzImage(gzipSync(elf), elf.length + 1)), undefined);
  assert.equal(await extractVmlinux(fakeBzImage(gzipSync(Buffer.from('not an elf')), 10)), undefined);
  assert.equal(await extractVmlinux(Buffer.from('not a kernel')), undefined);
});

for (const series of ['6.1', '6.12'] as const) {
  test(`the real ${series} vmlinuz (${series === '6.1' ? 'xz' : 'zstd'}) gives the ELF kernel`, async (t) => {
    const tree = join(kernelsCacheDir(), PINNED_KERNEL_PACKAGES[series]);
    const markerPath = join(tree, '.krsi-kernel.json');
    if (!existsSync(markerPath)) {
      t.skip(`${PINNED_KERNEL_PACKAGES[series]} is not in the cache (krsi vm --fetch-only)`);
      return;
    }
    const marker = JSON.parse(readFileSync(markerPath, 'utf8')) as { vmlinuz: string; version: string };
    const image = await extractVmlinux(readFileSync(join(tree, marker.vmlinuz)));
    assert.ok(image !== undefined, 'extracted');
    assert.equal(image.toString('latin1', 0, 4), '\x7fELF');
    const cached = join(tree, 'boot', `vmlinux-${marker.version}`);
    if (existsSync(cached)) assert.ok(readFileSync(cached).equals(image), 'the cached vmlinux is the same');
  });
}

/** Runs prepareKernel against fake apt-cache/apt-get scripts and an empty cache. */
async function withFakeApt(aptCache: string, aptGet: string, body: () => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-fake-apt-'));
  const saved = { PATH: process.env['PATH'], KRSI_CACHE_DIR: process.env['KRSI_CACHE_DIR'] };
  try {
    for (const [name, script] of [['apt-cache', aptCache], ['apt-get', aptGet]] as const) {
      writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`);
      chmodSync(join(dir, name), 0o755);
    }
    process.env['PATH'] = `${dir}:${saved.PATH ?? ''}`;
    process.env['KRSI_CACHE_DIR'] = join(dir, 'cache');
    setLogLevel('silent');
    await body();
  } finally {
    process.env['PATH'] = saved.PATH;
    if (saved.KRSI_CACHE_DIR === undefined) delete process.env['KRSI_CACHE_DIR'];
    else process.env['KRSI_CACHE_DIR'] = saved.KRSI_CACHE_DIR;
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a pinned name apt no longer knows is replaced by the newest of its series', async () => {
  const aptCache = `case "$1" in
  show) case "$3" in linux-image-6.1.0-57-amd64) printf 'Package: %s\\nSize: 71000000\\n' "$3";; *) echo "E: No packages found" >&2; exit 100;; esac;;
  pkgnames) printf '%s\\n' linux-image-6.1.0-55-amd64 linux-image-6.1.0-57-amd64 linux-image-6.1.0-57-cloud-amd64 linux-image-6.12.117+deb12-amd64;;
esac`;
  // The download itself fails: the error shows which package was chosen.
  await withFakeApt(aptCache, 'echo "E: network unreachable" >&2; exit 100', async () => {
    const lines: string[] = [];
    await assert.rejects(
      prepareKernel('6.1', (l) => lines.push(l)),
      (err: unknown) => err instanceof CliError && /apt-get download .*linux-image-6\.1\.0-57-amd64/.test(err.message) && /network unreachable/.test(err.message),
    );
    assert.deepEqual(lines, ['updating the package lists of the kernel suites…', 'fetching linux-image-6.1.0-57-amd64 (71 MB)…']);
  });
});

test('no package of the series at all is a missing dependency that says what to do', async () => {
  await withFakeApt('[ "$1" = show ] && exit 100; exit 0', 'exit 1', async () => {
    await assert.rejects(
      prepareKernel('6.12', () => {}),
      (err: unknown) => err instanceof CliError && err.exitCode === ExitCode.missingDependency && /apt-get update/.test(err.message),
    );
  });
});

test('two concurrent fetches end with one complete tree; a second call fetches nothing', async (t) => {
  if (spawnSync('dpkg-deb', ['--version']).status !== 0 || spawnSync('depmod', ['-V']).status !== 0) {
    t.skip('dpkg-deb or depmod is missing');
    return;
  }
  const version = '6.1.0-99-amd64';
  const packageName = `linux-image-${version}`;
  const build = mkdtempSync(join(tmpdir(), 'krsi-fake-deb-'));
  try {
    const root = join(build, 'root');
    for (const dir of ['DEBIAN', 'boot', `lib/modules/${version}/kernel`]) mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, 'DEBIAN/control'), `Package: ${packageName}\nVersion: 1\nArchitecture: amd64\nMaintainer: test <t@example.org>\nDescription: fake\n`);
    writeFileSync(join(root, `boot/vmlinuz-${version}`), 'not really a kernel');
    writeFileSync(join(root, `boot/config-${version}`), 'CONFIG_PVH=y\n');
    writeFileSync(join(root, `lib/modules/${version}/modules.order`), '');
    writeFileSync(join(root, `lib/modules/${version}/modules.builtin`), '');
    const deb = join(build, 'fake.deb');
    const built = spawnSync('dpkg-deb', ['--build', '-Zgzip', root, deb]);
    assert.equal(built.status, 0, built.stderr.toString());

    const aptCache = `case "$1" in show) [ "$3" = ${packageName} ] && printf 'Package: %s\\nSize: 1000\\n' "$3" || exit 100;; pkgnames) echo ${packageName};; esac`;
    // Slow enough that both calls are inside the download at once.
    const calls = join(build, 'apt-get.calls');
    const aptGet = `echo "$@" >> ${calls}; sleep 0.3; cp ${deb} ./${packageName}_1_amd64.deb`;
    const downloads = (): number => (existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
    await withFakeApt(aptCache, aptGet, async () => {
      const [a, b] = await Promise.all([prepareKernel('6.1', () => {}), prepareKernel('6.1', () => {})]);
      assert.deepEqual(a, b);
      assert.equal(a.packageName, packageName);
      assert.equal(a.version, version);
      assert.equal(a.bootImage, a.vmlinuz, 'not a bzImage: boots the vmlinuz');
      assert.ok(existsSync(join(a.modulesDir, 'modules.dep')), 'depmod ran');
      const kernels = readdirSync(kernelsCacheDir());
      assert.deepEqual(kernels, [packageName], 'no partial or damaged trees left');

      const before = downloads();
      assert.ok(before >= 1, 'the first fetches ran apt-get');
      const lines: string[] = [];
      const again = await prepareKernel('6.1', (l) => lines.push(l));
      assert.deepEqual(again, a);
      assert.deepEqual(lines, [], 'nothing reported');
      assert.equal(downloads(), before, 'apt-get not run again');
    });
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
});

test('5.10 and 7.2 resolve like the others; 5.15 is no series of ours', () => {
  assert.equal(parseKernelSeries('5.10'), '5.10');
  assert.equal(parseKernelSeries('7.2'), '7.2');
  assert.deepEqual(chooseKernelPackage('5.10', ['linux-image-5.10.0-45-amd64', 'linux-image-5.10.0-46-amd64', 'linux-image-5.10.0-46-cloud-amd64']), {
    packageName: 'linux-image-5.10.0-46-amd64',
    flavour: 'amd64',
  });
});

test('boot with lsm=<CONFIG_LSM>,bpf only where the default list lacks bpf', () => {
  const bullseye = 'CONFIG_BPF_LSM=y\nCONFIG_LSM="lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo"\n';
  assert.deepEqual(lsmBootWords(bullseye), ['lsm=lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf']);
  assert.deepEqual(lsmBootWords('CONFIG_BPF_LSM=y\nCONFIG_LSM="landlock,lockdown,yama,bpf"\n'), []);
  assert.deepEqual(lsmBootWords('# CONFIG_BPF_LSM is not set\nCONFIG_LSM="yama"\n'), []);
  assert.deepEqual(lsmBootWords(''), []);
});

test('a split kernel (7.x) is fetched with its binary, modules and base packages', () => {
  const show =
    'Package: linux-image-7.2.13+deb14-amd64\nDepends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, ' +
    'linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1), linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1)\n';
  assert.deepEqual(kernelPackageSet('linux-image-7.2.13+deb14-amd64', show), [
    'linux-image-7.2.13+deb14-amd64',
    'linux-base-7.2.13+deb14-amd64',
    'linux-binary-7.2.13+deb14-amd64',
    'linux-modules-7.2.13+deb14-amd64',
  ]);
  const old = 'Package: linux-image-5.10.0-46-amd64\nDepends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool\n';
  assert.deepEqual(kernelPackageSet('linux-image-5.10.0-46-amd64', old), ['linux-image-5.10.0-46-amd64']);
});
