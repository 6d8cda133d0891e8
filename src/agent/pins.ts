// Enforcement that outlives the agent. The object's maps and the links of
// its enforcing programs are pinned in bpffs: if the agent dies (kill -9,
// a crash), the kernel keeps denying with the policy in force. A new agent
// adopts the pinned state: its object reuses the pinned maps (the same policy
// generation, lists, counters and rings, with whatever the kernel wrote
// into them meanwhile), attaches its own programs beside the old ones, then
// detaches the old: at every instant at least one program enforces.
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { native, type BpfLink, type BpfObject } from '../bpf/native.js';
import { log } from '../log.js';
import { bpffs, ensureMounted } from '../system/mounts.js';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/krsi';

/** Maps libbpf creates from the object's own sections; never shared between agents. */
const isInternalMap = (name: string): boolean => name.includes('.');

export class PinLayout {
  readonly maps: string;
  readonly links: string;

  constructor(readonly root: string = DEFAULT_PIN_ROOT) {
    this.maps = join(root, 'maps');
    this.links = join(root, 'links');
  }

  mapPath(name: string): string {
    return join(this.maps, name);
  }

  linkPath(program: string): string {
    return join(this.links, program);
  }

  /** Makes sure bpffs is mounted and the directories exist (mode 0700). */
  prepare(): void {
    if (this.root.startsWith(`${bpffs.target}/`) && ensureMounted(bpffs)) log.info({ target: bpffs.target }, 'mounted bpffs');
    for (const dir of [this.root, this.maps, this.links]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  pinnedMaps(): string[] {
    return existsSync(this.maps) ? readdirSync(this.maps) : [];
  }

  pinnedLinks(): string[] {
    return existsSync(this.links) ? readdirSync(this.links) : [];
  }

  /** Whether an earlier agent left pinned state. */
  hasState(): boolean {
    return this.pinnedMaps().length > 0 || this.pinnedLinks().length > 0;
  }
}

export interface ReuseResult {
  reused: string[];
  /** Pinned maps the object could not reuse (another shape: another version of krsi). */
  incompatible: string[];
}

/**
 * Before load: makes the object use the pinned maps. All or nothing: if any
 * pinned map does not fit, none is reused, and the old state is replaced.
 */
export function reusePinnedMaps(object: BpfObject, layout: PinLayout): ReuseResult {
  const pinned = new Set(layout.pinnedMaps());
  const candidates = object.maps().filter((m) => !isInternalMap(m.name) && m.autocreate && pinned.has(m.name));
  const opened = candidates.map((m) => ({ name: m.name, pinned: native.BpfMap.openPinned(layout.mapPath(m.name)) }));
  // The pinned map's size wins (a ring resized by the earlier agent).
  for (const o of opened) {
    const m = object.map(o.name);
    if (m.maxEntries !== o.pinned.maxEntries && m.type === o.pinned.type) m.setMaxEntries(o.pinned.maxEntries);
  }
  try {
    const incompatible = opened
      .filter(({ name, pinned: p }) => {
        const m = object.map(name);
        return p.type !== m.type || p.keySize !== m.keySize || p.valueSize !== m.valueSize;
      })
      .map((o) => o.name);
    if (incompatible.length > 0) return { reused: [], incompatible };
    const reused: string[] = [];
    for (const { name, pinned: p } of opened) {
      try {
        object.map(name).reuse(p);
        reused.push(name);
      } catch (err) {
        log.warn({ map: name, err: (err as Error).message }, 'a pinned map cannot be reused');
        return { reused: [], incompatible: [name] };
      }
    }
    return { reused, incompatible: [] };
  } finally {
    for (const o of opened) o.pinned.close();
  }
}

/** After load: pins every map of the object that is not pinned yet (replacing stale pins). */
export function pinMaps(object: BpfObject, layout: PinLayout, reused: readonly string[]): void {
  const keep = new Set(reused);
  for (const m of object.maps()) {
    // A map left out on this kernel (src/agent/kernel-features.ts) has nothing to pin.
    if (isInternalMap(m.name) || keep.has(m.name) || m.fd < 0) continue;
    const path = layout.mapPath(m.name);
    if (existsSync(path)) {
      const stale = native.BpfMap.openPinned(path);
      stale.unpin();
      stale.close();
    }
    m.pin(path);
  }
}

/** Opens the links an earlier agent pinned, to detach them once ours are attached. */
export function openPinnedLinks(layout: PinLayout): Array<{ program: string; link: BpfLink }> {
  const out: Array<{ program: string; link: BpfLink }> = [];
  for (const program of layout.pinnedLinks()) {
    try {
      out.push({ program, link: native.BpfLink.open(layout.linkPath(program)) });
    } catch (err) {
      log.warn({ program, err: (err as Error).message }, 'a pinned link cannot be opened');
    }
  }
  return out;
}

/** Detaches and unpins an earlier agent's links. */
export function retireLinks(old: ReadonlyArray<{ program: string; link: BpfLink }>): void {
  for (const { link } of old) {
    link.unpin();
    link.close();
  }
}

/** Removes every pin under the layout (a clean stop): nothing stays enforced. */
export function unpinAll(layout: PinLayout): void {
  for (const program of layout.pinnedLinks()) {
    try {
      const link = native.BpfLink.open(layout.linkPath(program));
      link.unpin();
      link.close();
    } catch {
      // already gone
    }
  }
  for (const name of layout.pinnedMaps()) {
    try {
      const map = native.BpfMap.openPinned(layout.mapPath(name));
      map.unpin();
      map.close();
    } catch {
      // already gone
    }
  }
  for (const dir of [layout.links, layout.maps, layout.root]) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty (someone else's pins) or gone
    }
  }
}
