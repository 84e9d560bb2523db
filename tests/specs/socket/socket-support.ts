/** Socket.IO clients of a real agent process for the channel's specs: connect, command, wait for events. */
import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import { waitFor } from '../support/wait.js';

/** How long a command's acknowledgement may take. */
const ACK_TIMEOUT_MS = 10_000;

export interface Received {
  event: string;
  data: any;
}

export interface Client {
  socket: Socket;
  /** Every server event received so far, in order. */
  received: Received[];
  /** The `connected` event's data. */
  welcome: any;
  /** Sends a command and resolves with its acknowledgement. */
  command(name: string, payload?: unknown): Promise<any>;
  /** Events named `event` received so far. */
  events(event: string): any[];
  /** Resolves with the first event (received before or after the call) that `match` accepts. */
  waitForEvent(event: string, match?: (data: any) => boolean, timeoutMs?: number): Promise<any>;
  close(): void;
}

export interface ConnectOptions {
  token?: string;
  extraHeaders?: Record<string, string>;
  transports?: string[];
}

/** Every client opened, closed after the test file (a failed test leaves none connected). */
const open = new Set<Socket>();
after(() => {
  for (const s of open) s.close();
  open.clear();
});

function newSocket(agent: { url: string }, options: ConnectOptions): Socket {
  const socket = io(agent.url, {
    path: '/socket.io',
    auth: options.token === undefined ? {} : { token: options.token },
    extraHeaders: options.extraHeaders,
    transports: options.transports ?? ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 10_000,
  });
  open.add(socket);
  return socket;
}

/** Connects and resolves once the server said `connected`; rejects with the connect_error otherwise. */
export async function connect(agent: { url: string }, options: ConnectOptions = {}): Promise<Client> {
  const socket = newSocket(agent, options);
  const received: Received[] = [];
  socket.onAny((event: string, data: unknown) => received.push({ event, data }));
  const welcome = await new Promise<any>((resolve, reject) => {
    socket.once('connected', resolve);
    socket.once('connect_error', reject);
  });
  const events = (event: string) => received.filter((r) => r.event === event).map((r) => r.data);
  return {
    socket,
    received,
    welcome,
    events,
    command: (name, payload = {}) => socket.timeout(ACK_TIMEOUT_MS).emitWithAck(name, payload),
    waitForEvent: (event, match = () => true, timeoutMs = 15_000) =>
      waitFor(() => events(event).find(match), `a ${event} event`, timeoutMs),
    close: () => {
      socket.close();
      open.delete(socket);
    },
  };
}

/** The connect_error a handshake is refused with (it must be refused). */
export async function refusedHandshake(agent: { url: string }, options: ConnectOptions = {}): Promise<any> {
  const socket = newSocket(agent, options);
  const got: string[] = [];
  socket.onAny((event: string) => got.push(event));
  try {
    const err = await new Promise<any>((resolve, reject) => {
      socket.once('connect_error', resolve);
      socket.once('connect', () => reject(new Error('the handshake was accepted')));
    });
    assert.deepEqual(got, [], 'a refused client is sent nothing');
    return err;
  } finally {
    socket.close();
    open.delete(socket);
  }
}

/** Asserts a failed acknowledgement: `{ ok: false, error }` of `type`; answers the error. */
export function assertFailed(ack: any, type: string): any {
  assert.equal(ack?.ok, false, `expected a failure, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error.error_type, type, JSON.stringify(ack.error));
  assert.equal(typeof ack.error.message, 'string');
  assert.equal(typeof ack.error.details, 'object');
  return ack.error;
}

/** The paths of a validation_error's problems. */
export function problemPaths(error: any): string[] {
  assert.ok(Array.isArray(error.details?.errors), JSON.stringify(error));
  return error.details.errors.map((p: { path: string }) => p.path);
}
