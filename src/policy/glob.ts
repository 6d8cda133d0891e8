// Path globs compiled to one deterministic automaton that a BPF program walks
// in the kernel. The kernel cannot run a regex engine or backtrack, but it can
// follow one table entry per byte: so all globs of one table (one hook's one
// selector dimension) become a single DFA whose accept masks say which rules
// (bits 0..63) match the whole path.
//
// Glob syntax. Matching is on bytes: the glob is UTF-8 encoded and compared
// with the path's bytes, anchored at both ends.
//   *       any run of bytes except '/', possibly empty.
//   **      any run of bytes including '/', possibly empty. A run of three or
//           more '*' is the same as '**'.
//   /**/    as above, and also a single '/': '/a/**/b' matches '/a/b' and
//           '/a/x/y/b'. (Written out: the '**/' becomes "(anything, then '/')
//           or nothing" when a literal '/' is right before the '**'.)
//   /**     at the end matches everything below: '/a/**' matches '/a/' and
//           '/a/x/y', not '/a'.
//   ?       exactly one byte except '/'. A multi-byte UTF-8 character is
//           several bytes, so it needs one '?' per byte (or a '*').
//   [abc] [a-z] [!abc] [^abc]
//           one byte from (or not from) the set. A ']' first in the set (after
//           any '!' or '^') is literal, '-' first or last is literal, and '\'
//           escapes inside a set too. A set never matches '/' (a range that
//           spans it leaves it out; a negated set excludes it) and a literal
//           '/' inside a set is an error. Sets hold ASCII only: a set matches
//           one byte, and a non-ASCII character is several.
//   \c      the character c, literally (a '\/' is just '/').
//   other   the character's UTF-8 bytes, literally.
// Errors are GlobError with the offset (a JS string index, i.e. UTF-16 code
// units) of the offending character: an empty glob, a NUL, a lone surrogate,
// a glob longer than 255 UTF-8 bytes, an unterminated '[', an empty set ('[]'
// or '[!]' with no ']' after it to close it), a literal '/' or a non-ASCII
// character in a set, a reversed range, a trailing '\'.
//
// Construction: each glob becomes a small NFA (one state per byte position,
// a self-loop for '*', an epsilon detour for '/**/'); the union is made
// deterministic by subset construction over byte classes (bytes that no glob
// tells apart share a column, so the work scales with the ~dozens of classes,
// not 256), then minimised with Hopcroft's algorithm starting from a
// partition by accept mask, and renumbered so the dead state is 0. NUL never
// appears in a path the kernel walks; every glob sends it to the dead state.

const MAX_GLOB_BYTES = 255;
const MAX_MASK = (1n << 64n) - 1n;
const SLASH = 0x2f;
const ALPHABET = 256;
/** u16 next indices: no shared array map can hold more states. */
const MAX_ARRAY_STATES = 65536;
const DEFAULT_MAX_STATES = 1024;
/**
 * Subset construction may produce states that minimisation will merge, so it
 * gets headroom above maxStates; the bound only stops a glob set that blows
 * up from taking seconds and gigabytes before it is refused.
 */
const CONSTRUCTION_HEADROOM = 4;
const MIN_CONSTRUCTION_LIMIT = 4096;

export class GlobError extends Error {
  readonly glob: string;
  /** Index into `glob` (UTF-16 code units) of the offending character. */
  readonly offset: number;

  constructor(glob: string, offset: number, reason: string) {
    super(`${reason} at offset ${offset} in glob ${JSON.stringify(glob)}`);
    this.name = 'GlobError';
    this.glob = glob;
    this.offset = offset;
  }
}

export class DfaTooLargeError extends Error {
  /** States reached when construction gave up (more than limit). */
  readonly states: number;
  readonly limit: number;

  constructor(states: number, limit: number, stage: 'construction' | 'minimised') {
    super(
      stage === 'minimised'
        ? `the globs need a DFA of ${states} states, more than the limit of ${limit}`
        : `the globs' DFA passed ${states - 1} states before minimisation, far past the limit of ${limit}; simplify or split the globs`,
    );
    this.name = 'DfaTooLargeError';
    this.states = states;
    this.limit = limit;
  }
}

export interface GlobInput {
  glob: string;
  /** Rules (bits 0..63) this glob stands for; several globs may share bits. */
  mask: bigint;
}

export interface Dfa {
  /** states[0] is the dead state: every transition leads back to 0 and it accepts nothing. */
  states: DfaState[];
  /** Index of the start state; 0 only when no glob can match anything. */
  start: number;
}

