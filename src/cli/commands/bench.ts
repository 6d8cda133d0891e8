// `krsi bench`: the performance benchmarks (src/bench), run as root in a BPF
// LSM kernel, normally through `make bench` (krsi vm, one boot per kernel).
import { InvalidArgumentError, type Command } from 'commander';
import { BENCHMARKS, runBench, type BenchName } from '../../bench/index.js';
import { CliError, ExitCode } from '../exit-codes.js';

function positive(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer');
  return Number(value);
}

interface BenchCliOptions {
  out: string;
  rounds: number;
  repeats: number;
  execs: number;
  opens: number;
  reactions: number;
  seed: number;
  command?: string;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .summary('measure krsi against no agent and against audit (in a BPF LSM kernel, as root)')
    .description(
      `Run benchmarks and write bench/results/<benchmark>-<kernel>.md and .svg. Benchmarks: ${BENCHMARKS.join(', ')}, or all. ` +
        'They start auditd and krsi agents and attach programs: run them in a VM (make bench, or krsi vm -- krsi bench all).',
    )
    .argument('<benchmarks...>', `${BENCHMARKS.join(' | ')} | all`)
    .option('--out <dir>', 'where the results go', 'bench/results')
    .option('--rounds <n>', 'rounds per phase', positive, 10)
    .option('--repeats <n>', 'phases of each krsi configuration, each between two baseline phases', positive, 4)
    .option('--execs <n>', 'execs per round', positive, 100)
    .option('--opens <n>', 'opens per round', positive, 20000)
    .option('--reactions <n>', 'reactions timed (latency)', positive, 30)
    .option('--seed <n>', 'seed of the shuffles and the bootstrap', positive, 1)
    .option('--command <text>', 'the command line recorded in the results (default: this one)')
    .action(async (names: string[], o: BenchCliOptions) => {
      const benchmarks = names.includes('all') ? [...BENCHMARKS] : names;
      for (const n of benchmarks) {
        if (!(BENCHMARKS as readonly string[]).includes(n)) throw new CliError(`unknown benchmark ${n}; one of ${BENCHMARKS.join(', ')}, all`, ExitCode.usage);
      }
      if (process.getuid?.() !== 0) throw new CliError('krsi bench needs root in a BPF LSM kernel (run it in krsi vm)', ExitCode.usage);
      const written = await runBench(
        {
          benchmarks: benchmarks as BenchName[],
          rounds: o.rounds,
          repeats: o.repeats,
          execsPerRound: o.execs,
          opensPerRound: o.opens,
          reactions: o.reactions,
          seed: o.seed,
          out: o.out,
          command: o.command ?? `krsi ${process.argv.slice(2).join(' ')}`,
        },
        (msg) => process.stderr.write(`krsi bench: ${msg}\n`),
      );
      for (const f of written) process.stdout.write(`${f}\n`);
    });
}
