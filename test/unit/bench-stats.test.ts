// The benchmarks' statistics and writers (src/bench/stats.ts, report.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernelTag, markdownPage, markdownTable, svgChart } from '../../src/bench/report.js';
import { bootstrapCI, formatOverhead, median, pairedRatioCI, pairedRatios, prng, quantile, shuffle, unpairedRatioCI } from '../../src/bench/stats.js';

test('median and quantiles interpolate', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(quantile([0, 10], 0.99), 9.9);
  assert.ok(Number.isNaN(median([])));
});

test('the PRNG and shuffles are deterministic and complete', () => {
  const a = shuffle([1, 2, 3, 4, 5], prng(7));
  assert.deepEqual(a, shuffle([1, 2, 3, 4, 5], prng(7)));
  assert.deepEqual([...a].sort(), [1, 2, 3, 4, 5]);
});

test('paired ratios, and a CI that contains the true ratio', () => {
  assert.deepEqual(pairedRatios([2, 3, 4], [1, 3]), [2, 1]);
  const rand = prng(3);
  const base = Array.from({ length: 40 }, () => 1000 * (0.8 + 0.4 * rand()));
  const slow = base.map((b) => b * 1.1 * (0.99 + 0.02 * rand()));
  const iv = pairedRatioCI(slow, base);
  assert.ok(iv.lo <= 1.105 && 1.095 <= iv.hi && iv.lo <= iv.estimate && iv.estimate <= iv.hi, JSON.stringify(iv));
  assert.ok(iv.hi - iv.lo < 0.02, 'pairing removes the batch noise');
  const un = unpairedRatioCI(slow, base);
  assert.ok(un.hi - un.lo > iv.hi - iv.lo, 'unpaired is wider');
});

test('bootstrap CI brackets the estimate; constant samples give a point', () => {
  const iv = bootstrapCI([5, 5, 5, 5]);
  assert.deepEqual([iv.estimate, iv.lo, iv.hi, iv.n], [5, 5, 5, 4]);
  const w = bootstrapCI([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(w.lo <= w.estimate && w.estimate <= w.hi);
});

test('overheads are printed as signed percentages', () => {
  assert.equal(formatOverhead({ estimate: 1.048, lo: 1.039, hi: 1.056, n: 10 }), '+4.8% [+3.9, +5.6]');
  assert.equal(formatOverhead({ estimate: 0.99, lo: 0.98, hi: 1.0, n: 10 }), '−1.0% [−2.0, +0.0]');
  assert.equal(formatOverhead({ estimate: NaN, lo: NaN, hi: NaN, n: 0 }), 'n/a');
});

test('markdown tables escape pipes; pages carry kernel, date, machine and command', () => {
  const t = markdownTable({ columns: ['a', 'b|c'], rows: [[1, 'x|y'], [0.5, 'z']] });
  assert.equal(t, '| a | b\\|c |\n|---|---|\n| 1 | x\\|y |\n| 0.500 | z |\n');
  const page = markdownPage(
    { name: 'exec', title: 'T', table: { columns: ['a'], rows: [] }, chart: { title: 'c', unit: 'u', bars: [] }, notes: ['n1'] },
    { kernel: '6.12.117+deb12-amd64', date: 'D', machine: 'M', command: 'make bench' },
  );
  for (const s of ['# T', '- kernel: 6.12.117+deb12-amd64', '- date: D', '- machine: M', '`make bench`', 'n1', '(exec-6.12.svg)']) assert.ok(page.includes(s), s);
  assert.equal(kernelTag('6.1.0-56-amd64'), '6.1');
});

test('the SVG chart is well formed, one bar and label per entry, escaped', () => {
  const svg = svgChart({
    title: 'a < b',
    unit: 'ratio',
    bars: [
      { label: 'x', value: 1.2, lo: 1.1, hi: 1.3 },
      { label: 'y&z', value: NaN },
    ],
    reference: { value: 1, label: 'baseline' },
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trim().endsWith('</svg>'));
  assert.equal((svg.match(/<rect /g) ?? []).length, 3);
  assert.ok(svg.includes('a &lt; b') && svg.includes('y&amp;z') && svg.includes('n/a'));
  assert.ok(!/NaN/.test(svg));
  assert.equal((svg.match(/<text/g) ?? []).length, 1 + 2 * 2 + 1 + 1);
});
