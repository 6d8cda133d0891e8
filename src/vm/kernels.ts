// The kernels the VM harness boots: Debian's packaged builds of 5.10
// (bullseye), 6.1 and 6.12 (bookworm) and the newest (sid), fetched with
// apt-get download (never installed) through a private apt configuration
// (src/vm/apt.ts) and unpacked into a cache that the guest later sees
// through the host root it mounts over 9p.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CliError, ExitCode } from '../cli/exit-codes.js';
import { log } from '../log.js';
import { preparePrivateApt, type PrivateApt } from './apt.js';
import { runTool, runToolWithInput } from './host-tools.js';

export const KERNEL_SERIES = ['5.10', '6.1', '6.12', '7.2'] as const;
export type KernelSeries = (typeof KERNEL_SERIES)[number];
export const DEFAULT_KERNEL_SERIES: KernelSeries = '6.12';

/**
 * The package each series boots by default. Pinned so that test runs are
 * reproducible; when the Debian archive drops the name (a newer point release
 * replaced it) the newest package of the same series is used instead.
 */
export const PINNED_KERNEL_PACKAGES: Readonly<Record<KernelSeries, string>> = {
  '5.10': 'linux-image-5.10.0-46-amd64',
  '6.1': 'linux-image-6.1.0-56-amd64',
  '6.12': 'linux-image-6.12.117+deb12-amd64',
  '7.2': 'linux-image-7.2.13+deb14-amd64',
};

export interface PreparedKernel {
  readonly series: KernelSeries;
  readonly packageName: string;
  /** What `uname -r` prints in the guest. */
  readonly version: string;
  readonly vmlinuz: string;
  /**
   * What qemu boots: the uncompressed ELF vmlinux when it could be extracted
   * (qemu starts it through its PVH entry point), else vmlinuz.
   */
  readonly bootImage: string;
  /** The unpacked lib/modules/<version> directory, with modules.dep. */
  readonly modulesDir: string;
  /**
   * Kernel command-line words the boot needs: `lsm=…,bpf` where the
   * kernel's default LSM list (CONFIG_LSM) leaves BPF LSM out (5.10).
   */
  readonly cmdline: readonly string[];
}

export type Progress = (line: string) => void;

export function isKernelSeries(value: string): value is KernelSeries {
  return (KERNEL_SERIES as readonly string[]).includes(value);
}

export function parseKernelSeries(value: string): KernelSeries {
  if (!isKernelSeries(value)) {
    throw new CliError(`unknown kernel series "${value}"; choose one of ${KERNEL_SERIES.join(', ')}`, ExitCode.usage);
  }
  return value;
}

/** Where fetched kernels and built initramfs images are kept between runs. */
export function cacheDir(): string {
  const fromEnv = process.env['KRSI_CACHE_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  if (process.getuid?.() === 0) return '/var/cache/krsi';
  // /var/cache is not writable for other users; their own cache dir is.
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'krsi');
}

export function kernelsCacheDir(): string {
  return join(cacheDir(), 'kernels');
}

// --- choosing a package name -------------------------------------------------

// Flavours in order of preference. The plain generic build has every driver
// the VM needs; cloud and rt builds are fall-backs only. -dbg packages hold no
// bootable image, and -signed-template is a build helper.
const FLAVOUR_PREFERENCE = ['amd64', 'amd64-unsigned', 'cloud-amd64', 'cloud-amd64-unsigned', 'rt-amd64', 'rt-amd64-unsigned'];

export interface KernelPackageChoice {
  readonly packageName: string;
  readonly flavour: string;
}

/**
 * Compares version strings so that embedded numbers compare as numbers:
 * 6.1.0-9 < 6.1.0-56, 6.12.57+deb13 < 6.12.117+deb12.
 */
