// Dynamic lists, kept on disk so that they survive a restart of the agent.
// Each list has a stable numeric id (its table in the kernel's list maps);
// entries may expire. Every change is written to a temporary file and
// renamed over the old one, so a crash leaves either the old or the new
// state, never half of one.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { InputError } from '../errors.js';
import type { ListDecl, ListType } from '../policy/schema.js';
import { LIST_TYPES } from '../policy/schema.js';
import { canonicalEntry } from './entries.js';

const StoreFileSchema = z.object({
  version: z.literal(1),
  nextId: z.number().int().min(1),
  lists: z.array(
    z.object({
      name: z.string(),
      type: z.enum(LIST_TYPES),
      id: z.number().int().min(1),
      entries: z.record(z.string(), z.object({ expiresAt: z.number().optional() })),
    }),
  ),
});
type StoreFile = z.infer<typeof StoreFileSchema>;

export interface StoredList {
  name: string;
  type: ListType;
  id: number;
  /** entry → expiry (ms since the epoch), undefined for none */
  entries: Map<string, number | undefined>;
}

export interface EntryChange {
  list: StoredList;
  added: string[];
  removed: string[];
  unchanged: string[];
  /** The expiry given to added entries. */
  expiresAt?: number;
}

export class ListStore {
  private readonly lists = new Map<string, StoredList>();
  private nextId = 1;

  private constructor(readonly path: string | null) {}

  /** An in-memory store (tests, `krsi policy test`). */
  static memory(): ListStore {
    return new ListStore(null);
  }

  /** Opens the store at path; a missing file is an empty store, a corrupt one an error (never overwritten). */
  static open(path: string): ListStore {
    const store = new ListStore(path);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw err;
    }
    let parsed: StoreFile;
    try {
      parsed = StoreFileSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new Error(`${path}: the list store is corrupt (${(err as Error).message.split('\n')[0]}); move it aside to start with empty lists`);
    }
    store.nextId = parsed.nextId;
    for (const l of parsed.lists) {
      store.lists.set(l.name, {
        name: l.name,
        type: l.type,
        id: l.id,
        entries: new Map(Object.entries(l.entries).map(([e, v]) => [e, v.expiresAt])),
      });
    }
    return store;
  }

  get(name: string): StoredList | undefined {
    return this.lists.get(name);
  }

  all(): StoredList[] {
    return [...this.lists.values()];
  }

  /**
   * Makes sure a declared list exists with its type; a new list starts with
   * the declaration's entries. Returns whether it was created.
   */
  declare(decl: ListDecl): boolean {
    const seen = this.lists.get(decl.name);
    if (seen) {
      if (seen.type !== decl.type) throw new InputError(`list ${decl.name} exists with type ${seen.type}, not ${decl.type}`);
      return false;
    }
    const entries = new Map<string, number | undefined>();
    for (const e of decl.entries ?? []) entries.set(canonicalEntry(decl.type, e), undefined);
    this.lists.set(decl.name, { name: decl.name, type: decl.type, id: this.nextId++, entries });
    this.save();
    return true;
  }

  private list(name: string): StoredList {
    const l = this.lists.get(name);
    if (!l) throw new InputError(`no list named ${name} (lists are declared in policies)`);
    return l;
  }

  /** Validates and canonicalises entries before anything changes: all or nothing. */
  canonical(name: string, entries: readonly string[]): { list: StoredList; entries: string[] } {
    const list = this.list(name);
    return { list, entries: [...new Set(entries.map((e) => canonicalEntry(list.type, e)))] };
  }

  /**
   * Adds entries; `save: false` leaves writing the file to a later save().
   * `before` sees the change first (to put it in the kernel): if it throws,
   * the store is left as it was.
   */
  add(
    name: string,
    entries: readonly string[],
    ttlSeconds?: number,
    opts: { now?: number; save?: boolean; before?: (change: EntryChange) => void } = {},
  ): EntryChange {
    const now = opts.now ?? Date.now();
    if (ttlSeconds !== undefined && !(ttlSeconds > 0)) throw new InputError('a TTL must be a positive number of seconds');
    const { list, entries: canon } = this.canonical(name, entries);
    const expiresAt = ttlSeconds === undefined ? undefined : now + ttlSeconds * 1000;
    const change: EntryChange = { list, added: [], removed: [], unchanged: [], ...(expiresAt === undefined ? {} : { expiresAt }) };
    for (const e of canon) (list.entries.has(e) ? change.unchanged : change.added).push(e);
    opts.before?.(change);
    // Re-adding refreshes the expiry (or makes the entry permanent).
    for (const e of canon) list.entries.set(e, expiresAt);
    if (opts.save !== false) this.save();
    return change;
  }

  remove(name: string, entries: readonly string[]): EntryChange {
    const { list, entries: canon } = this.canonical(name, entries);
    const change: EntryChange = { list, added: [], removed: [], unchanged: [] };
    for (const e of canon) {
      if (list.entries.delete(e)) change.removed.push(e);
      else change.unchanged.push(e);
    }
    this.save();
    return change;
  }

  /** Drops expired entries; returns them by list. */
  expire(now = Date.now()): Array<{ list: StoredList; entry: string }> {
    const gone: Array<{ list: StoredList; entry: string }> = [];
    for (const list of this.lists.values()) {
      for (const [entry, expiresAt] of list.entries) {
        if (expiresAt !== undefined && expiresAt <= now) {
          list.entries.delete(entry);
          gone.push({ list, entry });
        }
      }
    }
    if (gone.length > 0) this.save();
    return gone;
  }

  /** Membership for the TypeScript evaluator, entries in canonical form. */
  has(name: string, entry: string, now = Date.now()): boolean {
    const list = this.lists.get(name);
    if (!list) return false;
    let canon: string;
    try {
      canon = canonicalEntry(list.type, entry);
    } catch {
      return false;
    }
    if (!list.entries.has(canon)) return false;
    const exp = list.entries.get(canon);
    return exp === undefined || exp > now;
  }

  /** Writes the store to its file (atomically: temporary file, fsync, rename). */
  save(): void {
    if (!this.path) return;
    const file: StoreFile = {
      version: 1,
      nextId: this.nextId,
      lists: this.all().map((l) => ({
        name: l.name,
        type: l.type,
        id: l.id,
        entries: Object.fromEntries([...l.entries].map(([e, exp]) => [e, exp === undefined ? {} : { expiresAt: exp }])),
      })),
    };
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(file, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
