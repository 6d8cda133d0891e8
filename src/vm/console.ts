// What the guest prints on a serial port, turned back into the command's own
// output: firmware and boot noise before the start sentinel is kept aside (it
// is only shown when the command never starts), the tty's "\n" -> "\r\n" is
// undone, and nothing after the end sentinel gets through.

export function startSentinel(token: string): string {
  return `@@KRSI-VM-START:${token}@@`;
}

/** The end sentinel is followed by the status and "@@". */
export function endSentinelPrefix(token: string): string {
  return `@@KRSI-VM-END:${token}:`;
}

export type GuestOutputPhase = 'booting' | 'running' | 'finished';

// Kept bounded: a guest that spins printing before the sentinel must not grow
// the host's memory without limit.
const MAX_BOOT_LOG = 1 << 20;

/**
 * A stream filter for one serial port. Text is handled as latin1 so every byte
 * maps to one character and multi-byte characters split across chunks come
 * out intact.
 */
export class GuestOutputFilter {
  private phase: GuestOutputPhase = 'booting';
  private pending = '';
  private bootLogText = '';
  private status: number | undefined;
  private readonly start: string;
  private readonly endPrefix: string;

  constructor(
    token: string,
    private readonly emit: (bytes: Buffer) => void,
  ) {
    this.start = startSentinel(token);
    this.endPrefix = endSentinelPrefix(token);
  }

  get currentPhase(): GuestOutputPhase {
    return this.phase;
  }

  /** The status printed with the end sentinel, once seen. */
  get endStatus(): number | undefined {
    return this.status;
  }

  /** Everything printed before the command started (CRLF already undone). */
  get bootLog(): string {
    return Buffer.from(undoCrlf(this.bootLogText + (this.phase === 'booting' ? this.pending : '')), 'latin1').toString('utf8');
  }

  push(chunk: Buffer | string): void {
    if (this.phase === 'finished') return;
    this.pending += typeof chunk === 'string' ? Buffer.from(chunk, 'utf8').toString('latin1') : chunk.toString('latin1');
    if (this.phase === 'booting') this.scanForStart();
    if (this.phase === 'running') this.passThrough();
  }

  /** The port closed: whatever was held back was output after all. */
  end(): void {
    if (this.phase === 'running' && this.pending !== '') {
      this.emitText(undoCrlf(this.pending));
      this.pending = '';
    }
  }

  private scanForStart(): void {
    const at = this.pending.indexOf(this.start);
    if (at === -1) {
      // Keep enough to recognize a sentinel split across chunks.
      const keep = this.start.length - 1;
      if (this.pending.length > keep) {
        this.appendBootLog(this.pending.slice(0, this.pending.length - keep));
        this.pending = this.pending.slice(this.pending.length - keep);
      }
      return;
    }
    const lineEnd = this.pending.indexOf('\n', at + this.start.length);
    if (lineEnd === -1) return; // the rest of the sentinel line is still coming
    this.appendBootLog(this.pending.slice(0, at));
    this.pending = this.pending.slice(lineEnd + 1);
    this.phase = 'running';
  }

  private passThrough(): void {
    const at = this.pending.indexOf(this.endPrefix);
    if (at !== -1) {
      // Output that did not end with a newline runs straight into the sentinel.
      this.flushUpTo(at);
      const close = this.pending.indexOf('@@', this.endPrefix.length);
      if (close === -1) return; // the status is still coming
      const statusText = this.pending.slice(this.endPrefix.length, close);
      this.status = /^\d+$/.test(statusText) ? Number(statusText) : undefined;
      this.pending = '';
      this.phase = 'finished';
      return;
    }
    // Hold back a tail that could be the start of the end sentinel, and a
    // lone "\r" whose "\n" may be in the next chunk.
    this.flushUpTo(this.pending.length - heldBackLength(this.pending, this.endPrefix));
  }

  private flushUpTo(index: number): void {
    if (index <= 0) return;
    this.emitText(undoCrlf(this.pending.slice(0, index)));
    this.pending = this.pending.slice(index);
  }

  private emitText(latin1: string): void {
    if (latin1 !== '') this.emit(Buffer.from(latin1, 'latin1'));
  }

  private appendBootLog(text: string): void {
    this.bootLogText += text;
    if (this.bootLogText.length > MAX_BOOT_LOG) this.bootLogText = this.bootLogText.slice(-MAX_BOOT_LOG);
  }
}

/**
 * A serial tty turns each "\n" into "\r\n" (ONLCR), and the kernel console
 * does the same; replacing each "\r\n" by "\n" is the exact inverse, even for
 * a program that itself wrote "\r\n" (it arrives as "\r\r\n").
 */
export function undoCrlf(text: string): string {
  return text.replace(/\r\n/g, '\n');
}

/** Length of the longest suffix of `text` that is a proper prefix of `marker`, or 1 for a trailing "\r". */
export function heldBackLength(text: string, marker: string): number {
  for (let length = Math.min(marker.length - 1, text.length); length > 0; length--) {
    if (marker.startsWith(text.slice(text.length - length))) return length;
  }
  return text.endsWith('\r') ? 1 : 0;
}