export function compareVersionsNaturally(a: string, b: string): number {
  const pieces = (s: string): string[] => s.match(/\d+|\D+/g) ?? [];
  const pa = pieces(a);
  const pb = pieces(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xNum = /^\d/.test(x);
    const yNum = /^\d/.test(y);
    if (xNum && yNum) {
      const diff = Number(x) - Number(y);
      if (diff !== 0) return diff;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/**
 * Picks the newest image package of `series` among `packageNames` (the output
 * of `apt-cache pkgnames linux-image-<series>`), preferring the generic flavour.
 */
export function chooseKernelPackage(series: KernelSeries, packageNames: readonly string[]): KernelPackageChoice | undefined {
  const escaped = series.replace(/\./g, '\\.');
  // linux-image-<series>.<digits…>-<flavour>: the version must continue with a
  // dot so that 6.1 never matches 6.12, and metapackages (linux-image-6.12-amd64)
  // are skipped.
  const pattern = new RegExp(`^linux-image-(${escaped}\\.\\d[^\\s]*?)-(${FLAVOUR_PREFERENCE.map((f) => f.replace(/-/g, '\\-')).join('|')})$`);
  const candidates: { name: string; version: string; flavour: string }[] = [];
  for (const name of packageNames) {
    const match = pattern.exec(name.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) {
      candidates.push({ name: name.trim(), version: match[1], flavour: match[2] });
    }
  }
  for (const flavour of FLAVOUR_PREFERENCE) {
    const ofFlavour = candidates.filter((c) => c.flavour === flavour);
    if (ofFlavour.length === 0) continue;
    ofFlavour.sort((x, y) => compareVersionsNaturally(y.version, x.version));
    const best = ofFlavour[0];
    if (best !== undefined) return { packageName: best.name, flavour };
  }
  return undefined;
}

/** The Size field (bytes) of an `apt-cache show` stanza, when present. */
export function packageSizeFromAptShow(text: string): number | undefined {
  const match = /^Size:\s*(\d+)\s*$/m.exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

let privateApt: Promise<PrivateApt> | undefined;
let listsFetched = false;

/** The environment that points apt at the private configuration (src/vm/apt.ts). */
async function aptEnv(): Promise<NodeJS.ProcessEnv> {
  privateApt ??= preparePrivateApt(cacheDir());
  const apt = await privateApt;
  return { ...process.env, APT_CONFIG: apt.config };
}

/** apt-get update of the private lists: once per run, and only when a name is missing. */
async function refreshLists(progress: Progress): Promise<boolean> {
  if (listsFetched) return false;
  listsFetched = true;
  progress('updating the package lists of the kernel suites…');
  const result = await runTool('apt-get', ['update', '-q'], { env: await aptEnv(), allowFailure: true });
  if (result.code !== 0) log.warn({ stderr: result.stderr.trim().split('\n').slice(-3).join('\n') }, 'apt-get update of the kernel suites failed');
  return true;
}

async function aptShow(packageName: string): Promise<string | undefined> {
  const result = await runTool('apt-cache', ['show', '--no-all-versions', packageName], { allowFailure: true, env: await aptEnv() });
  const text = result.stdout.toString('utf8');
  // Unknown and purely virtual names both leave stdout without a Package: line.
  return result.code === 0 && /^Package:/m.test(text) ? text : undefined;
}

async function resolvePackage(series: KernelSeries, progress: Progress): Promise<{ packageName: string; aptShowText: string }> {
  const pinned = PINNED_KERNEL_PACKAGES[series];
  let pinnedShow = await aptShow(pinned);
  if (pinnedShow === undefined && (await refreshLists(progress))) pinnedShow = await aptShow(pinned);
  if (pinnedShow !== undefined) return { packageName: pinned, aptShowText: pinnedShow };

  const names = (await runTool('apt-cache', ['pkgnames', `linux-image-${series}`], { env: await aptEnv() })).stdout.toString('utf8').split('\n');
  const choice = chooseKernelPackage(series, names);
  const chosenShow = choice === undefined ? undefined : await aptShow(choice.packageName);
  if (choice === undefined || chosenShow === undefined) {
    throw new CliError(
      `no Debian kernel package for Linux ${series} is known to apt (wanted ${pinned}, or any linux-image-${series}.*-amd64); ` +
        `check the Debian sources in ${join(cacheDir(), 'apt')} (derived from the host's) and run \`APT_CONFIG=${join(cacheDir(), 'apt', 'apt.conf')} apt-get update\``,
      ExitCode.missingDependency,
    );
  }
  log.warn(
    { series, pinned, chosen: choice.packageName, flavour: choice.flavour },
    `${pinned} is no longer known to apt; using ${choice.packageName} for Linux ${series}` +
      (choice.flavour === 'amd64' ? '' : ` (flavour ${choice.flavour}: no generic amd64 build is available)`),
  );
  return { packageName: choice.packageName, aptShowText: chosenShow };
}

/**
 * The packages that hold the kernel: the image package itself and, since
 * Debian split it (7.x), the linux-binary-, linux-modules- and linux-base-
 * packages of the same kernel that it depends on.
 */
export function kernelPackageSet(packageName: string, aptShowText: string): string[] {
  const kernel = /^linux-image-(.+)$/.exec(packageName)?.[1];
  const depends = /^Depends:\s*(.*)$/m.exec(aptShowText)?.[1] ?? '';
  const parts = depends
    .split(/[,|]/)
    .map((d) => d.trim().split(/\s/)[0] ?? '')
    .filter((d) => kernel !== undefined && /^linux-(binary|modules|base)-/.test(d) && d.endsWith(`-${kernel}`));
  return [packageName, ...new Set(parts)];
}

/**
 * The `lsm=` word to boot with when the kernel's default LSM list leaves
 * out bpf (Debian 11's 5.10): its CONFIG_LSM with bpf appended. None when
 * bpf is there already or the config says nothing.
 */
export function lsmBootWords(config: string): string[] {
  const lsm = /^CONFIG_LSM="([^"]*)"$/m.exec(config)?.[1];
  if (lsm === undefined || !/^CONFIG_BPF_LSM=y$/m.test(config)) return [];
  const list = lsm.split(',').filter((l) => l !== '');
  return list.includes('bpf') ? [] : [`lsm=${[...list, 'bpf'].join(',')}`];
}

// --- the unpacked tree ------------------------------------------------------

// Written last, inside the tree, before the tree is renamed into place: a tree
// with this file is complete.
const READY_MARKER = '.krsi-kernel.json';
const MARKER_FORMAT = 1;

interface ReadyMarker {
  readonly format: number;
  readonly series: KernelSeries;
  readonly packageName: string;
  readonly version: string;
  /** Relative to the tree. */
  readonly vmlinuz: string;
  readonly modulesDir: string;
}

async function readReadyKernel(tree: string): Promise<PreparedKernel | undefined> {
  let marker: ReadyMarker;
  try {
    marker = JSON.parse(await readFile(join(tree, READY_MARKER), 'utf8')) as ReadyMarker;
  } catch {
    return undefined;
  }
  if (marker.format !== MARKER_FORMAT) return undefined;
  const vmlinuz = join(tree, marker.vmlinuz);
  return {
    series: marker.series,
    packageName: marker.packageName,
    version: marker.version,
    vmlinuz,
    bootImage: await prepareBootImage(tree, marker.version, vmlinuz),
    modulesDir: join(tree, marker.modulesDir),
    cmdline: lsmBootWords(await readKernelConfig(tree, marker.version, marker.modulesDir)),
  };
}

// --- a faster boot -------------------------------------------------------------

/**
 * The kernel's build configuration: boot/config-<version> in Debian's
 * packages up to 6.x, <modules dir>/config since the image package was
 * split (7.x). Empty when neither is there.
 */
async function readKernelConfig(tree: string, version: string, modulesDir = `usr/lib/modules/${version}`): Promise<string> {
  for (const path of [join(tree, 'boot', `config-${version}`), join(tree, modulesDir, 'config'), join(tree, 'lib', 'modules', version, 'config')]) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      // try the next
    }
  }
  return '';
}

