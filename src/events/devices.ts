// Device numbers in their two encodings: the kernel's dev_t (what BPF reads
// from a superblock, MAJOR << 20 | MINOR) and the userspace st_dev of stat(2)
// (glibc's makedev encoding).

export interface DeviceNumber {
  major: number;
  minor: number;
}

export function fromKernelDev(dev: number): DeviceNumber {
  return { major: dev >>> 20, minor: dev & 0xfffff };
}

export function toKernelDev({ major, minor }: DeviceNumber): number {
  if (major > 0xfff || minor > 0xfffff) throw new RangeError(`device ${major}:${minor} does not fit a kernel dev_t`);
  return ((major << 20) | minor) >>> 0;
}

/** Splits a stat(2) st_dev as glibc's major()/minor() do. */
export function fromStatDev(stDev: bigint): DeviceNumber {
  const major = ((stDev >> 8n) & 0xfffn) | ((stDev >> 32n) & ~0xfffn);
  const minor = (stDev & 0xffn) | ((stDev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

export function formatDevice({ major, minor }: DeviceNumber): string {
  return `${major}:${minor}`;
}
