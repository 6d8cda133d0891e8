// Where the agent's events go besides stdout: subscribers of the control
// socket (`krsi events`), each with its filter and a bounded queue. A
// subscriber that does not keep up loses events, and is told how many; it
// never holds the agent up.
import type { KrsiEvent } from '../events/schema.js';
import { compileFilter, type EventFilter } from './filter.js';

export interface Sink {
  /** Buffered bytes not yet taken by the reader. */
  pending(): number;
  write(line: string): void;
}

export interface Subscription {
  /** Events dropped for this subscriber because its queue was full. */
  lost: number;
  close(): void;
}

/** A subscriber whose reader is this far behind loses events. */
export const DEFAULT_SUBSCRIBER_QUEUE_BYTES = 4 * 1024 * 1024;
export const BACKLOG_EVENTS = 1000;

interface Subscriber {
  accepts: (e: KrsiEvent) => boolean;
  sink: Sink;
  lost: number;
  unreported: number;
}

export class EventHub {
  private readonly subscribers = new Set<Subscriber>();
  private readonly backlog: KrsiEvent[] = [];
  /** Events lost by all subscribers together. */
  lostTotal = 0;

  constructor(private readonly queueBytes = DEFAULT_SUBSCRIBER_QUEUE_BYTES) {}

  get count(): number {
    return this.subscribers.size;
  }

  publish(event: KrsiEvent): void {
    this.backlog.push(event);
    if (this.backlog.length > BACKLOG_EVENTS) this.backlog.shift();
    if (this.subscribers.size === 0) return;
    let line: string | undefined;
    for (const s of this.subscribers) {
      if (!s.accepts(event)) continue;
      if (s.sink.pending() > this.queueBytes) {
        s.lost++;
        s.unreported++;
        this.lostTotal++;
        continue;
      }
      if (s.unreported > 0) {
        s.sink.write(`${JSON.stringify({ lost: s.unreported })}\n`);
        s.unreported = 0;
      }
      line ??= `${JSON.stringify({ event })}\n`;
      s.sink.write(line);
    }
  }

  /** Sends the last `backlog` matching events at once, then every matching one as it comes. */
  subscribe(filter: EventFilter, sink: Sink, backlog = 0): Subscription {
    const accepts = compileFilter(filter);
    const sub: Subscriber = { accepts, sink, lost: 0, unreported: 0 };
    if (backlog > 0) {
      for (const e of this.backlog.filter(accepts).slice(-backlog)) sink.write(`${JSON.stringify({ event: e })}\n`);
    }
    // What follows comes as it happens.
    sink.write(`${JSON.stringify({ live: true })}\n`);
    this.subscribers.add(sub);
    const subscribers = this.subscribers;
    return {
      get lost() {
        return sub.lost;
      },
      close() {
        subscribers.delete(sub);
      },
    };
  }
}
