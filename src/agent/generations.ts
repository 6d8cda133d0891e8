// The compiled generations the agent installed, kept so that an event names
// the policy and rule behind the bit the kernel reports. A few generations
// are kept: events of the previous one may still be in the rings.
import { HOOKS, type HookName } from '../policy/schema.js';
import type { CompiledGeneration } from '../policy/compile.js';
import { HOOK_IDS } from '../policy/compile.js';
import type { PolicyNames } from '../events/policy-outcome.js';
import type { RuleRefOut } from '../events/schema.js';

const KEEP = 8;

const hookById = new Map<number, HookName>(HOOKS.map((h) => [HOOK_IDS[h], h]));

export class Generations implements PolicyNames {
  private readonly byNumber = new Map<number, CompiledGeneration>();
  private latest: CompiledGeneration | null = null;

  add(gen: CompiledGeneration): void {
    this.byNumber.set(Number(gen.generation), gen);
    this.latest = gen;
    const numbers = [...this.byNumber.keys()].sort((a, b) => a - b);
    for (const n of numbers.slice(0, Math.max(0, numbers.length - KEEP))) this.byNumber.delete(n);
  }

  current(): CompiledGeneration | null {
    return this.latest;
  }

  rule(generation: number, hook: number, bit: number): RuleRefOut | undefined {
    const h = hookById.get(hook);
    const r = h ? this.byNumber.get(generation)?.rules[h][bit] : undefined;
    return r && { policy: r.policy, rule: r.rule, action: r.action, mode: r.mode };
  }
}