export interface DfaState {
  /** Next state index per byte value (length 256). */
  next: Uint16Array;
  /** u64 mask of the rules whose glob accepts a path that ends here. */
  accept: bigint;
}

export interface CompileOptions {
  /** Refuse a DFA with more states than this (dead state included). Default 1024. */
  maxStates?: number;
}

// ---------------------------------------------------------------------------
// Parsing

/** 256 flags, one per byte value. */
type ByteSet = Uint8Array;

/** What one glob is made of, in order. */
type Element =
  | { kind: 'one'; set: ByteSet } // exactly one byte from set
  | { kind: 'many'; set: ByteSet } // any run of bytes from set
  | { kind: 'dirs' }; // "(any bytes, then '/')" or nothing: the '**/' of '/**/'

type Token = { kind: 'one'; set: ByteSet; slash: boolean } | { kind: 'star' } | { kind: 'globstar' };

function byteSet(predicate: (byte: number) => boolean): ByteSet {
  const set = new Uint8Array(ALPHABET);
  for (let b = 0; b < ALPHABET; b++) set[b] = predicate(b) ? 1 : 0;
  return set;
}

// NUL is in none of them: a path never holds one, so it always leads to dead.
const ANY_BYTE = byteSet((b) => b !== 0);
const ANY_BUT_SLASH = byteSet((b) => b !== 0 && b !== SLASH);
/** One shared set per literal byte, so building the NFA rarely compares set contents. */
const LITERAL = Array.from({ length: ALPHABET }, (_, byte) => byteSet((b) => b === byte));
const SLASH_ONLY = LITERAL[SLASH] ?? byteSet((b) => b === SLASH);

function utf8(codePoint: number): number[] {
  if (codePoint < 0x80) return [codePoint];
  if (codePoint < 0x800) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f)];
  if (codePoint < 0x10000) {
    return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
  }
  return [
    0xf0 | (codePoint >> 18),
    0x80 | ((codePoint >> 12) & 0x3f),
    0x80 | ((codePoint >> 6) & 0x3f),
    0x80 | (codePoint & 0x3f),
  ];
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * Rejects what no syntax can rescue (emptiness, NUL, lone surrogates,
 * length) before either parser looks at the glob, so both report the same.
 */
function checkGlobText(glob: string): void {
  if (glob.length === 0) throw new GlobError(glob, 0, 'empty glob');
  let bytes = 0;
  for (let i = 0; i < glob.length; ) {
    const unit = glob.charCodeAt(i);
    let width = 1;
    if (unit === 0) throw new GlobError(glob, i, 'NUL byte');
    if (isHighSurrogate(unit) && isLowSurrogate(glob.charCodeAt(i + 1))) width = 2;
    else if (isHighSurrogate(unit) || isLowSurrogate(unit)) throw new GlobError(glob, i, 'lone UTF-16 surrogate');
    bytes += utf8(glob.codePointAt(i) ?? 0).length;
    if (bytes > MAX_GLOB_BYTES) throw new GlobError(glob, i, `glob longer than ${MAX_GLOB_BYTES} bytes`);
    i += width;
  }
}

/** The code point at `index` and how many UTF-16 units it takes (text already checked). */
function codePointAt(glob: string, index: number): { codePoint: number; width: number } {
  const codePoint = glob.codePointAt(index) ?? 0;
  return { codePoint, width: codePoint > 0xffff ? 2 : 1 };
}

interface SetMember {
  byte: number;
  end: number;
}

/** One (possibly escaped) member of a bracket set, as a byte. */
function readSetMember(glob: string, index: number): SetMember {
  let at = index;
  if (glob[at] === '\\') {
    at++;
    if (at >= glob.length) throw new GlobError(glob, index, "trailing '\\'");
  }
  const { codePoint, width } = codePointAt(glob, at);
  if (codePoint === SLASH) throw new GlobError(glob, at, "'/' in a set (a set never matches '/')");
  if (codePoint > 0x7f) throw new GlobError(glob, at, 'non-ASCII character in a set (a set matches one byte)');
  return { byte: codePoint, end: at + width };
}

