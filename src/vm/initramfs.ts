// The initramfs of the VM: a static busybox, the modules that the 9p root
// needs (read from the kernel's own modules.dep, never hard-coded), and the
// stage 1 init that mounts the host root and hands over to the per-run
// stage 2 script. Built once per kernel and cached under its content hash.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError } from '../cli/exit-codes.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { missingDependency } from './host-tools.js';
import { cacheDir, readModuleObject, type PreparedKernel, type Progress } from './kernels.js';

/** Where busybox-static puts its binary (the dynamic busybox package uses the same path). */
export const BUSYBOX_PATH = '/bin/busybox';

/** 9p tags the host's qemu command line and the stage 1 init agree on. */
export const HOST_ROOT_TAG = 'hostroot';
export const RUN_SHARE_TAG = 'krsirun';
/** Where the run share appears in the guest; stage 2 lives there. */
export const GUEST_RUN_DIR = '/run/krsi-vm';
export const SETUP_NAME = 'setup.sh';
export const STAGE2_NAME = 'stage2.sh';
export const NINEP_MOUNT_OPTIONS = 'trans=virtio,version=9p2000.L,msize=512000';
/**
 * The host root is read-only to the guest, so caching its pages, inodes and
 * dentries in the guest (cache=loose) is safe as long as the host does not
 * change the files a run reads while it runs. It makes a second `node` start
 * 6x faster, and on 6.1 avoids uncached reads that took seconds.
 * The writable shares keep cache=none: their writes must reach the host
 * before the guest powers off.
 */
export const HOST_ROOT_EXTRA_OPTIONS = 'ro,cache=loose';

/**
 * What the guest must load before it can mount a 9p share from a virtio PCI
 * device: the closure of these under modules.dep, minus what is built in.
 */
export const ROOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p'] as const;

// --- modules.dep ---------------------------------------------------------------

/** module path (relative to the modules dir) -> its direct dependencies' paths. */
export type ModuleDependencies = ReadonlyMap<string, readonly string[]>;

export function parseModulesDep(text: string): ModuleDependencies {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const needs = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((p) => p !== '');
    deps.set(path, needs);
  }
  return deps;
}

/** "kernel/net/9p/9pnet_virtio.ko.xz" -> "9pnet_virtio"; dashes and underscores are the same to the kernel. */
export function moduleNameOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');
}

/** Names of the modules listed in modules.builtin. */
export function parseModulesBuiltin(text: string): ReadonlySet<string> {
  return new Set(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map(moduleNameOf),
  );
}

/**
 * The module files to insmod, in an order where every module follows all of
 * its dependencies. Roots that are built into the kernel are skipped; a root
 * that is neither built in nor a module means the kernel cannot mount 9p.
 */
export function modulesToLoad(
  dependencies: ModuleDependencies,
  builtin: ReadonlySet<string>,
  roots: readonly string[],
): string[] {
  const pathByName = new Map<string, string>();
  for (const path of dependencies.keys()) pathByName.set(moduleNameOf(path), path);

  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (path: string, chain: readonly string[]): void => {
    const current = state.get(path);
    if (current === 'done') return;
    if (current === 'visiting') throw new CliError(`modules.dep has a dependency cycle: ${[...chain, path].join(' -> ')}`);
    state.set(path, 'visiting');
    const needs = dependencies.get(path);
    if (needs === undefined) throw new CliError(`modules.dep lists ${path} as a dependency but not as a module`);
    // modprobe loads a module's dependency list from its end; do the same so
    // that the order matches what modprobe would do.
    for (const dep of [...needs].reverse()) visit(dep, [...chain, path]);
    state.set(path, 'done');
    order.push(path);
  };

  for (const root of roots) {
    const name = root.replace(/-/g, '_');
    const path = pathByName.get(name);
    if (path !== undefined) visit(path, []);
    else if (!builtin.has(name)) throw new CliError(`the kernel has no ${root} module and does not build it in; it cannot mount the 9p root`);
  }
  return order;
}

// --- busybox -----------------------------------------------------------------

/** True when an ELF image has no program interpreter, i.e. needs no shared libraries. */
export function isStaticElf(image: Uint8Array): boolean {
  const bytes = Buffer.from(image.buffer, image.byteOffset, image.length);
  if (bytes.length < 64 || bytes.toString('latin1', 0, 4) !== '\x7fELF') return false;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const u16 = (o: number): number => (little ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o));
  const u32 = (o: number): number => (little ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o));
  const phoff = is64 ? Number(little ? bytes.readBigUInt64LE(0x20) : bytes.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  const PT_INTERP = 3;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > bytes.length) return false;
    if (u32(at) === PT_INTERP) return false;
  }
  return true;
}

async function readStaticBusybox(): Promise<Buffer> {
  if (!existsSync(BUSYBOX_PATH)) throw missingDependency(BUSYBOX_PATH, 'busybox-static');
  const image = await readFile(BUSYBOX_PATH);
  if (!isStaticElf(image)) {
    // The initramfs has no libc: a dynamically linked busybox cannot run there.
    throw missingDependency(`a statically linked ${BUSYBOX_PATH} (this one is dynamically linked)`, 'busybox-static');
  }
  return image;
}

// --- stage 1 -----------------------------------------------------------------

function initramfsModuleFile(path: string): string {
  return `${moduleNameOf(path)}.ko`;
}

/**
 * The initramfs's /init: loads the 9p modules, mounts the host root and the
 * run share, sources the run's setup.sh from the share (mounts that differ
 * per run), then switches into the host root to run stage2.sh. switch_root
 * rather than chroot: the kernel's usermode helpers (module autoload's
 * modprobe) run in the initial root, which must be the host's.
 */
