// Who is at the other end of a Unix socket: the kernel's SO_PEERCRED, read
// through the native binding from the fd behind a net.Socket. The kernel
// records the peer at connect() time, so the answer cannot be forged by the
// peer, but a pid may name another process once the peer has exited.
import type { Socket } from 'node:net';
import { native, type PeerCredentials } from '../bpf/native.js';

export type { PeerCredentials };

/** The fd behind a net.Socket: libuv's handle exposes it on Linux (-1 or absent once closed). */
function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * pid, uid and gid of the process at the other end of a connected Unix
 * socket (server or client side). Throws an Error if the socket has no fd
 * (destroyed, or not a socket of this process's own event loop); the
 * binding's TypeError if it is not a Unix socket.
 */
export function socketPeerCredentials(socket: Socket): PeerCredentials {
  const fd = socketFd(socket);
  if (fd === undefined) {
    throw new Error('socketPeerCredentials: the socket has no file descriptor (destroyed or not connected)');
  }
  return native.peerCredentials(fd);
}
