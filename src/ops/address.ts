// The metrics listener's address, parsed without loading prom-client.
/** host:port, [v6]:port or a bare port (then 127.0.0.1). */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not an address: ${text} (expected host:port, e.g. 127.0.0.1:9464)`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}
