// The agent's ring accounting (src/agent/accounting.ts) against a fake
// kernel: per-CPU ring_seq and ring_lost as the BPF programs keep them, a
// ring in numbering order that a reader gives back only after a batch was
// delivered (as native/src/ringbuf.cc does), and ring_read as the agent
// leaves it for a successor. Every loss is marked exactly once, at a jump or
// at the tail, and every record not lost is delivered at least once, across
// agents that adopt each other's state, killed anywhere in a batch.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KRSI_RING_DECISIONS, KRSI_RING_EVENTS } from '../../src/abi/generated.js';
import { Accounting, DELIVERED, type AccountingMaps, type Gap } from '../../src/agent/accounting.js';
import { prng } from '../lib/prng.js';

const CPUS = 2;

/** A per-CPU array map of KRSI_RING_COUNT entries: the value is `stride` bytes per CPU. */
class PerCpuMap {
  readonly values = new Map<number, Buffer>();
  constructor(private readonly stride: number) {}
  lookup(key: Uint8Array): Buffer {
    const k = Buffer.from(key).readUInt32LE(0);
    return Buffer.from(this.values.get(k) ?? Buffer.alloc(this.stride * CPUS));
  }
  update(key: Uint8Array, value: Uint8Array): void {
    assert.equal(value.length, this.stride * CPUS, 'a per-CPU value of every possible CPU');
    this.values.set(Buffer.from(key).readUInt32LE(0), Buffer.from(value));
  }
  add(ring: number, cpu: number): bigint {
    const v = this.lookup(Buffer.from([ring, 0, 0, 0]));
    const n = v.readBigUInt64LE(cpu * this.stride) + 1n;
    v.writeBigUInt64LE(n, cpu * this.stride);
    this.values.set(ring, v);
    return n;
  }
}

interface Rec {
  ring: number;
  cpu: number;
  seq: bigint;
}

/** The kernel's side: numbers every record, writes it if the ring has room, counts it lost if not. */
class FakeKernel {
  readonly seq = new PerCpuMap(8);
  readonly lost = new PerCpuMap(8);
  readonly read = new PerCpuMap(24);
  readonly rings: Rec[][] = [[], []];
  lostTotal = [0, 0];
  constructor(readonly capacity = Infinity) {}

  write(ring: number, cpu: number, fits = this.rings[ring]!.length < this.capacity): void {
    const seq = this.seq.add(ring, cpu);
    if (fits) this.rings[ring]!.push({ ring, cpu, seq });
    else {
      this.lost.add(ring, cpu);
      this.lostTotal[ring]!++;
    }
  }

  /** The first n records of the ring, left in it until commit(). */
  peek(ring: number, n = Infinity): Rec[] {
    return this.rings[ring]!.slice(0, n);
  }

  /** The reader gives back what it took (the consumer position moves). */
  commit(ring: number, n: number): void {
    this.rings[ring]!.splice(0, n);
  }

  get maps(): AccountingMaps {
    return { seq: this.seq, lost: this.lost, read: this.read };
  }
}

/** An agent's side: reads batches, delivers gap events, checkpoints, marks tail losses. */
class FakeAgent {
  readonly acc: Accounting;
  readonly gaps: Gap[] = [];
  /** Gaps recorded in ring_read: a successor does not mark their losses again. */
  private checkpointed = 0;
  constructor(
    private readonly kernel: FakeKernel,
    adopted = { rings: false, ringRead: false },
    /** Every record delivered, as "ring/cpu/seq", across agents. */
    private readonly delivered: string[] = [],
  ) {
    this.acc = new Accounting(kernel.maps, CPUS);
    this.acc.baseline(adopted);
  }
  /**
   * Reads up to n records and delivers them, then checkpoints, then gives
   * the ring back what it took. `killed` stops it for good after that many
   * records delivered, or after the checkpoint ('after-checkpoint').
   */
  batch(ring: number, n = Infinity, killed?: number | 'after-checkpoint'): void {
    const taken = this.kernel.peek(ring, n);
    for (const [i, r] of taken.entries()) {
      if (killed === i) return;
      const g = this.acc.record(r.ring, r.cpu, r.seq);
      if (g === DELIVERED) continue;
      if (g) this.gaps.push(g);
      this.delivered.push(`${r.ring}/${r.cpu}/${r.seq}`);
    }
    this.checkpoint();
    if (killed !== undefined) return;
    this.kernel.commit(ring, taken.length);
  }
  tail(rings?: number[]): void {
    const gaps = this.acc.tail(rings);
    this.gaps.push(...gaps);
    if (gaps.length > 0) this.checkpoint();
  }
  private checkpoint(): void {
    this.acc.checkpoint();
    this.checkpointed = this.gaps.length;
  }
  /**
   * Records the gap events stood for. A gap delivered in a batch its agent
   * was killed in before the checkpoint is delivered again by the successor,
   * like the batch's records: `checkpointedOnly` leaves those out.
   */
  marked(ring: number, checkpointedOnly = false): number {
    const gaps = checkpointedOnly ? this.gaps.slice(0, this.checkpointed) : this.gaps;
    return gaps.filter((g) => g.ring === ring).reduce((n, g) => n + Number(g.missing), 0);
  }
}

