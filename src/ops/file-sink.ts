// `krsi run --events-file PATH`: the event stream as JSON lines in a file,
// rotated by size (PATH.1 is the newest old file, PATH.K the oldest kept).
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export interface FileSinkOptions {
  path: string;
  /** A file is rotated before a line would take it past this size. */
  maxBytes: number;
  /** Old files kept besides the current one (0: the current file is truncated instead). */
  keep: number;
}

export class RotatingFile {
  private fd: number;
  private size: number;
  rotations = 0;

  constructor(private readonly opts: FileSinkOptions) {
    this.fd = openSync(opts.path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.size > 0 && this.size + bytes > this.opts.maxBytes) this.rotate();
    writeSync(this.fd, line);
    this.size += bytes;
  }

  rotate(): void {
    closeSync(this.fd);
    const { path, keep } = this.opts;
    rmSync(`${path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      try {
        renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (keep > 0) renameSync(path, `${path}.1`);
    else rmSync(path, { force: true });
    this.fd = openSync(path, 'a', 0o600);
    this.size = 0;
    this.rotations++;
  }

  close(): void {
    closeSync(this.fd);
  }
}
