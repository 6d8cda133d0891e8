// Which modules the initramfs loads, and in what order: computed from the
// kernel's modules.dep and modules.builtin, checked on synthetic input and on
// the real Debian kernels when the cache has them.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  BUSYBOX_PATH,
  initramfsEntries,
  isStaticElf,
  moduleNameOf,
  modulesToLoad,
  parseModulesBuiltin,
  parseModulesDep,
  ROOT_MODULES,
  stage1Init,
  type ModuleDependencies,
} from '../../src/vm/initramfs.js';
import { writeCpio } from '../../src/vm/cpio.js';
import { kernelsCacheDir, PINNED_KERNEL_PACKAGES } from '../../src/vm/kernels.js';

function assertTopological(order: readonly string[], deps: ModuleDependencies): void {
  const position = new Map(order.map((p, i) => [p, i]));
  assert.equal(position.size, order.length, 'no module twice');
  for (const path of order) {
    for (const dep of deps.get(path) ?? []) {
      const depAt = position.get(dep);
      assert.ok(depAt !== undefined, `${dep} (needed by ${path}) is loaded`);
      assert.ok(depAt < (position.get(path) ?? -1), `${dep} loads before ${path}`);
    }
  }
}

const synthetic = `
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/fs/netfs/netfs.ko.xz:
kernel/net/9p/9pnet.ko.xz:
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio_ring.ko.xz:
kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio-pci-helper.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio-pci-helper.ko.xz:
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
`;

test('module names drop the directory and the compression suffix, and dashes become underscores', () => {
  assert.equal(moduleNameOf('kernel/net/9p/9pnet_virtio.ko.xz'), '9pnet_virtio');
  assert.equal(moduleNameOf('kernel/drivers/virtio/virtio-pci-helper.ko'), 'virtio_pci_helper');
  assert.equal(moduleNameOf('kernel/fs/9p/9p.ko.zst'), '9p');
});

test('the dependency closure of the roots loads dependencies first and nothing else', () => {
  const deps = parseModulesDep(synthetic);
  const order = modulesToLoad(deps, new Set(), ROOT_MODULES);
  assertTopological(order, deps);
  assert.deepEqual(new Set(order.map(moduleNameOf)), new Set(['virtio_pci', 'virtio_pci_helper', 'virtio_ring', '9pnet', '9pnet_virtio', 'netfs', '9p']));
});

test('a root that is built in is skipped; one that is neither built in nor a module is an error', () => {
  const deps = parseModulesDep(synthetic.replace(/^kernel\/drivers\/virtio\/virtio_pci\.ko\.xz:.*$/m, ''));
  const builtin = parseModulesBuiltin('kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/virtio/virtio.ko\n');
  const order = modulesToLoad(deps, builtin, ROOT_MODULES);
  assert.ok(!order.some((p) => moduleNameOf(p) === 'virtio_pci'));
  assert.throws(() => modulesToLoad(deps, new Set(), ROOT_MODULES), /no virtio_pci module/);
});

test('a dependency cycle or a dangling dependency is reported, not looped on', () => {
  const cyclic = parseModulesDep('a/9p.ko: a/x.ko\na/x.ko: a/9p.ko\n');
  assert.throws(() => modulesToLoad(cyclic, new Set(), ['9p']), /cycle/);
  const dangling = parseModulesDep('a/9p.ko: a/missing.ko\n');
  assert.throws(() => modulesToLoad(dangling, new Set(), ['9p']), /missing\.ko/);
});

for (const series of ['6.1', '6.12'] as const) {
  test(`the real ${series} kernel: 9p modules from its modules.dep`, (t) => {
    const tree = join(kernelsCacheDir(), PINNED_KERNEL_PACKAGES[series]);
    const marker = join(tree, '.krsi-kernel.json');
    if (!existsSync(marker)) {
      t.skip(`${PINNED_KERNEL_PACKAGES[series]} is not in the cache (krsi vm --fetch-only)`);
      return;
    }
    const { modulesDir } = JSON.parse(readFileSync(marker, 'utf8')) as { modulesDir: string };
    const deps = parseModulesDep(readFileSync(join(tree, modulesDir, 'modules.dep'), 'utf8'));
    const builtin = parseModulesBuiltin(readFileSync(join(tree, modulesDir, 'modules.builtin'), 'utf8'));
    const order = modulesToLoad(deps, builtin, ROOT_MODULES);
    assertTopological(order, deps);
    const names = order.map(moduleNameOf);
    // What the kernel lab found by hand (kernel-lab.md).
    const expected =
      series === '6.1'
        ? ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'netfs', 'fscache', '9pnet', '9pnet_virtio', '9p']
        : ['netfs', '9pnet', '9pnet_virtio', '9p'];
    assert.deepEqual(new Set(names), new Set(expected));
    assert.equal(names.at(-1), '9p');
  });
}

test('the stage 1 init loads the modules in the given order and hands over with switch_root', () => {
  const init = stage1Init(['a.ko', 'b.ko']);
  assert.match(init, /^#!\/bin\/busybox sh\n/);
  assert.match(init, /for m in a\.ko b\.ko; do/);
  assert.match(init, /mount -t 9p -o trans=virtio,version=9p2000\.L,msize=512000,ro,cache=loose hostroot \/newroot/);
  assert.match(init, /\. \/newroot\/run\/krsi-vm\/setup\.sh\n/);
  assert.match(init, /exec \$bb switch_root \/newroot \/bin\/sh \/run\/krsi-vm\/stage2\.sh\n$/);
});

test('the archive has every parent before its children', () => {
  const entries = initramfsEntries({
    busybox: Buffer.from('\x7fELF'),
    init: stage1Init(['x.ko']),
    modules: [{ file: 'x.ko', data: Buffer.from('ko') }],
  });
  assert.doesNotThrow(() => writeCpio(entries));
  assert.ok(entries.some((e) => e.path === 'dev/console' && e.kind === 'characterDevice'));
});

test('a static ELF is told apart from a dynamic one', (t) => {
  // node itself is dynamically linked on Debian.
  assert.equal(isStaticElf(readFileSync(process.execPath)), false);
  assert.equal(isStaticElf(Buffer.from('#!/bin/sh\n')), false);
  if (!existsSync(BUSYBOX_PATH)) {
    t.skip(`${BUSYBOX_PATH} is not installed`);
    return;
  }
  assert.equal(isStaticElf(readFileSync(BUSYBOX_PATH)), true, `${BUSYBOX_PATH} is dynamically linked: install busybox-static`);
});