/**
 * Under TCG the kernel's own decompressor is slow: 6.1's xz image takes ~3 s
 * to reach its first message, its ELF vmlinux ~0.6 s. Debian builds with
 * CONFIG_PVH, so qemu can boot the vmlinux directly. Extracted once into the
 * cached tree; any failure just means booting the vmlinuz as shipped.
 */
async function prepareBootImage(tree: string, version: string, vmlinuz: string): Promise<string> {
  const vmlinux = join(tree, 'boot', `vmlinux-${version}`);
  if (existsSync(vmlinux)) return vmlinux;
  try {
    await mkdir(join(tree, 'boot'), { recursive: true });
    const config = await readKernelConfig(tree, version);
    if (!/^CONFIG_PVH=y$/m.test(config)) return vmlinuz;
    const image = await extractVmlinux(await readFile(vmlinuz));
    if (image === undefined) return vmlinuz;
    const temporary = `${vmlinux}.${process.pid}.tmp`;
    await writeFile(temporary, image);
    await rename(temporary, vmlinux);
    return vmlinux;
  } catch (err) {
    log.debug({ err, vmlinuz }, 'could not extract vmlinux; booting the compressed image');
    return vmlinuz;
  }
}

/**
 * The ELF kernel inside a bzImage: the boot protocol header (2.08+) says
 * where the compressed payload is; the build appends its uncompressed size
 * as 4 little-endian bytes.
 */
