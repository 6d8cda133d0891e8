// cgroup v2 ids to paths: a cgroup's id is the inode number of its directory
// in the cgroup2 file system, so a walk of that tree maps ids to paths. The
// walk is cached and done again on a miss, at most once a second.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where cgroup2 is mounted, from /proc/self/mountinfo; null when it is not. */
export function cgroup2Mount(mountinfo = '/proc/self/mountinfo'): string | null {
  try {
    for (const line of readFileSync(mountinfo, 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (right?.startsWith('cgroup2 ')) return left!.split(' ')[4]!.replace(/\\040/g, ' ');
    }
  } catch {
    // no /proc
  }
  return null;
}

export class CgroupPaths {
  private readonly byId = new Map<string, string>();
  private scannedAt = -Infinity;
  private readonly root: string | null;

  constructor(
    root: string | null = cgroup2Mount(),
    private readonly maxDirs = 100_000,
    private readonly rescanMs = 1000,
  ) {
    this.root = root;
  }

  /** The path of the cgroup (relative to the cgroup2 root, "/" for the root), or undefined. */
  path(id: string): string | undefined {
    const known = this.byId.get(id);
    if (known !== undefined || this.root === null) return known;
    if (Date.now() - this.scannedAt < this.rescanMs) return undefined;
    this.scan();
    return this.byId.get(id);
  }

  scan(): void {
    if (this.root === null) return;
    this.scannedAt = Date.now();
    this.byId.clear();
    const stack: string[] = ['/'];
    let n = 0;
    while (stack.length > 0 && n < this.maxDirs) {
      const rel = stack.pop()!;
      const abs = join(this.root, rel);
      n++;
      try {
        this.byId.set(statSync(abs, { bigint: true }).ino.toString(), rel);
        for (const d of readdirSync(abs, { withFileTypes: true })) if (d.isDirectory()) stack.push(join(rel, d.name));
      } catch {
        // removed meanwhile
      }
    }
  }
}