/** Parses the set opening at `open`; returns its bytes and the index after its ']'. */
function parseSet(glob: string, open: number): { set: ByteSet; end: number } {
  let i = open + 1;
  let negated = false;
  if (glob[i] === '!' || glob[i] === '^') {
    negated = true;
    i++;
  }
  // ']' first is a member; when nothing could close the set after it, the
  // user more likely meant an empty set than a literal ']'.
  if (glob[i] === ']' && glob.indexOf(']', i + 1) < 0) throw new GlobError(glob, open, 'empty set');
  const members = new Uint8Array(ALPHABET);
  for (let first = true; ; first = false) {
    if (i >= glob.length) throw new GlobError(glob, open, "unterminated '['");
    if (glob[i] === ']' && !first) {
      i++;
      break;
    }
    const low = readSetMember(glob, i);
    if (glob[low.end] === '-' && low.end + 1 < glob.length && glob[low.end + 1] !== ']') {
      const high = readSetMember(glob, low.end + 1);
      if (high.byte < low.byte) throw new GlobError(glob, i, 'reversed range');
      members.fill(1, low.byte, high.byte + 1);
      i = high.end;
    } else {
      members[low.byte] = 1;
      i = low.end;
    }
  }
  const set = byteSet((b) => b !== 0 && b !== SLASH && (members[b] === 1) !== negated);
  if (!set.includes(1)) throw new GlobError(glob, open, 'empty set');
  return { set, end: i };
}

function tokenize(glob: string): Token[] {
  const tokens: Token[] = [];
  const literal = (codePoint: number): void => {
    for (const byte of utf8(codePoint)) {
      tokens.push({ kind: 'one', set: LITERAL[byte] ?? byteSet((b) => b === byte), slash: byte === SLASH });
    }
  };
  for (let i = 0; i < glob.length; ) {
    const c = glob[i];
    if (c === '*') {
      let end = i;
      while (glob[end] === '*') end++;
      tokens.push({ kind: end - i >= 2 ? 'globstar' : 'star' });
      i = end;
    } else if (c === '?') {
      tokens.push({ kind: 'one', set: ANY_BUT_SLASH, slash: false });
      i++;
    } else if (c === '[') {
      const { set, end } = parseSet(glob, i);
      tokens.push({ kind: 'one', set, slash: false });
      i = end;
    } else if (c === '\\') {
      if (i + 1 >= glob.length) throw new GlobError(glob, i, "trailing '\\'");
      const { codePoint, width } = codePointAt(glob, i + 1);
      literal(codePoint);
      i += 1 + width;
    } else {
      const { codePoint, width } = codePointAt(glob, i);
      literal(codePoint);
      i += width;
    }
  }
  return tokens;
}

function parseGlob(glob: string): Element[] {
  checkGlobText(glob);
  const tokens = tokenize(glob);
  const elements: Element[] = [];
  const isSlash = (token: Token | undefined): boolean => token?.kind === 'one' && token.slash;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token === undefined) break;
    if (token.kind === 'one') {
      elements.push({ kind: 'one', set: token.set });
    } else if (token.kind === 'star') {
      elements.push({ kind: 'many', set: ANY_BUT_SLASH });
    } else if (isSlash(tokens[i - 1]) && isSlash(tokens[i + 1])) {
      // '/**/': the '**' and the '/' after it may also match nothing.
      elements.push({ kind: 'dirs' });
      i++;
    } else {
      elements.push({ kind: 'many', set: ANY_BYTE });
    }
  }
  return elements;
}

// ---------------------------------------------------------------------------
// NFA

class Nfa {
  /** Distinct byte sets used on edges; edges refer to them by index. */
  readonly sets: ByteSet[] = [];
  private readonly setIdsByObject = new Map<ByteSet, number>();
  private readonly setIdsByContent = new Map<string, number>();
  readonly edgeSet: number[][] = [];
  readonly edgeTo: number[][] = [];
  readonly epsilon: number[][] = [];
  readonly accept: bigint[] = [];
  readonly starts: number[] = [];

  addState(): number {
    this.edgeSet.push([]);
    this.edgeTo.push([]);
    this.epsilon.push([]);
    this.accept.push(0n);
    return this.accept.length - 1;
  }

  private setId(set: ByteSet): number {
    let id = this.setIdsByObject.get(set);
    if (id !== undefined) return id;
    const key = Buffer.from(set.buffer, set.byteOffset, set.byteLength).toString('latin1');
    id = this.setIdsByContent.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.sets.push(set);
      this.setIdsByContent.set(key, id);
    }
    this.setIdsByObject.set(set, id);
    return id;
  }

  private addEdge(from: number, set: ByteSet, to: number): void {
    this.edgeSet[from]?.push(this.setId(set));
    this.edgeTo[from]?.push(to);
  }

  addGlob(elements: readonly Element[], mask: bigint): void {
    let current = this.addState();
    this.starts.push(current);
    for (const element of elements) {
      if (element.kind === 'one') {
        const next = this.addState();
        this.addEdge(current, element.set, next);
        current = next;
      } else if (element.kind === 'many') {
        // `current` was entered only by what came before and has no way out
        // yet, so looping on it is exactly "then any run from set".
        this.addEdge(current, element.set, current);
      } else {
        const middle = this.addState();
        const after = this.addState();
        this.epsilon[current]?.push(middle, after);
        this.addEdge(middle, ANY_BYTE, middle);
        this.addEdge(middle, SLASH_ONLY, after);
        current = after;
      }
    }
    this.accept[current] = (this.accept[current] ?? 0n) | mask;
  }
}