export async function extractVmlinux(bzImage: Buffer): Promise<Buffer | undefined> {
  if (bzImage.length < 0x250 || bzImage.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  if (bzImage.readUInt16LE(0x206) < 0x208) return undefined;
  const setupSectors = bzImage[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + bzImage.readUInt32LE(0x248);
  const length = bzImage.readUInt32LE(0x24c);
  if (length < 8 || start + length > bzImage.length) return undefined;
  const payload = bzImage.subarray(start, start + length - 4);
  const expectedSize = bzImage.readUInt32LE(start + length - 4);
  let image: Buffer;
  if (payload.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    image = (await runToolWithInput('xz', ['-dc'], payload)).stdout;
  } else if (payload.readUInt32LE(0) === 0xfd2fb528) {
    image = (await runToolWithInput('zstd', ['-dcq'], payload)).stdout;
  } else if (payload[0] === 0x1f && payload[1] === 0x8b) {
    image = gunzipSync(payload);
  } else {
    return undefined;
  }
  if (image.length !== expectedSize || image.toString('latin1', 0, 4) !== '\x7fELF') return undefined;
  return image;
}

/** Finds lib/modules/<version> (bookworm packages) or usr/lib/modules/<version> (merged-usr packages). */
async function findModulesDir(tree: string): Promise<{ relative: string; version: string }> {
  for (const parent of ['lib/modules', 'usr/lib/modules']) {
    let entries: string[];
    try {
      entries = await readdir(join(tree, parent));
    } catch {
      continue;
    }
    const version = entries.find((e) => existsSync(join(tree, 'boot', `vmlinuz-${e}`))) ?? entries[0];
    if (version !== undefined) return { relative: `${parent}/${version}`, version };
  }
  throw new CliError(`the kernel package unpacked into ${tree} has no lib/modules/<version> directory`);
}

// Partial trees of a killed run; old enough that no live run still owns them.
async function removeStalePartials(kernelsDir: string): Promise<void> {
  const hour = 60 * 60 * 1000;
  for (const entry of await readdir(kernelsDir)) {
    if (!entry.startsWith('.partial-')) continue;
    const path = join(kernelsDir, entry);
    try {
      if (Date.now() - (await stat(path)).mtimeMs > hour) await rm(path, { recursive: true, force: true });
    } catch {
      // another run removed it first
    }
  }
}

/**
 * Makes sure the kernel of `series` is fetched and unpacked, and returns it.
 * Instant when the cache already has it. Two concurrent calls may both fetch,
 * but each unpacks into its own temporary directory and only one rename wins.
 */
export async function prepareKernel(series: KernelSeries, progress: Progress): Promise<PreparedKernel> {
  const kernelsDir = kernelsCacheDir();
  const pinnedReady = await readReadyKernel(join(kernelsDir, PINNED_KERNEL_PACKAGES[series]));
  if (pinnedReady !== undefined) return pinnedReady;

  const { packageName, aptShowText } = await resolvePackage(series, progress);
  const finalTree = join(kernelsDir, packageName);
  const alreadyReady = await readReadyKernel(finalTree);
  if (alreadyReady !== undefined) return alreadyReady;

  try {
    await mkdir(kernelsDir, { recursive: true });
  } catch (err) {
    throw new CliError(
      `cannot create the kernel cache ${kernelsDir} (${err instanceof Error ? err.message : String(err)}); ` +
        'set KRSI_CACHE_DIR to a writable directory',
    );
  }
  await removeStalePartials(kernelsDir);
  const partial = join(kernelsDir, `.partial-${packageName}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(partial);
  try {
    const size = packageSizeFromAptShow(aptShowText);
    const packages = kernelPackageSet(packageName, aptShowText);
    progress(`fetching ${packages.join(', ')}${size === undefined || packages.length > 1 ? '' : ` (${Math.round(size / 1e6)} MB)`}…`);
    // As root, apt drops to the _apt user for downloads, which cannot write
    // into our directory; downloading as root is what happens anyway then.
    const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
    await runTool('apt-get', ['download', '-q', ...sandbox, ...packages], { cwd: partial, env: await aptEnv() });
    const debs = (await readdir(partial)).filter((f) => f.endsWith('.deb'));
    if (debs.length < packages.length) throw new CliError(`apt-get download ${packages.join(' ')} produced ${debs.length} .deb files`);

    progress(`unpacking ${packages.join(', ')}…`);
    const tree = join(partial, 'tree');
    for (const deb of debs) {
      await runTool('dpkg-deb', ['-x', join(partial, deb), tree]);
      await rm(join(partial, deb));
    }

    const modules = await findModulesDir(tree);
    if (modules.relative.startsWith('usr/') && !existsSync(join(tree, 'lib'))) {
      // depmod -b BASE looks in BASE/lib/modules on bookworm's kmod.
      await symlink('usr/lib', join(tree, 'lib'));
    }
    await runTool('depmod', ['-b', tree, modules.version]);
    // boot/vmlinuz-<version>, or vmlinuz in the modules dir (7.x's split packages).
    const vmlinuz = [`boot/vmlinuz-${modules.version}`, `${modules.relative}/vmlinuz`].find((p) => existsSync(join(tree, p))) ?? `boot/vmlinuz-${modules.version}`;
    if (!existsSync(join(tree, vmlinuz))) throw new CliError(`${packageName} has no ${vmlinuz}`);

    const marker: ReadyMarker = {
      format: MARKER_FORMAT,
      series,
      packageName,
      version: modules.version,
      vmlinuz,
      modulesDir: modules.relative,
    };
    await writeFile(join(tree, READY_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
    await moveIntoPlace(tree, finalTree);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  const ready = await readReadyKernel(finalTree);
  if (ready === undefined) throw new CliError(`the kernel cache ${finalTree} is incomplete after unpacking`);
  return ready;
}

async function moveIntoPlace(tree: string, finalTree: string): Promise<void> {
  try {
    await rename(tree, finalTree);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
  }
  // Someone else's tree is there: a concurrent run that finished first (fine,
  // keep theirs) or a damaged tree without the marker (replace it).
  if ((await readReadyKernel(finalTree)) !== undefined) return;
  const damaged = `${finalTree}.damaged-${process.pid}`;
  await rename(finalTree, damaged);
  await rm(damaged, { recursive: true, force: true });
  await rename(tree, finalTree);
}

/**
 * The bytes of a module object named as in modules.dep (relative to the
 * modules dir), decompressed: busybox insmod takes plain ELF only.
 */
export async function readModuleObject(kernel: PreparedKernel, relativePath: string): Promise<Buffer> {
  const path = join(kernel.modulesDir, relativePath);
  if (relativePath.endsWith('.ko')) return readFile(path);
  if (relativePath.endsWith('.ko.gz')) return gunzipSync(await readFile(path));
  if (relativePath.endsWith('.ko.xz')) return (await runTool('xz', ['-dc', path])).stdout;
  if (relativePath.endsWith('.ko.zst')) return (await runTool('zstd', ['-dcq', path])).stdout;
  throw new CliError(`unsupported module file ${path}`);
}
