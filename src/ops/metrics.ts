// Prometheus metrics of the agent (`krsi run --metrics 127.0.0.1:9464`),
// with prom-client, on its own registry: counts of the events delivered,
// decisions, losses, ring accounting, policy generation and the reaction
// latency histogram; ring and hook counters are read when scraped.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentStatus } from '../agent/control-api.js';
import type { KrsiEvent } from '../events/schema.js';

export interface MetricsSources {
  status: () => AgentStatus;
  /** Events the control socket's subscribers lost. */
  subscriberLost?: () => number;
  processCacheSize?: () => number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'kind'>;
  private readonly decisions: Counter<'kind' | 'decision'>;
  private readonly gaps: Counter<'ring'>;
  private readonly latency: Histogram;

  constructor(sources: MetricsSources, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.events = new Counter({ name: 'krsi_events_total', help: 'Events delivered, by kind', labelNames: ['kind'], registers });
    this.decisions = new Counter({
      name: 'krsi_decisions_total',
      help: 'Events with a decision, by kind (hook) and decision (allowed, denied)',
      labelNames: ['kind', 'decision'],
      registers,
    });
    this.gaps = new Counter({
      name: 'krsi_gap_records_total',
      help: 'Records lost in a full ring, as gap events reported them (every loss is marked: equal to the dropped records once quiet)',
      labelNames: ['ring'],
      registers,
    });
    this.latency = new Histogram({
      name: 'krsi_reaction_latency_seconds',
      help: "From the kernel's timestamp of a triggering event to its reaction's mitigations in force",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    // Read from the agent when scraped: one status() per scrape.
    let cached: { at: number; status: AgentStatus } | null = null;
    const status = (): AgentStatus => {
      const now = Date.now();
      if (!cached || now - cached.at > 100) cached = { at: now, status: sources.status() };
      return cached.status;
    };
    new Gauge({
      name: 'krsi_ring_records',
      help: 'Per ring since the agent started: records the kernel tried to write (attempted), the agent read (received), the ring had no room for (dropped), still in the ring or being written (pending)',
      labelNames: ['ring', 'state'],
      registers,
      collect() {
        const a = status().accounting;
        for (const ring of ['decisions', 'events'] as const) {
          for (const state of ['attempted', 'received', 'dropped', 'pending'] as const) this.set({ ring, state }, a[ring][state]);
        }
      },
    });
    new Gauge({
      name: 'krsi_ring_usage_ratio',
      help: 'Records the kernel wrote that the agent has not read yet or lost, over those it tried to write (0 when none)',
      labelNames: ['ring'],
      registers,
      collect() {
        const a = status().accounting;
        for (const ring of ['decisions', 'events'] as const) this.set({ ring }, a[ring].attempted > 0 ? (a[ring].dropped + a[ring].pending) / a[ring].attempted : 0);
      },
    });
    new Gauge({
      name: 'krsi_hook_records',
      help: 'Kernel counters per hook (seen, denied, emitted, dropped, rate_limited), summed over CPUs',
      labelNames: ['hook', 'counter'],
      registers,
      collect() {
        for (const [hook, c] of Object.entries(status().counters)) {
          for (const [counter, n] of Object.entries(c)) this.set({ hook, counter }, n);
        }
      },
    });
    new Gauge({
      name: 'krsi_policy_generation',
      help: 'The policy generation in force',
      registers,
      collect() {
        this.set(status().generation);
      },
    });
    new Gauge({
      name: 'krsi_tamper_denied',
      help: 'Tampering attempts denied by self-protection, by kind',
      labelNames: ['attempt'],
      registers,
      collect() {
        for (const [attempt, n] of Object.entries(status().tamper)) this.set({ attempt }, n);
      },
    });
    if (sources.subscriberLost) {
      const lost = sources.subscriberLost;
      new Gauge({
        name: 'krsi_subscriber_lost_events',
        help: 'Events `krsi events` subscribers lost because they read too slowly',
        registers,
        collect() {
          this.set(lost());
        },
      });
    }
    if (sources.processCacheSize) {
      const size = sources.processCacheSize;
      new Gauge({
        name: 'krsi_process_cache_entries',
        help: "Processes in the agent's process cache",
        registers,
        collect() {
          this.set(size());
        },
      });
    }
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'krsi_' });
  }

  observe(event: KrsiEvent): void {
    this.events.inc({ kind: event.kind });
    if ('decision' in event) this.decisions.inc({ kind: event.kind, decision: event.decision });
    if (event.kind === 'gap') this.gaps.inc({ ring: event.ring }, event.missing);
    if (event.kind === 'reaction') this.latency.observe(event.latency_us / 1e6);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Serves /metrics (and / for a pointer to it); resolves once listening. */
export function serveMetrics(metrics: AgentMetrics, address: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (req.url !== '/metrics') {
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/plain' }).end('krsi metrics are at /metrics\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
