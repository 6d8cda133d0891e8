// krsi doctor: exit 0 only when enforcement works on this kernel.
import type { Command } from 'commander';
import type { DoctorReport } from '../../doctor/doctor.js';
import { ExitCode } from '../exit-codes.js';

export function renderDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`);
  for (const note of report.kernel.notes) lines.push(`note  ${note}`);
  lines.push('', report.verdict);
  return lines.join('\n');
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check that this kernel can run krsi (it tries to load and attach an LSM program)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      // Loaded here, not at start-up: commands that need no BPF (krsi vm)
      // must run even where the native binding is not built.
      const { runDoctor } = await import('../../doctor/doctor.js');
      const report = runDoctor();
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderDoctor(report)}\n`);
      process.exitCode = report.enforcement ? ExitCode.ok : ExitCode.failure;
    });
}
