/**
 * The Socket.IO channel: built with the agent (createAgent), attached to the server main listens on, at
 * /socket.io. Handshake: the browser guard and the HTTP tokens (handshake.ts); a socket whose token leaves
 * the tokens file is disconnected at the next reload (revocation.ts). Each connection gets `connected`,
 * then sends commands from `commands` (registry.ts) and hears the journal through its subscriptions.
 * Socket.IO's in-memory connection-state recovery is off: a client resumes from the journal by seq.
 */
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Server, Socket } from 'socket.io';
import { AgentError } from '../../../../adapters/errors.js';
import type { Tokens } from '../auth/tokens.js';
import type { Metrics } from '../metrics.js';
import type { AgentService } from '../service/agent-service.js';
import type { Store } from '../store/store.js';
import { errorBody } from './answers.js';
import { SocketAudit } from './audit.js';
import { builtinCommands } from './commands/index.js';
import { dispatchCommands } from './dispatch.js';
import { authenticateSocket, type SocketAuth, transportGuard } from './handshake.js';
import { CommandRegistry } from './registry.js';
import { watchRevocations } from './revocation.js';
import { Subscriptions } from './subscriptions.js';

export const SOCKET_IO_PATH = '/socket.io';
/** Sockets that passed the handshake, for `broadcast`. */
const AUTHENTICATED_ROOM = 'authenticated';

export interface SocketChannelDeps {
  service: AgentService;
  store: Store;
  tokens?: Tokens;
  logger: Logger;
  metrics: Metrics;
  version: string;
  /** The agent's name in `connected` (AGENT_NAME, or the host name). */
  agentName: string;
  /** As the HTTP browser guard: without tokens (and without --insecure-no-auth) only loopback Host names. */
  loopbackHostsOnly: boolean;
  /** The largest message a client may send (the HTTP body limit). */
  maxMessageBytes: number;
  maxJsonDepth: number;
}

export class SocketChannel {
  /** Every command the channel serves; register more before or after `attach`. */
  readonly commands = new CommandRegistry();
  private readonly subscriptions: Subscriptions;
  private readonly auth = new Map<string, SocketAuth>();
  private readonly audit: SocketAudit;
  private readonly logger: Logger;
  private io?: Server;
  private stopRevocations = () => {};
  private closed = false;

  constructor(private readonly d: SocketChannelDeps) {
    this.logger = d.logger.child({ component: 'socket.io' });
    this.audit = new SocketAudit(d.store);
    this.subscriptions = new Subscriptions(d.service);
    this.commands.register(...builtinCommands(d.service, this.subscriptions));
    d.metrics.addJournalConsumer('socket_io', this.subscriptions);
    d.metrics.attachSockets(() => this.connected);
  }

  /** Sockets connected and authenticated now. */
  get connected(): number {
    return this.auth.size;
  }

