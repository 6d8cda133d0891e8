// Where the agent's control socket is, unless told otherwise (--socket,
// KRSI_SOCKET). Its own module: the CLI names it in every command's help
// without loading the protocol.

export const DEFAULT_SOCKET_PATH = '/run/krsi/krsi.sock';