// ---------------------------------------------------------------------------
// Byte classes: bytes that every edge set treats alike share one DFA column.

interface ByteClasses {
  count: number;
  classOf: Int32Array;
  /** Per NFA set id: the classes it contains. */
  classesOfSet: number[][];
  /** setHasClass[set * count + class] is 1 when the set contains the class. */
  setHasClass: Uint8Array;
}

function byteClasses(sets: readonly ByteSet[]): ByteClasses {
  let classOf = new Int32Array(ALPHABET);
  let count = 1;
  for (const set of sets) {
    const renumber = new Map<number, number>();
    const refined = new Int32Array(ALPHABET);
    for (let b = 0; b < ALPHABET; b++) {
      const key = (classOf[b] ?? 0) * 2 + (set[b] ?? 0);
      let id = renumber.get(key);
      if (id === undefined) {
        id = renumber.size;
        renumber.set(key, id);
      }
      refined[b] = id;
    }
    classOf = refined;
    count = renumber.size;
  }
  const setHasClass = new Uint8Array(sets.length * count);
  const classesOfSet = sets.map((set, id) => {
    const classes: number[] = [];
    for (let b = 0; b < ALPHABET; b++) {
      const c = classOf[b] ?? 0;
      if (set[b] === 1 && setHasClass[id * count + c] === 0) {
        setHasClass[id * count + c] = 1;
        classes.push(c);
      }
    }
    return classes.sort((x, y) => x - y);
  });
  return { count, classOf, classesOfSet, setHasClass };
}

// ---------------------------------------------------------------------------
// Subset construction

interface ClassDfa {
  /** Number of states; state 0 is the empty NFA set (dead). */
  size: number;
  start: number;
  /** trans[state * classes + class] */
  trans: Int32Array;
  accept: bigint[];
}

