// The ring buffer / perf buffer comparison's arithmetic and tables (src/bench/ringperf.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markdownPage } from '../../src/bench/report.js';
import { bufferMemory, groups, pacedRate, ringPerfSummary, ringPerfTable, sumPerCpu, type RingPerfRun } from '../../src/bench/ringperf.js';

function run(over: Partial<RingPerfRun>): RingPerfRun {
  return {
    transport: 'ring',
    rate: 0,
    round: 0,
    capacityBytes: 262144,
    buffers: 1,
    memoryBytes: 262144 + 3 * 4096,
    kernelBytes: null,
    generators: 1,
    calls: 1000,
    seconds: 1,
    producerSeconds: 1,
    received: 1000,
    refused: 0,
    lostReported: null,
    userCpuUs: 1000,
    sysCpuUs: 1000,
    ...over,
  };
}

test('buffer memory from the page counts', () => {
  assert.equal(bufferMemory('ring', 1 << 20, 1, 4096), (1 << 20) + 3 * 4096);
  assert.equal(bufferMemory('perf', 1 << 20, 4, 4096), 4 * ((1 << 20) + 4096));
});

test('per-CPU values are summed field by field over 8-byte aligned slots', () => {
  const v = Buffer.alloc(3 * 16);
  for (let cpu = 0; cpu < 3; cpu++) {
    v.writeBigUInt64LE(BigInt(cpu + 1), cpu * 16);
    v.writeBigUInt64LE(BigInt(10 * (cpu + 1)), cpu * 16 + 8);
  }
  assert.deepEqual(sumPerCpu(v, 16, 2), [6, 60]);
  // A 12-byte value takes 16 bytes per CPU.
  const w = Buffer.alloc(2 * 16);
  w.writeBigUInt64LE(5n, 0);
  w.writeBigUInt64LE(7n, 16);
  assert.deepEqual(sumPerCpu(w, 12, 1), [12]);
});

test('the paced rate is half the slower warm-up, in thousands, at least 1000/s', () => {
  assert.equal(pacedRate([run({ calls: 800_000, producerSeconds: 1 }), run({ calls: 90_000, producerSeconds: 1 })]), 45_000);
  assert.equal(pacedRate([run({ calls: 2 * 90_000, generators: 2, producerSeconds: 1 })]), 45_000);
  assert.equal(pacedRate([run({ calls: 500, producerSeconds: 1 })]), 1000);
});

test('groups: capacities ascending, full speed before paced', () => {
  const runs = [run({ capacityBytes: 4 << 20, rate: 5000 }), run({ capacityBytes: 4 << 20 }), run({ capacityBytes: 1 << 18, rate: 3000 })];
  assert.deepEqual(groups(runs), [
    { capacity: 1 << 18, rate: 3000 },
    { capacity: 4 << 20, rate: 0 },
    { capacity: 4 << 20, rate: 5000 },
  ]);
});

test('the table: medians of rates and CPU, sums of counts, refusal share, lost only for perf', () => {
  const runs = [
    run({ round: 0, received: 600, refused: 400, seconds: 2, kernelBytes: 280_000 }),
    run({ round: 1, received: 800, refused: 200, seconds: 1 }),
    run({ transport: 'perf', buffers: 2, memoryBytes: 2 * (262144 + 4096), received: 1000, refused: 0, lostReported: 0, userCpuUs: 3000, sysCpuUs: 1000 }),
    run({ transport: 'perf', round: 1, buffers: 2, memoryBytes: 2 * (262144 + 4096), received: 0, refused: 1000, lostReported: 900, seconds: 0 }),
  ];
  const t = ringPerfTable(runs);
  assert.equal(t.rows.length, 2);
  const [ring, perf] = t.rows;
  const col = (name: string): number => t.columns.indexOf(name);
  assert.equal(ring![col('buffer memory')], '0.26 MiB (kernel: 0.27)');
  assert.equal(ring![col('records/s received (median)')], '550'); // median of 300/s and 800/s
  assert.equal(ring![col('received')], 1400);
  assert.equal(ring![col('refused %')], '30.00');
  assert.equal(ring![col('lost callback count')], 'n/a (none)');
  assert.equal(perf![col('buffers')], 2);
  assert.equal(perf![col('lost callback count')], 900);
  // A run that received nothing has no CPU per record.
  assert.equal(perf![col('reader CPU µs/record (median)')], '4.00');
  assert.equal(perf![col('load')], 'full speed, 1 generator');
  const [sentence] = ringPerfSummary(runs);
  assert.match(sentence!, /^0\.25 MiB per CPU, full speed, 1 generator: the perf buffer takes 1\.9× the ring's memory/);
  assert.match(sentence!, /refuses 50\.00% of records against the ring's 30\.00%/);
});

test('a result\'s further sections follow its notes in the markdown', () => {
  const md = markdownPage(
    {
      name: 'pipeline',
      title: 'T',
      table: { columns: ['a'], rows: [[1]] },
      chart: { title: 'c', unit: 'u', bars: [] },
      notes: ['first note'],
      sections: [{ heading: 'Second', table: { columns: ['b'], rows: [[2]] }, notes: ['second note'] }],
    },
    { kernel: '6.12.0', date: 'd', machine: 'm', command: 'c' },
  );
  assert.ok(md.indexOf('first note') < md.indexOf('## Second'));
  assert.match(md, /## Second\n\n\| b \|\n\|---\|\n\| 2 \|\n\nsecond note\n/);
});
