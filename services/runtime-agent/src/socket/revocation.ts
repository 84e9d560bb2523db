/**
 * When the tokens file changes (checked every TOKENS_RELOAD_SECONDS), each socket's token is verified
 * again: one no longer there is revoked (the socket is told and disconnected); one whose role changed
 * keeps its connection with the new role, which the next command is checked against.
 */
import type { Socket } from 'socket.io';
import type { Tokens } from '../auth/tokens.js';
import type { SocketAuth } from './handshake.js';

export interface RevocationHooks {
  auth(socket: Socket): SocketAuth | undefined;
  update(socket: Socket, auth: SocketAuth): void;
  revoke(socket: Socket): void;
}

/** Returns the function that stops watching. */
export function watchRevocations(
  tokens: Tokens | undefined,
  sockets: () => Socket[],
  hooks: RevocationHooks,
): () => void {
  if (!tokens) return () => {};
  return tokens.onChange(() => {
    for (const socket of sockets()) {
      const auth = hooks.auth(socket);
      if (auth?.token === undefined) continue;
      const principal = tokens.verify(auth.token);
      if (!principal) hooks.revoke(socket);
      else if (principal.role !== auth.principal.role || principal.name !== auth.principal.name)
        hooks.update(socket, { principal, token: auth.token });
    }
  });
}
