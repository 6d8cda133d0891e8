// Kernel strings are bytes. Events carry them as UTF-8 text; bytes that are
// not valid UTF-8 (a hostile file name, a binary argv) become U+FFFD in the
// text, and the exact bytes travel alongside in base64 so nothing is lost and
// two different names can never print the same.

const strict = new TextDecoder('utf-8', { fatal: true });
const lossy = new TextDecoder('utf-8', { fatal: false });

export interface DecodedText {
  text: string;
  /** Present only when the bytes were not valid UTF-8. */
  base64?: string;
}

export function decodeText(bytes: Uint8Array): DecodedText {
  try {
    return { text: strict.decode(bytes) };
  } catch {
    return { text: lossy.decode(bytes), base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
  }
}

/** The bytes before the first NUL (a C string in a fixed-size field). */
export function cString(bytes: Uint8Array): Uint8Array {
  const end = bytes.indexOf(0);
  return end < 0 ? bytes : bytes.subarray(0, end);
}

/** Splits NUL-terminated strings laid end to end; a last string without its NUL is kept. */
export function splitNulTerminated(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0, start);
    if (end < 0) end = bytes.length;
    out.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return out;
}

/**
 * Makes text safe for a terminal: control characters (escape sequences,
 * carriage returns that would overwrite a line) are shown as \xNN.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** An argument as a shell would need it quoted, control characters escaped. */
export function quoteArg(arg: string): string {
  const safe = printable(arg);
  return /^[\w@%+=:,./-]+$/.test(safe) ? safe : `'${safe.replace(/'/g, `'\\''`)}'`;
}