  /**
   * Serves the channel on `server` (once). Socket.IO itself (about 13 MB resident) is loaded by the first
   * request to /socket.io, not at start: an agent nobody connects to over Socket.IO does not hold it. That
   * first request waits for the load, then goes to Socket.IO as if it had been there all along.
   */
  attach(server: HttpServer): void {
    if (this.attached) throw new Error('the socket channel is attached already');
    this.attached = true;
    const isChannel = (req: IncomingMessage) => (req.url ?? '').startsWith(`${SOCKET_IO_PATH}/`);
    // Until Socket.IO is loaded, its requests wait here; the rest go to the listeners there were (Koa).
    const others = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.io && isChannel(req))
        return void this.load(server).then(
          () => server.emit('request', req, res),
          (err: unknown) => this.loadFailed(err, () => res.writeHead(503).end()),
        );
      for (const listener of others) listener.call(server, req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.io) return; // Socket.IO's own listener answers
      if (!isChannel(req)) return void socket.destroy();
      void this.load(server).then(
        () => server.emit('upgrade', req, socket, head),
        (err: unknown) => this.loadFailed(err, () => socket.destroy()),
      );
    });
  }

  private attached = false;
  private loading?: Promise<void>;

  private load(server: HttpServer): Promise<void> {
    this.loading ??= import('socket.io').then(({ Server: SocketServer }) => {
      if (this.closed) throw new Error('the socket channel is closed');
      this.start(server, SocketServer);
    });
    return this.loading;
  }

  private loadFailed(err: unknown, answer: () => void): void {
    this.logger.error({ err }, 'the Socket.IO channel could not start');
    answer();
  }

  private start(server: HttpServer, SocketServer: typeof Server): void {
    const io = new SocketServer(server, {
      path: SOCKET_IO_PATH,
      serveClient: false,
      maxHttpBufferSize: this.d.maxMessageBytes,
      // No CORS headers: a web page of another site cannot read the transport's answers.
      allowRequest: transportGuard({ loopbackHostsOnly: this.d.loopbackHostsOnly }),
    });
    io.use((socket, next) => {
      try {
        socket.data.auth = authenticateSocket(this.d.tokens, socket);
        next();
      } catch (err) {
        const error = errorBody(err, 'connect', this.logger);
        this.audit.refused(socket, error);
        next(Object.assign(new Error(error.message), { data: error }));
      }
    });
    io.on('connection', (socket) => this.onConnection(socket));
    this.stopRevocations = watchRevocations(this.d.tokens, () => this.sockets(), {
      auth: (socket) => this.auth.get(socket.id),
      update: (socket, auth) => this.auth.set(socket.id, auth),
      revoke: (socket) => this.revoke(socket),
    });
    this.io = io;
  }

  /**
   * Runs `start` while at least one socket is connected (from the first connection until the last one
   * leaves, again and again); `start` returns its stop. For work only listeners need (the workers' watch).
   */
  whileConnected(start: () => () => void): void {
    this.presence.push({ start });
    if (this.auth.size > 0) this.presence[this.presence.length - 1].stop = start();
  }

  private readonly presence: Array<{ start: () => () => void; stop?: () => void }> = [];

  private presenceStarted(): void {
    for (const p of this.presence) p.stop ??= p.start();
  }

  private presenceEnded(): void {
    for (const p of this.presence) {
      p.stop?.();
      p.stop = undefined;
    }
  }

  /** Emits `event` to every authenticated socket (events that are not a subscription's, such as a watch's). */
  broadcast(event: string, data: unknown): void {
    this.io?.to(AUTHENTICATED_ROOM).emit(event, data);
  }

  /** Disconnects every socket and stops serving; the HTTP server stays up (main closes it). */
  close(): void {
    this.closed = true;
    this.stopRevocations();
    this.presenceEnded();
    for (const socket of this.sockets()) socket.disconnect(true);
    this.io?.engine.close();
  }

  private sockets(): Socket[] {
    return this.io ? [...this.io.of('/').sockets.values()] : [];
  }

  private onConnection(socket: Socket): void {
    const auth = socket.data.auth as SocketAuth | undefined;
    if (!auth) return void socket.disconnect(true); // the middleware always sets it; never serve without
    this.auth.set(socket.id, auth);
    if (this.auth.size === 1) this.presenceStarted();
    void socket.join(AUTHENTICATED_ROOM);
    socket.on('disconnect', () => {
      this.subscriptions.close(socket);
      this.auth.delete(socket.id);
      if (this.auth.size === 0) this.presenceEnded();
    });
    dispatchCommands(socket, {
      commands: this.commands,
      logger: this.logger,
      audit: this.audit,
      maxJsonDepth: this.d.maxJsonDepth,
      context: (s) => ({
        principal: this.auth.get(s.id)?.principal ?? auth.principal,
        socket: s,
        emit: (event, data) => s.emit(event, data),
      }),
    });
    socket.emit('connected', {
      message: `connected to runtime-agent ${this.d.agentName} as ${auth.principal.name}`,
      agent: this.d.agentName,
      version: this.d.version,
      role: auth.principal.role,
    });
  }

  private revoke(socket: Socket): void {
    const error = errorBody(
      new AgentError('unauthorized', 'the token of this connection was revoked (it is no longer in the tokens file)'),
      'auth',
      this.logger,
    );
    socket.emit('error', error);
    socket.disconnect(true);
  }
}