const E = KRSI_RING_EVENTS;
const D = KRSI_RING_DECISIONS;

describe('accounting', () => {
  test('nothing lost: no gap; attempted = received, nothing pending', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    for (let i = 0; i < 5; i++) k.write(E, i % CPUS);
    a.batch(E);
    a.tail();
    assert.deepEqual(a.gaps, []);
    assert.deepEqual(a.acc.report().events, { attempted: 5, received: 5, dropped: 0, pending: 0, gaps: 0, missing: 0 });
  });

  test('a loss between two records is marked where it happened, once', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    k.write(E, 0);
    k.write(E, 0, false);
    k.write(E, 0, false);
    k.write(E, 0);
    a.batch(E);
    assert.deepEqual(a.gaps, [{ ring: E, cpu: 0, firstSeq: 2n, missing: 2n }]);
    a.tail();
    assert.equal(a.gaps.length, 1, 'the tail check marks nothing twice');
    assert.deepEqual(a.acc.report().events, { attempted: 4, received: 2, dropped: 2, pending: 0, gaps: 1, missing: 2 });
  });

  test('a loss at the tail: dropped at once, marked by the tail check, not again by a later record', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    k.write(E, 1);
    k.write(E, 1);
    k.write(E, 1, false);
    k.write(E, 1, false);
    k.write(E, 1, false);
    a.batch(E);
    assert.deepEqual(a.gaps, [], 'no later record shows the loss');
    const before = a.acc.report().events;
    assert.deepEqual(before, { attempted: 5, received: 2, dropped: 3, pending: 0, gaps: 0, missing: 0 });
    a.tail();
    assert.deepEqual(a.gaps, [{ ring: E, cpu: 1, firstSeq: 3n, missing: 3n }]);
    assert.deepEqual(a.acc.report().events, { ...before, gaps: 1, missing: 3 });
    // More lost, then a record: the jump covers 4 numbers, 3 already marked.
    k.write(E, 1, false);
    k.write(E, 1);
    a.batch(E);
    assert.deepEqual(a.gaps.at(-1), { ring: E, cpu: 1, firstSeq: 6n, missing: 1n });
    a.tail();
    assert.equal(a.marked(E), 4);
    assert.deepEqual(a.acc.report().events, { attempted: 7, received: 3, dropped: 4, pending: 0, gaps: 2, missing: 4 });
  });

  test('tail gaps of one CPU start after what was marked there already (a lower bound)', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    k.write(E, 0);
    a.batch(E);
    k.write(E, 0, false);
    a.tail();
    k.write(E, 0, false);
    k.write(E, 0, false);
    a.tail();
    assert.deepEqual(a.gaps, [
      { ring: E, cpu: 0, firstSeq: 2n, missing: 1n },
      { ring: E, cpu: 0, firstSeq: 3n, missing: 2n },
    ]);
  });

  test('records still in the ring are pending, not lost, and a tail check leaves them be', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    for (let i = 0; i < 6; i++) k.write(D, 0);
    a.batch(D, 2);
    a.tail();
    assert.deepEqual(a.gaps, []);
    assert.deepEqual(a.acc.report().decisions, { attempted: 6, received: 2, dropped: 0, pending: 4, gaps: 0, missing: 0 });
    a.batch(D);
    assert.equal(a.acc.report().decisions.pending, 0);
  });

  test('a record written after a later-numbered one is not a loss: nothing marked', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    k.write(E, 0);
    // Numbered 2, preempted before its write; 3 is written first.
    const late = { ring: E, cpu: 0, seq: k.seq.add(E, 0) };
    k.write(E, 0);
    a.batch(E);
    assert.deepEqual(a.gaps, [], 'the kernel lost nothing: the jump is not marked');
    k.rings[E]!.push(late);
    a.batch(E);
    a.tail();
    assert.deepEqual(a.gaps, []);
    assert.deepEqual(a.acc.report().events, { attempted: 3, received: 3, dropped: 0, pending: 0, gaps: 0, missing: 0 });
  });

  test('ring_read holds, per CPU, the last sequence consumed, the jump losses and the marks', () => {
    const k = new FakeKernel();
    const a = new FakeAgent(k);
    k.write(E, 1);
    k.write(E, 1, false);
    k.write(E, 1);
    k.write(E, 1, false);
    a.batch(E);
    a.tail();
    const v = k.read.lookup(Buffer.from([E, 0, 0, 0]));
    assert.deepEqual([0, 8, 16, 24, 32, 40].map((o) => v.readBigUInt64LE(o)), [0n, 0n, 0n, 3n, 1n, 2n]);
  });

  test('an adopting agent marks what its predecessor left unmarked, and nothing it marked', () => {
    const k = new FakeKernel();
    const first = new FakeAgent(k);
    k.write(D, 0);
    k.write(D, 0, false);
    k.write(D, 0);
    k.write(D, 1);
    k.write(D, 1, false);
    first.batch(D);
    first.tail();
    assert.equal(first.marked(D), 2);
    // Lost at the tail after the first agent's last check, then killed;
    // meanwhile two more records, one lost.
    k.write(D, 0, false);
    k.write(D, 1);
    k.write(D, 1, false);
    const second = new FakeAgent(k, { rings: true, ringRead: true });
    second.batch(D);
    second.tail();
    assert.equal(first.marked(D) + second.marked(D), k.lostTotal[D], 'every loss marked once, across the two');
    // missing counts the loss the first agent marked at the tail past where it stopped reading.
    assert.deepEqual(second.acc.report().decisions, { attempted: 4, received: 1, dropped: 3, pending: 0, gaps: 2, missing: 3 });
  });

  test("a successor counts in its missing the tail its predecessor marked past where it stopped reading", () => {
    const k = new FakeKernel();
    const first = new FakeAgent(k);
    k.write(E, 0);
    first.batch(E);
    k.write(E, 0, false);
    first.tail();
    const second = new FakeAgent(k, { rings: true, ringRead: true });
    k.write(E, 0);
    second.batch(E);
    second.tail();
    assert.deepEqual(second.gaps, [], 'marked by the first agent already');
    assert.deepEqual(second.acc.report().events, { attempted: 2, received: 1, dropped: 1, pending: 0, gaps: 0, missing: 1 });
  });

  test('a batch a killed agent took stays in the ring: what it checkpointed is skipped, the rest delivered again; nothing pending', () => {
    const k = new FakeKernel();
    const delivered: string[] = [];
    for (let i = 0; i < 3; i++) k.write(D, 0);
    // Killed after delivering one of three, before its checkpoint.
    new FakeAgent(k, undefined, delivered).batch(D, Infinity, 1);
    const second = new FakeAgent(k, { rings: true, ringRead: true }, delivered);
    k.write(D, 0);
    k.write(D, 0, false);
    // Killed after its checkpoint, before the ring was given back.
    second.batch(D, Infinity, 'after-checkpoint');
    second.tail();
    assert.equal(second.marked(D), 1, 'the one the kernel lost');
    assert.deepEqual(second.acc.report().decisions, { attempted: 5, received: 4, dropped: 1, pending: 0, gaps: 1, missing: 1 });
    const third = new FakeAgent(k, { rings: true, ringRead: true }, delivered);
    k.write(D, 0);
    third.batch(D);
    third.tail();
    assert.deepEqual(third.gaps, [], 'the loss was marked by the second agent');
    // Past its start (the second's checkpoint): 5 lost (marked before), 6 received.
    assert.deepEqual(third.acc.report().decisions, { attempted: 2, received: 1, dropped: 1, pending: 0, gaps: 0, missing: 1 });
    assert.deepEqual(delivered, ['0/0/1', '0/0/1', '0/0/2', '0/0/3', '0/0/4', '0/0/6'], 'the first delivered again by its successor; the checkpointed ones once');
  });

  test('rings adopted from a krsi without ring_read: accounted from now, the past not its own', () => {
    const k = new FakeKernel();
    k.write(E, 0);
    k.write(E, 0, false);
    k.commit(E, 1); // read by a krsi that kept no ring_read
    const a = new FakeAgent(k, { rings: true, ringRead: false });
    k.write(E, 0, false);
    k.write(E, 0);
    a.batch(E);
    a.tail();
    assert.deepEqual(a.gaps, [{ ring: E, cpu: 0, firstSeq: 3n, missing: 1n }]);
    assert.deepEqual(a.acc.report().events, { attempted: 2, received: 1, dropped: 1, pending: 0, gaps: 1, missing: 1 });
  });

  test('random storms, partial reads, tail checks and adoptions (some mid-batch): missing == dropped at every quiet moment, each loss marked once, every record delivered', () => {
    let lost = 0;
    let adoptions = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed);
      const k = new FakeKernel(1 + Math.floor(rand() * 8));
      const midBatch = seed % 2 === 0;
      const delivered: string[] = [];
      let agent = new FakeAgent(k, undefined, delivered);
      const marks = [0, 0];
      const retire = (a: FakeAgent) => [D, E].forEach((ring) => (marks[ring]! += a.marked(ring, true)));
      for (let step = 0; step < 400; step++) {
        const r = rand();
        const ring = rand() < 0.5 ? D : E;
        if (r < 0.6) k.write(ring, Math.floor(rand() * CPUS));
        else if (r < 0.85) agent.batch(ring, 1 + Math.floor(rand() * 4));
        else if (r < 0.97) agent.tail(rand() < 0.5 ? [ring] : undefined);
        else {
          // kill -9 between batches: what ring_read holds is all a successor
          // has. Or, in some storms, in the middle of one: before, inside or
          // after its delivery, before the ring was given back.
          if (midBatch && rand() < 0.5) {
            const n = 1 + Math.floor(rand() * 4);
            agent.batch(ring, n, rand() < 0.3 ? 'after-checkpoint' : Math.floor(rand() * (n + 1)));
          }
          retire(agent);
          agent = new FakeAgent(k, { rings: true, ringRead: true }, delivered);
          adoptions++;
        }
        const acc = agent.acc.report();
        for (const name of ['decisions', 'events'] as const) {
          const a = acc[name];
          assert.ok(a.missing <= a.dropped, `seed ${seed}: never more marked than lost`);
          assert.equal(a.attempted, a.received + a.dropped + a.pending, `seed ${seed}`);
          assert.ok(a.missing >= 0 && a.pending >= 0, `seed ${seed}: ${JSON.stringify(a)}`);
        }
      }
      // Quiet: drained and checked.
      agent.batch(D);
      agent.batch(E);
      agent.tail();
      retire(agent);
      const acc = agent.acc.report();
      for (const [ring, name] of [[D, 'decisions'], [E, 'events']] as const) {
        assert.equal(acc[name].missing, acc[name].dropped, `seed ${seed}: ${name} missing == dropped`);
        assert.equal(acc[name].pending, 0, `seed ${seed}: nothing pending once drained`);
        assert.equal(marks[ring], k.lostTotal[ring], `seed ${seed}: ${name}: every loss marked once across the agents (again only after a kill before the checkpoint)`);
        lost += k.lostTotal[ring]!;
      }
      // At least once: every record the kernel wrote was delivered by some agent.
      const seen = new Set(delivered);
      const written = [D, E].flatMap((ring) =>
        Array.from({ length: CPUS }, (_, cpu) => {
          const last = k.seq.lookup(Buffer.from([ring, 0, 0, 0])).readBigUInt64LE(cpu * 8);
          return Array.from({ length: Number(last) }, (_, i) => `${ring}/${cpu}/${i + 1}`);
        }).flat(),
      );
      assert.equal(written.filter((w) => !seen.has(w)).length, k.lostTotal[D]! + k.lostTotal[E]!, `seed ${seed}: only what the kernel lost went undelivered`);
    }
    assert.ok(lost > 1000 && adoptions > 100, `the storms lost records (${lost}) and agents adopted (${adoptions})`);
  });
});