export function stage1Init(moduleFiles: readonly string[]): string {
  const run = `/newroot${GUEST_RUN_DIR}`;
  return `#!/bin/busybox sh
# krsi VM stage 1, generated by src/vm/initramfs.ts.
bb=/bin/busybox
fail() {
\techo "krsi-vm: stage 1: $*"
\t# Let the console send the message before the power goes (stty drains).
\t$bb stty onlcr 2>/dev/null
\t$bb poweroff -f
\t$bb sleep 60
}
$bb mount -t proc proc /proc || fail "cannot mount /proc"
$bb mount -t sysfs sysfs /sys || fail "cannot mount /sys"
$bb mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
for m in ${moduleFiles.join(' ')}; do
\t$bb insmod /modules/$m || fail "insmod $m failed"
done
$bb mount -t 9p -o ${NINEP_MOUNT_OPTIONS},${HOST_ROOT_EXTRA_OPTIONS} ${HOST_ROOT_TAG} /newroot || fail "cannot mount the host root (9p tag ${HOST_ROOT_TAG})"
# The host root is read-only and /run on it is only a mount point: the run
# share needs a writable parent to create its own mount point in.
$bb mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "cannot mount tmpfs on /run"
$bb mkdir -p ${run}
$bb mount -t 9p -o ${NINEP_MOUNT_OPTIONS} ${RUN_SHARE_TAG} ${run} || fail "cannot mount the run share (9p tag ${RUN_SHARE_TAG})"
[ -f ${run}/${SETUP_NAME} ] && [ -f ${run}/${STAGE2_NAME} ] || fail "the run share has no ${SETUP_NAME} or ${STAGE2_NAME}"
$bb mount --move /proc /newroot/proc || fail "cannot move /proc"
$bb mount --move /sys /newroot/sys || fail "cannot move /sys"
$bb mount --move /dev /newroot/dev || fail "cannot move /dev"
. ${run}/${SETUP_NAME}
exec $bb switch_root /newroot /bin/sh ${GUEST_RUN_DIR}/${STAGE2_NAME}
`;
}

// --- the archive -------------------------------------------------------------

// Bump when the layout changes in a way the content hash would not see.
const INITRAMFS_FORMAT = 'krsi-initramfs-1';

export interface InitramfsContents {
  readonly busybox: Uint8Array;
  readonly init: string;
  /** In load order. */
  readonly modules: readonly { readonly file: string; readonly data: Uint8Array }[];
}

export function initramfsEntries(contents: InitramfsContents): CpioEntry[] {
  return [
    { kind: 'directory', path: 'bin' },
    { kind: 'file', path: 'bin/busybox', data: contents.busybox, mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'directory', path: 'dev' },
    // The kernel opens /dev/console for init's stdio before anything mounts devtmpfs.
    { kind: 'characterDevice', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { kind: 'directory', path: 'modules' },
    ...contents.modules.map((m): CpioEntry => ({ kind: 'file', path: `modules/${m.file}`, data: m.data })),
    { kind: 'directory', path: 'newroot' },
    { kind: 'directory', path: 'proc' },
    { kind: 'directory', path: 'sys' },
    { kind: 'file', path: 'init', data: Buffer.from(contents.init, 'utf8'), mode: 0o755 },
  ];
}

/** Builds (or finds in the cache) the initramfs for `kernel`; returns its path. */
export async function prepareInitramfs(kernel: PreparedKernel, progress: Progress): Promise<string> {
  const [depText, builtinText] = await Promise.all([
    readFile(join(kernel.modulesDir, 'modules.dep'), 'utf8'),
    readFile(join(kernel.modulesDir, 'modules.builtin'), 'utf8').catch(() => ''),
  ]);
  const modulePaths = modulesToLoad(parseModulesDep(depText), parseModulesBuiltin(builtinText), ROOT_MODULES);
  const moduleFiles = modulePaths.map(initramfsModuleFile);
  const init = stage1Init(moduleFiles);
  const busybox = await readStaticBusybox();

  // Keyed on the inputs (compressed modules as shipped), so a cache hit costs
  // reading a few MB and no decompression.
  const hash = createHash('sha256').update(INITRAMFS_FORMAT).update('\0').update(init).update('\0').update(busybox);
  const rawModules = await Promise.all(modulePaths.map((p) => readFile(join(kernel.modulesDir, p))));
  modulePaths.forEach((p, i) => {
    hash.update(`\0${p}\0`);
    hash.update(rawModules[i] ?? new Uint8Array(0));
  });
  const dir = join(cacheDir(), 'initramfs');
  const path = join(dir, `${kernel.version}-${hash.digest('hex').slice(0, 16)}.cpio`);
  if (existsSync(path)) return path;

  progress(`building initramfs for Linux ${kernel.version}…`);
  const modules = await Promise.all(
    modulePaths.map(async (p, i) => ({ file: moduleFiles[i] ?? initramfsModuleFile(p), data: await readModuleObject(kernel, p) })),
  );
  const archive = writeCpio(initramfsEntries({ busybox, init, modules }));
  await mkdir(dir, { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, archive);
  await rename(temporary, path);
  // Earlier builds for this kernel (an older init or busybox) are dead weight.
  for (const entry of await readdir(dir)) {
    if (entry.startsWith(`${kernel.version}-`) && entry.endsWith('.cpio') && join(dir, entry) !== path) {
      await rm(join(dir, entry), { force: true });
    }
  }
  return path;
}
