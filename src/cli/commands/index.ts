// Every krsi command, in the order `krsi --help` lists them.
import type { Command } from 'commander';
import { registerDoctor } from './doctor.js';
import { registerRun } from './run.js';
import { registerVm } from './vm.js';

export function registerCommands(program: Command): void {
  registerRun(program);
  registerDoctor(program);
  registerVm(program);
}
