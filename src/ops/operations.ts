// What `krsi run` does with each event besides writing it to stdout:
// enrichment (before it goes anywhere), the rotating file sink, the control
// socket's subscribers, and the Prometheus metrics.
import type { Server } from 'node:http';
import type { AgentStatus } from '../agent/control-api.js';
import type { KrsiEvent } from '../events/schema.js';
import { log } from '../log.js';
import { Enricher } from './enrich.js';
import { EventHub } from './event-hub.js';
import { RotatingFile, type FileSinkOptions } from './file-sink.js';
import { AgentMetrics, serveMetrics } from './metrics.js';

export interface OperationsOptions {
  enrich: boolean;
  eventsFile?: FileSinkOptions;
}

export class Operations {
  readonly hub = new EventHub();
  readonly enricher: Enricher | null;
  private readonly file: RotatingFile | null;
  private metrics: AgentMetrics | null = null;
  private server: Server | null = null;
  private fileFailed = false;

  constructor(opts: OperationsOptions) {
    this.enricher = opts.enrich ? new Enricher() : null;
    if (this.enricher) log.info(this.enricher.start(), 'process cache seeded from /proc');
    this.file = opts.eventsFile ? new RotatingFile(opts.eventsFile) : null;
  }

  /** Enriches the event in place; call before the event is written anywhere. */
  enrich(event: KrsiEvent): void {
    try {
      this.enricher?.enrich(event);
    } catch (err) {
      log.debug({ err }, 'enrichment failed');
    }
  }

  /** After stdout: the file, the subscribers, the metrics. */
  publish(event: KrsiEvent, line: string): void {
    if (this.file && !this.fileFailed) {
      try {
        this.file.write(`${line}\n`);
      } catch (err) {
        // A full disk must not stop enforcement or the other outputs.
        this.fileFailed = true;
        log.error({ err: (err as Error).message }, 'the events file cannot be written; it is given up until restart');
      }
    }
    this.hub.publish(event);
    this.metrics?.observe(event);
  }

  async serveMetrics(status: () => AgentStatus, address: { host: string; port: number }): Promise<void> {
    this.metrics = new AgentMetrics({
      status,
      subscriberLost: () => this.hub.lostTotal,
      ...(this.enricher ? { processCacheSize: () => this.enricher!.cache.size } : {}),
    });
    this.server = await serveMetrics(this.metrics, address);
    log.info(address, 'metrics on http://%s:%d/metrics', address.host, address.port);
  }

  async close(): Promise<void> {
    this.enricher?.stop();
    this.file?.close();
    const server = this.server;
    if (server) {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  }
}
