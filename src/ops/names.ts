// User and group names from /etc/passwd and /etc/group, read again when a
// file changes (checked at most every few seconds).
import { readFileSync, statSync } from 'node:fs';

export function parseIdFile(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id) && id >= 0 && !out.has(id)) out.set(id, f[0]);
  }
  return out;
}

class IdFile {
  private names = new Map<number, string>();
  private mtimeMs = -1;
  private checkedAt = -Infinity;

  constructor(
    private readonly path: string,
    private readonly recheckMs: number,
  ) {}

  name(id: number): string | undefined {
    const now = Date.now();
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      try {
        const m = statSync(this.path).mtimeMs;
        if (m !== this.mtimeMs) {
          this.names = parseIdFile(readFileSync(this.path, 'utf8'));
          this.mtimeMs = m;
        }
      } catch {
        this.names = new Map();
        this.mtimeMs = -1;
      }
    }
    return this.names.get(id);
  }
}

export class NameCache {
  private readonly users: IdFile;
  private readonly groups: IdFile;

  constructor(opts: { passwd?: string; group?: string; recheckMs?: number } = {}) {
    this.users = new IdFile(opts.passwd ?? '/etc/passwd', opts.recheckMs ?? 5000);
    this.groups = new IdFile(opts.group ?? '/etc/group', opts.recheckMs ?? 5000);
  }

  user(uid: number): string | undefined {
    return this.users.name(uid);
  }

  group(gid: number): string | undefined {
    return this.groups.name(gid);
  }
}
