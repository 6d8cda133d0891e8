// Every krsi command, in the order `krsi --help` lists them.
import type { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerDoctor } from './doctor.js';
import { registerEvents } from './events.js';
import { registerExplain } from './explain.js';
import { registerList } from './list.js';
import { registerLock } from './lock.js';
import { registerLockPoint } from './lock-point.js';
import { registerPolicy } from './policy.js';
import { registerReload } from './reload.js';
import { registerRun } from './run.js';
import { registerStatus } from './status.js';
import { registerStop } from './stop.js';
import { registerVm } from './vm.js';

export function registerCommands(program: Command): void {
  registerRun(program);
  registerStatus(program);
  registerStop(program);
  registerReload(program);
  registerEvents(program);
  registerPolicy(program);
  registerList(program);
  registerLock(program);
  registerLockPoint(program);
  registerExplain(program);
  registerDoctor(program);
  registerVm(program);
  registerBench(program);
}