/** A well-mixed 32-bit value per NFA state (murmur3's finaliser). */
function stateHash(state: number): number {
  let h = Math.imul(state ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/** A set of NFA states in no particular order, with an order-independent hash. */
interface Subset {
  states: readonly number[];
  hash: number;
}

function determinise(nfa: Nfa, classes: ByteClasses, limit: number, maxStates: number): ClassDfa {
  const k = classes.count;
  const nfaSize = nfa.accept.length;
  const useful = nfa.accept.map((mask, s) => mask !== 0n || (nfa.edgeTo[s]?.length ?? 0) > 0);
  const hashOf = Int32Array.from({ length: nfaSize }, (_, s) => stateHash(s));
  const seen = new Int32Array(nfaSize);
  let stamp = 0;

  // Epsilon closure of every single state, keeping only states with edges or
  // an accept mask (the others cannot change what a subset does).
  const closureOf: Subset[] = [];
  for (let s = 0; s < nfaSize; s++) {
    stamp++;
    const states: number[] = [];
    let hash = 0;
    const stack = [s];
    while (stack.length > 0) {
      const t = stack.pop() ?? 0;
      if (seen[t] === stamp) continue;
      seen[t] = stamp;
      if (useful[t] === true) {
        states.push(t);
        hash = (hash + (hashOf[t] ?? 0)) | 0;
      }
      stack.push(...(nfa.epsilon[t] ?? []));
    }
    closureOf.push({ states, hash });
  }
  const union: number[] = [];
  const emptySubset: Subset = { states: [], hash: 0 };
  const scratch: Subset = { states: union, hash: 0 };

  /**
   * The subset a set of NFA targets leads to: the union of their closures.
   * A union is built in a scratch array, copied only if it is a new subset.
   */
  const closureOfAll = (targets: readonly number[]): Subset => {
    if (targets.length === 1) return closureOf[targets[0] ?? 0] ?? emptySubset;
    stamp++;
    union.length = 0;
    let hash = 0;
    for (const target of targets) {
      for (const t of closureOf[target]?.states ?? []) {
        if (seen[t] === stamp) continue;
        seen[t] = stamp;
        union.push(t);
        hash = (hash + (hashOf[t] ?? 0)) | 0;
      }
    }
    scratch.hash = hash;
    return scratch;
  };

  const sameMembers = (a: readonly number[], b: readonly number[]): boolean => {
    if (a.length !== b.length) return false;
    stamp++;
    for (const s of a) seen[s] = stamp;
    for (const s of b) if (seen[s] !== stamp) return false;
    return true;
  };

  // A subset is looked up by the sum of its states' hashes (no sorting
  // needed, and a union's hash adds up as it is built), then confirmed by
  // comparing members.
  const members: (readonly number[])[] = [emptySubset.states];
  const accept: bigint[] = [0n];
  const byHash = new Map<number, number[]>([[emptySubset.hash, [0]]]);
  let trans = new Int32Array(64 * k);

  const intern = ({ states, hash }: Subset): number => {
    const candidates = byHash.get(hash);
    for (const id of candidates ?? []) if (sameMembers(members[id] ?? emptySubset.states, states)) return id;
    const id = members.length;
    if (id >= limit) throw new DfaTooLargeError(id + 1, maxStates, 'construction');
    members.push(states === union ? union.slice() : states);
    let mask = 0n;
    for (const s of states) mask |= nfa.accept[s] ?? 0n;
    accept.push(mask);
    if (candidates === undefined) byHash.set(hash, [id]);
    else candidates.push(id);
    if ((id + 1) * k > trans.length) {
      const grown = new Int32Array(trans.length * 2);
      grown.set(trans);
      trans = grown;
    }
    return id;
  };

  const start = intern(closureOfAll(nfa.starts));

  // Per DFA state, the NFA edges are grouped by byte set: a '**' loop shared
  // by many NFA states is one set, not one fan-out per state. A class's
  // successor depends only on which of those sets contain it, so classes
  // with the same membership ("signature") are resolved once.
  const targetsOfSet: number[][] = nfa.sets.map(() => []);
  const active: number[] = [];
  const signatureHash = new Int32Array(k);
  const signatureSize = new Int32Array(k);
  const gathered: number[] = [];
  const { setHasClass } = classes;

  const sameSignature = (a: number, b: number): boolean => {
    if (signatureHash[a] !== signatureHash[b] || signatureSize[a] !== signatureSize[b]) return false;
    for (const set of active) if (setHasClass[set * k + a] !== setHasClass[set * k + b]) return false;
    return true;
  };

  for (let d = 0; d < members.length; d++) {
    for (const set of active) (targetsOfSet[set] ?? []).length = 0;
    active.length = 0;
    for (const s of members[d] ?? []) {
      const sets = nfa.edgeSet[s] ?? [];
      const targets = nfa.edgeTo[s] ?? [];
      for (let e = 0; e < sets.length; e++) {
        const set = sets[e] ?? 0;
        const list = targetsOfSet[set] ?? [];
        if (list.length === 0) active.push(set);
        list.push(targets[e] ?? 0);
      }
    }
    signatureHash.fill(0);
    signatureSize.fill(0);
    for (let i = 0; i < active.length; i++) {
      for (const c of classes.classesOfSet[active[i] ?? 0] ?? []) {
        signatureHash[c] = Math.imul((signatureHash[c] ?? 0) ^ (i + 1), 0x01000193);
        signatureSize[c] = (signatureSize[c] ?? 0) + 1;
      }
    }
    const resolved = new Map<number, number[]>();
    for (let c = 0; c < k; c++) {
      let target = 0;
      if (signatureSize[c] !== 0) {
        const hash = signatureHash[c] ?? 0;
        const candidates = resolved.get(hash);
        const same = candidates?.find((other) => sameSignature(other, c));
        if (same !== undefined) {
          target = trans[d * k + same] ?? 0;
        } else {
          gathered.length = 0;
          for (const set of active) if (setHasClass[set * k + c] === 1) gathered.push(...(targetsOfSet[set] ?? []));
          target = intern(closureOfAll(gathered));
          if (candidates === undefined) resolved.set(hash, [c]);
          else candidates.push(c);
        }
      }
      // intern may grow `trans`, so index it only after the call.
      trans[d * k + c] = target;
    }
  }
  return { size: members.length, start, trans, accept };
}

// ---------------------------------------------------------------------------
// Hopcroft minimisation

/** Returns the block (equivalence class) of every state and the block count. */
function minimise(dfa: ClassDfa, k: number): { blockOf: Int32Array; blocks: number } {
  const n = dfa.size;
  const { trans } = dfa;

  // Predecessors per class, in CSR form: for class c and target t, the states
  // s with trans[s][c] === t are predStates[c*n + predStart[c*(n+1)+t] ...].
  const predStart = new Int32Array(k * (n + 1));
  const predStates = new Int32Array(k * n);
  const fill = new Int32Array(n);
  for (let c = 0; c < k; c++) {
    const base = c * (n + 1);
    for (let s = 0; s < n; s++) {
      const t = trans[s * k + c] ?? 0;
      predStart[base + t + 1] = (predStart[base + t + 1] ?? 0) + 1;
    }
    for (let t = 0; t < n; t++) predStart[base + t + 1] = (predStart[base + t + 1] ?? 0) + (predStart[base + t] ?? 0);
    fill.set(predStart.subarray(base, base + n));
    for (let s = 0; s < n; s++) {
      const t = trans[s * k + c] ?? 0;
      const at = fill[t] ?? 0;
      predStates[c * n + at] = s;
      fill[t] = at + 1;
    }
  }

  // The partition: each block is a slice of `elements`; marked states are
  // swapped to the front of their block's slice.
  const elements = new Int32Array(n);
  const position = new Int32Array(n);
  const blockOf = new Int32Array(n);
  const blockStart = new Int32Array(n);
  const blockEnd = new Int32Array(n);
  const marked = new Int32Array(n);
  let blocks = 0;

  const byAccept = new Map<bigint, number[]>();
  for (let s = 0; s < n; s++) {
    const mask = dfa.accept[s] ?? 0n;
    const group = byAccept.get(mask);
    if (group === undefined) byAccept.set(mask, [s]);
    else group.push(s);
  }
  let at = 0;
  let largest = 0;
  for (const group of byAccept.values()) {
    blockStart[blocks] = at;
    for (const s of group) {
      elements[at] = s;
      position[s] = at;
      blockOf[s] = blocks;
      at++;
    }
    blockEnd[blocks] = at;
    if (group.length > (blockEnd[largest] ?? 0) - (blockStart[largest] ?? 0)) largest = blocks;
    blocks++;
  }

  const pending = new Uint8Array(n * k);
  const work: number[] = [];
  const schedule = (block: number, c: number): void => {
    const item = block * k + c;
    if (pending[item] === 1) return;
    pending[item] = 1;
    work.push(item);
  };
  // Splitting by every block but one is enough: the last one's splits follow
  // from the others'.
  for (let b = 0; b < blocks; b++) if (b !== largest) for (let c = 0; c < k; c++) schedule(b, c);

  const touched = new Int32Array(n);
  const splitter = new Int32Array(n);
  while (work.length > 0) {
    const item = work.pop() ?? 0;
    pending[item] = 0;
    const block = (item / k) | 0;
    const c = item - block * k;
    // Copy the splitter first: marking reorders slices, possibly its own.
    const splitterStart = blockStart[block] ?? 0;
    const splitterSize = (blockEnd[block] ?? 0) - splitterStart;
    for (let i = 0; i < splitterSize; i++) splitter[i] = elements[splitterStart + i] ?? 0;
    let touchedCount = 0;
    for (let i = 0; i < splitterSize; i++) {
      const t = splitter[i] ?? 0;
      const from = predStart[c * (n + 1) + t] ?? 0;
      const to = predStart[c * (n + 1) + t + 1] ?? 0;
      for (let p = from; p < to; p++) {
        const s = predStates[c * n + p] ?? 0;
        const b = blockOf[s] ?? 0;
        const front = (blockStart[b] ?? 0) + (marked[b] ?? 0);
        const here = position[s] ?? 0;
        if (here < front) continue;
        const other = elements[front] ?? 0;
        elements[front] = s;
        position[s] = front;
        elements[here] = other;
        position[other] = here;
        if (marked[b] === 0) touched[touchedCount++] = b;
        marked[b] = (marked[b] ?? 0) + 1;
      }
    }
    for (let i = 0; i < touchedCount; i++) {
      const b = touched[i] ?? 0;
      const count = marked[b] ?? 0;
      marked[b] = 0;
      const start = blockStart[b] ?? 0;
      const end = blockEnd[b] ?? 0;
      if (count === end - start) continue;
      // The smaller half becomes the new block, so relabelling stays cheap.
      const fresh = blocks++;
      if (count <= end - start - count) {
        blockStart[fresh] = start;
        blockEnd[fresh] = start + count;
        blockStart[b] = start + count;
      } else {
        blockStart[fresh] = start + count;
        blockEnd[fresh] = end;
        blockEnd[b] = start + count;
      }
      for (let j = blockStart[fresh] ?? 0; j < (blockEnd[fresh] ?? 0); j++) blockOf[elements[j] ?? 0] = fresh;
      // A pending (b, d) must now also cover the new block; a processed one
      // needs only the smaller half, which is the new block too.
      for (let d = 0; d < k; d++) schedule(fresh, d);
    }
  }
  return { blockOf, blocks };
}

// ---------------------------------------------------------------------------
// Compilation

/**
 * Compiles globs into one DFA over bytes whose accept masks are the OR of the
 * masks of the globs that match the whole path. Throws GlobError for a bad
 * glob, DfaTooLargeError when the minimal DFA needs more than
 * `opts.maxStates` states (or subset construction runs far past it), and
 * RangeError for a mask outside u64 or a bad maxStates.
 */
export function compileGlobs(globs: readonly GlobInput[], opts: CompileOptions = {}): Dfa {
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  if (!Number.isInteger(maxStates) || maxStates < 1 || maxStates > MAX_ARRAY_STATES) {
    throw new RangeError(`maxStates must be an integer in 1..${MAX_ARRAY_STATES}, got ${maxStates}`);
  }
  const nfa = new Nfa();
  for (const { glob, mask } of globs) {
    if (mask < 0n || mask > MAX_MASK) throw new RangeError(`mask for glob ${JSON.stringify(glob)} is not a u64: ${mask}`);
    nfa.addGlob(parseGlob(glob), mask);
  }
  const classes = byteClasses(nfa.sets);
  const k = classes.count;
  const constructionLimit = Math.max(maxStates * CONSTRUCTION_HEADROOM, MIN_CONSTRUCTION_LIMIT);
  const dfa = determinise(nfa, classes, constructionLimit, maxStates);
  const { blockOf, blocks } = minimise(dfa, k);
  if (blocks > maxStates) throw new DfaTooLargeError(blocks, maxStates, 'minimised');

  // Renumber: the dead state's block first, then breadth-first from the start
  // in byte order, so equal glob sets always give identical tables.
  const representative = new Int32Array(blocks).fill(-1);
  for (let s = dfa.size - 1; s >= 0; s--) representative[blockOf[s] ?? 0] = s;
  const classesInByteOrder: number[] = [];
  const classSeen = new Uint8Array(k);
  for (const c of classes.classOf) {
    if (classSeen[c] === 0) classesInByteOrder.push(c);
    classSeen[c] = 1;
  }
  const index = new Int32Array(blocks).fill(-1);
  const order: number[] = [];
  const visit = (block: number): void => {
    if (index[block] !== -1) return;
    index[block] = order.length;
    order.push(block);
  };
  visit(blockOf[0] ?? 0);
  visit(blockOf[dfa.start] ?? 0);
  for (let i = 1; i < order.length; i++) {
    const rep = representative[order[i] ?? 0] ?? 0;
    for (const c of classesInByteOrder) visit(blockOf[dfa.trans[rep * k + c] ?? 0] ?? 0);
  }

  const row = new Uint16Array(k);
  const states: DfaState[] = order.map((block) => {
    const rep = representative[block] ?? 0;
    for (let c = 0; c < k; c++) row[c] = index[blockOf[dfa.trans[rep * k + c] ?? 0] ?? 0] ?? 0;
    const next = new Uint16Array(ALPHABET);
    for (let b = 0; b < ALPHABET; b++) next[b] = row[classes.classOf[b] ?? 0] ?? 0;
    return { next, accept: dfa.accept[rep] ?? 0n };
  });
  return { states, start: index[blockOf[dfa.start] ?? 0] ?? 0 };
}

const encoder = new TextEncoder();

/**
 * The reference walk, exactly what the kernel does: start at dfa.start,
 * follow next[byte] for each byte, return the accept mask where it ends.
 * A string is matched as its UTF-8 bytes.
 */
export function matchDfa(dfa: Dfa, path: Uint8Array | string): bigint {
  const bytes = typeof path === 'string' ? encoder.encode(path) : path;
  let state = dfa.start;
  for (const byte of bytes) state = dfa.states[state]?.next[byte] ?? 0;
  return dfa.states[state]?.accept ?? 0n;
}

// ---------------------------------------------------------------------------
// Kernel layout

/** sizeof(struct krsi_dfa_state { __u64 accept; __u16 next[256]; }) */
export const DFA_STATE_BYTES = 520;

/**
 * The states of `dfa` laid out for the shared ARRAY map of
 * struct krsi_dfa_state (little-endian), starting at array index `base`:
 * state i goes to index base + i, and every next value is written as
 * base + next, so a walk never adds the base itself. The DFA's own dead
 * state therefore sits at `base` (all next = base, accept 0). The kernel
 * starts a walk at index `base + dfa.start`. Write the returned bytes at
 * map indices base .. base + dfa.states.length - 1.
 */
export function encodeDfa(dfa: Dfa, base: number): Buffer {
  if (!Number.isInteger(base) || base < 0) throw new RangeError(`DFA base must be a non-negative integer, got ${base}`);
  if (base + dfa.states.length > MAX_ARRAY_STATES) {
    throw new RangeError(
      `a DFA of ${dfa.states.length} states at base ${base} passes the ${MAX_ARRAY_STATES} states u16 indices can address`,
    );
  }
  const out = Buffer.alloc(dfa.states.length * DFA_STATE_BYTES);
  dfa.states.forEach((state, i) => {
    const offset = i * DFA_STATE_BYTES;
    out.writeBigUInt64LE(state.accept, offset);
    for (let b = 0; b < ALPHABET; b++) out.writeUInt16LE(base + (state.next[b] ?? 0), offset + 8 + 2 * b);
  });
  return out;
}

// ---------------------------------------------------------------------------
// Regex reference: a second, independent reading of the same syntax.

const hex = (byte: number): string => `\\x${byte.toString(16).padStart(2, '0')}`;

/** The string globToRegExp patterns are tested against: one char (U+0000..U+00FF) per UTF-8 byte. */
export function toByteString(path: Uint8Array | string): string {
  return Buffer.from(typeof path === 'string' ? encoder.encode(path) : path).toString('latin1');
}

/**
 * The glob as an anchored RegExp over byte strings (see toByteString; for
 * an ASCII path that is the path itself). Written separately from the DFA
 * parser so each checks the other; throws the same GlobErrors.
 */
export function globToRegExp(glob: string): RegExp {
  checkGlobText(glob);
  const anyByte = '[\\x01-\\xff]';
  const notSlash = '[\\x01-\\x2e\\x30-\\xff]';
  let source = '';
  let i = 0;
  const slashAt = (j: number): boolean => glob[j] === '/' || (glob[j] === '\\' && glob[j + 1] === '/');
  const member = (j: number): { text: string; code: number; end: number } => {
    let at = j;
    if (glob[at] === '\\') {
      at++;
      if (at >= glob.length) throw new GlobError(glob, j, "trailing '\\'");
    }
    const char = String.fromCodePoint(glob.codePointAt(at) ?? 0);
    if (char === '/') throw new GlobError(glob, at, "'/' in a set (a set never matches '/')");
    const code = char.codePointAt(0) ?? 0;
    if (code > 0x7f) throw new GlobError(glob, at, 'non-ASCII character in a set (a set matches one byte)');
    return { text: hex(code), code, end: at + char.length };
  };
  while (i < glob.length) {
    const c = glob[i];
    if (c === '*') {
      let j = i;
      while (glob[j] === '*') j++;
      if (j - i === 1) source += `${notSlash}*`;
      else if (glob[i - 1] === '/' && slashAt(j)) {
        source += `(?:${anyByte}*\\x2f)?`;
        j += glob[j] === '\\' ? 2 : 1;
      } else source += `${anyByte}*`;
      i = j;
    } else if (c === '?') {
      source += notSlash;
      i++;
    } else if (c === '[') {
      const open = i;
      i++;
      const negated = glob[i] === '!' || glob[i] === '^';
      if (negated) i++;
      if (glob[i] === ']' && !glob.slice(i + 1).includes(']')) throw new GlobError(glob, open, 'empty set');
      const parts: string[] = [];
      while (true) {
        if (i >= glob.length) throw new GlobError(glob, open, "unterminated '['");
        if (glob[i] === ']' && parts.length > 0) break;
        const low = member(i);
        if (glob[low.end] === '-' && low.end + 1 < glob.length && glob[low.end + 1] !== ']') {
          const high = member(low.end + 1);
          if (high.code < low.code) throw new GlobError(glob, i, 'reversed range');
          parts.push(`${low.text}-${high.text}`);
          i = high.end;
        } else {
          parts.push(low.text);
          i = low.end;
        }
      }
      i++;
      const list = parts.join('');
      source += negated ? `(?![${list}]|\\x2f)${anyByte}` : `(?!\\x2f)[${list}]`;
    } else {
      let at = i;
      if (c === '\\') {
        at++;
        if (at >= glob.length) throw new GlobError(glob, i, "trailing '\\'");
      }
      const char = String.fromCodePoint(glob.codePointAt(at) ?? 0);
      for (const byte of Buffer.from(char, 'utf8')) source += hex(byte);
      i = at + char.length;
    }
  }
  return new RegExp(`^${source}$`);
}
