// Writers for the benchmark results: a markdown page (header with kernel,
// date, machine and the exact command; one table) and an SVG bar chart with
// confidence whiskers, drawn by hand (no charting dependency).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RunInfo {
  kernel: string;
  date: string;
  machine: string;
  command: string;
}

export interface Table {
  columns: string[];
  rows: Array<Array<string | number>>;
}

export interface Bar {
  label: string;
  value: number;
  lo?: number;
  hi?: number;
}

export interface Chart {
  title: string;
  unit: string;
  bars: Bar[];
  /** A dashed reference line (e.g. the baseline, or a target). */
  reference?: { value: number; label: string };
}

export interface BenchResult {
  /** File name stem: bench/results/<name>-<kernel>.md */
  name: string;
  title: string;
  table: Table;
  chart: Chart;
  /** Paragraphs under the table: method, caveats. */
  notes: string[];
  /** Further tables, each under its own heading after the notes. */
  sections?: Array<{ heading: string; table: Table; notes: string[] }>;
}

function cell(v: string | number): string {
  const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v;
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(t: Table): string {
  const lines = [`| ${t.columns.map(cell).join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`];
  for (const r of t.rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n') + '\n';
}

export function markdownPage(r: BenchResult, info: RunInfo): string {
  return (
    `# ${r.title}\n\n` +
    `- kernel: ${info.kernel}\n- date: ${info.date}\n- machine: ${info.machine}\n- command: \`${info.command}\`\n\n` +
    markdownTable(r.table) +
    '\n' +
    r.notes.map((n) => `${n}\n`).join('\n') +
    (r.sections ?? []).map((s) => `\n## ${s.heading}\n\n${markdownTable(s.table)}\n${s.notes.map((n) => `${n}\n`).join('\n')}`).join('') +
    `\n![${r.title}](${r.name}-${kernelTag(info.kernel)}.svg)\n`
  );
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A horizontal bar chart: one bar per entry, whiskers for [lo, hi]. */
export function svgChart(c: Chart): string {
  const rowH = 28;
  const left = 260;
  const width = 760;
  const plotW = width - left - 90;
  const top = 40;
  const height = top + c.bars.length * rowH + 40;
  const finite = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);
  const maxV = Math.max(1e-12, ...c.bars.flatMap((b) => [b.value, b.hi].filter(finite)), ...(c.reference ? [c.reference.value] : []));
  const x = (v: number): number => left + (Math.max(0, v) / maxV) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
  ];
  c.bars.forEach((b, i) => {
    const y = top + i * rowH;
    const v = finite(b.value) ? b.value : 0;
    out.push(`<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(b.label)}</text>`);
    out.push(`<rect x="${left}" y="${y + 5}" width="${(x(v) - left).toFixed(1)}" height="${rowH - 10}" fill="#4a7ab5"/>`);
    if (finite(b.lo) && finite(b.hi)) {
      const cy = y + rowH / 2;
      out.push(
        `<path d="M${x(b.lo).toFixed(1)} ${cy}H${x(b.hi).toFixed(1)}M${x(b.lo).toFixed(1)} ${cy - 5}V${cy + 5}M${x(b.hi).toFixed(1)} ${cy - 5}V${cy + 5}" stroke="black" fill="none"/>`,
      );
    }
    out.push(`<text x="${(Math.max(x(v), finite(b.hi) ? x(b.hi) : 0) + 6).toFixed(1)}" y="${y + 17}">${esc(finite(b.value) ? fmt(b.value) : 'n/a')}</text>`);
  });
  if (c.reference) {
    const rx = x(c.reference.value).toFixed(1);
    out.push(`<path d="M${rx} ${top}V${height - 30}" stroke="#c0392b" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${rx}" y="${height - 16}" text-anchor="middle" fill="#c0392b">${esc(c.reference.label)}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${height - 2}" text-anchor="middle">${esc(c.unit)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function fmt(v: number): string {
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(3);
}

/** "6.12.117+deb12-amd64" -> "6.12" (the file name's kernel part). */
export function kernelTag(release: string): string {
  const m = /^(\d+\.\d+)/.exec(release);
  return m ? m[1]! : release;
}

export function writeResult(dir: string, r: BenchResult, info: RunInfo): string[] {
  mkdirSync(dir, { recursive: true });
  const stem = join(dir, `${r.name}-${kernelTag(info.kernel)}`);
  writeFileSync(`${stem}.md`, markdownPage(r, info));
  writeFileSync(`${stem}.svg`, svgChart(r.chart));
  return [`${stem}.md`, `${stem}.svg`];
}
