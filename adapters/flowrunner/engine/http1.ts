/**
 * One keep-alive HTTP/1.1 connection to one origin, with one request in flight: the request head is
 * built as one string and written with its body in one `socket.write`, and the response is parsed
 * straight from the socket's chunks (Content-Length, chunked with extensions and trailers, or up to
 * the connection's close; 1xx interim answers skipped; no body for HEAD, 204 and 304). Error codes
 * are undici's (`UND_ERR_*`, `HPE_*`) or the socket's: the stats tell timeouts by their code.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface HttpResult {
  status: number;
  /** Empty when the request asked for no decoding. */
  headers: Record<string, string | string[]>;
  /** Empty when the request asked for no decoding. */
  text: string;
  /** The body was cut at MAX_BODY_BYTES. */
  truncated: boolean;
}

/** A response body kept in the context is cut here, and the rest is not read: memory stays bounded whatever the target answers. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** A response head (status line and headers) longer than this fails the request (Node's default header limit). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Idle time after which a kept-alive connection is not reused when the server gave no `Keep-Alive: timeout`. */
const KEEP_ALIVE_MS = 30_000;
/** Margin under the server's `Keep-Alive: timeout`, so a request is not written just as the server closes. */
const KEEP_ALIVE_MARGIN_MS = 2_000;
/** A chunk-size or trailer line longer than this is refused (an endless line would grow memory). */
const MAX_LINE_CHARS = 8 * 1024;

/** Methods whose request goes again on a fresh connection when a reused one closed before any answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
/** Methods that announce `content-length: 0` without a body. */
const EXPECTS_PAYLOAD = new Set(['PUT', 'POST', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\u0021-\u00ff]/;
const KEEP_ALIVE_TIMEOUT = /timeout=(\d+)/;

/** Header names and long values that passed their check: a user's profile headers repeat on every request. */
const checkedNames = new Map<string, string>();
const checkedValues = new Set<string>();
const MAX_CHECKED = 1000;

/** The lower-case name of a header key, or UND_ERR_INVALID_ARG for a key that is no HTTP token. */
function headerName(key: string): string {
  let name = checkedNames.get(key);
  if (name === undefined) {
    name = key.toLowerCase();
    if (!TOKEN.test(name)) throw invalidArgument('invalid header key');
    if (checkedNames.size >= MAX_CHECKED) checkedNames.clear();
    checkedNames.set(key, name);
  }
  return name;
}

function validValue(value: string): boolean {
  if (value.length < 32) return !BAD_VALUE.test(value);
  if (checkedValues.has(value)) return true;
  if (BAD_VALUE.test(value)) return false;
  if (checkedValues.size >= MAX_CHECKED) checkedValues.clear();
  checkedValues.add(value);
  return true;
}

export function httpError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

const invalidArgument = (message: string) => httpError('UND_ERR_INVALID_ARG', message);
const otherSideClosed = () => httpError('UND_ERR_SOCKET', 'other side closed');

/** Where the parser is in the current response. */
enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

/** What a timeout during each phase is called (undici's codes: the stats count them as timeouts). */
enum Phase {
  Connect,
  Headers,
  Body,
}

type Resolve = (r: HttpResult) => void;
type Reject = (e: Error) => void;

export interface Origin {
  /** `http://host:port` or `https://…`: where the socket connects. */
  origin: string;
  /** TLS server name when it differs from the origin's host (DNS override). */
  servername?: string;
}

export class Http1Connection {
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private readonly servername: string | undefined;
  /** `host: …\r\n` when the request brings no Host header. */
  private readonly hostLine: string;
  private socket: net.Socket | undefined;
  private tlsSession: Buffer | undefined;
  private idleSince = 0;
  private idleLimitMs = KEEP_ALIVE_MS;
  private timer: NodeJS.Timeout | undefined;
  private phase = Phase.Connect;

  // The request in flight.
  private resolve: Resolve | undefined;
  private reject: Reject | undefined;
  private payload: string | Buffer = '';
  private retryable = false;
  private decode = true;
  private isHead = false;
  /** The request asked for the connection to close after it (HEAD, `connection: close`, a body on GET). */
  private closeAfter = false;
  private gotBytes = false;

  // The response being parsed.
  private state = State.Idle;
  private pendingHead: Buffer | undefined;
  private line = '';
  private remaining = 0;
  private status = 0;
  private headers: Record<string, string | string[]> = {};
  private chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;
  private keepAlive = true;

  // The last head built, reused while method, path and headers object are the same: a user repeats its
  // requests, and the runner builds a new headers object whenever one would differ (it never changes a sent one).
  private lastMethod = '';
  private lastPath = '';
  private lastHeaders: Record<string, string> | undefined;
  private lastHead = '';
  /** The last undecoded final answer's head and what it said. */
  private lastHeadText = '';
  private lastFrame: Frame | undefined;

  constructor(
    o: Origin,
    private readonly timeoutMs: number,
    private readonly lookup: net.LookupFunction,
  ) {
    const url = new URL(o.origin);
    this.secure = url.protocol === 'https:';
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port ? Number(url.port) : this.secure ? 443 : 80;
    this.servername = o.servername ?? (net.isIP(this.host) ? undefined : this.host);
    this.hostLine = `host: ${url.host}\r\n`;
  }

  /** Sends one request; the caller has no other request in flight on this connection. */
  send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    decode: boolean,
    resolve: Resolve,
    reject: Reject,
  ): void {
    let payload: string | Buffer;
    try {
      payload = this.request(method, path, headers, body);
    } catch (err) {
      reject(err as Error);
      return;
    }
    this.resolve = resolve;
    this.reject = reject;
    this.decode = decode;
    this.isHead = method === 'HEAD';
    this.payload = payload;
    const reused = this.reusable();
    this.retryable = reused && IDEMPOTENT.has(method);
    this.begin();
    if (!reused) this.connect();
    else {
      this.phase = Phase.Headers;
      this.arm();
    }
    this.write();
  }

  /**
   * Closes the socket and fails the request in flight (UND_ERR_DESTROYED) once it is closed: by then the
   * loop turn that reads what the socket still had is over, so nothing of it reaches the target later.
   */
  destroy(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const reject = this.reject;
    this.fail(undefined);
    const err = httpError('UND_ERR_DESTROYED', 'The client is destroyed');
    const s = this.socket;
    if (!s || s.closed) {
      reject?.(err);
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) =>
      s.once('close', () => {
        reject?.(err);
        resolve();
      }),
    );
    this.drop();
    return closed;
  }

  /** The request's bytes: cached head for a repeated request without body, else built and checked as undici does. */
  private request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
  ): string | Buffer {
    if (body === undefined && headers === this.lastHeaders && path === this.lastPath && method === this.lastMethod) {
      this.closeAfter = false;
      return this.lastHead;
    }
    if (!TOKEN.test(method)) throw invalidArgument('invalid request method');
    if ((path[0] !== '/' && !/^https?:\/\//.test(path)) || BAD_PATH.test(path))
      throw invalidArgument('invalid request path');
    let host = this.hostLine;
    let close = method === 'HEAD';
    let lines = '';
    for (const key of Object.keys(headers)) {
      const val = headers[key];
      if (val === undefined) continue;
      if (typeof val !== 'string' || !validValue(val)) throw invalidArgument(`invalid ${key} header`);
      const name = headerName(key);
      if (name === 'host') host = `host: ${val}\r\n`;
      else if (name === 'content-length') {
        if (!/^\d+$/.test(val)) throw invalidArgument('invalid content-length header');
      } else if (name === 'connection') {
        for (const t of val.toLowerCase().split(',')) {
          const token = t.trim();
          if (!TOKEN.test(token)) throw invalidArgument('invalid connection header');
          if (token === 'close') close = true;
        }
      } else if (name === 'transfer-encoding' || name === 'keep-alive' || name === 'upgrade')
        throw invalidArgument(`invalid ${name} header`);
      else if (name === 'expect') throw httpError('UND_ERR_NOT_SUPPORTED', 'expect header not supported');
      else lines += `${key}: ${val}\r\n`;
    }
    const length = body === undefined ? 0 : Buffer.byteLength(body);
    // A body on a method that expects none: the connection is not reused after it.
    this.closeAfter = close || (length > 0 && !EXPECTS_PAYLOAD.has(method));
    const head = `${method} ${path} HTTP/1.1\r\n${host}connection: ${close ? 'close' : 'keep-alive'}\r\n${lines}`;
    if (length === 0) {
      const whole = head + (EXPECTS_PAYLOAD.has(method) ? 'content-length: 0\r\n\r\n' : '\r\n');
      if (body === undefined && !close) {
        this.lastMethod = method;
        this.lastPath = path;
        this.lastHeaders = headers;
        this.lastHead = whole;
      }
      return whole;
    }
    const withLength = `${head}content-length: ${length}\r\n\r\n`;
    // Same length in UTF-16 units and UTF-8 bytes: all ASCII, so one latin1 string carries head and body.
    if (length === body!.length) return withLength + body;
    return Buffer.concat([Buffer.from(withLength, 'latin1'), Buffer.from(body!, 'utf8')]);
  }

  /** Whether the current socket can take the next request (open, idle for less than the keep-alive time). */
  private reusable(): boolean {
    const s = this.socket;
    if (!s) return false;
    if (s.destroyed || !s.writable || performance.now() - this.idleSince > this.idleLimitMs) {
      this.drop();
      return false;
    }
    return true;
  }

  private connect(): void {
    this.idleLimitMs = KEEP_ALIVE_MS;
    this.phase = Phase.Connect;
    this.arm();
    const socket = this.secure
      ? tls.connect({
          host: this.host,
          port: this.port,
          servername: this.servername,
          session: this.tlsSession,
          ALPNProtocols: ['http/1.1'],
          lookup: this.lookup,
        })
      : net.connect({ host: this.host, port: this.port, lookup: this.lookup });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.once(this.secure ? 'secureConnect' : 'connect', () => {
      if (socket !== this.socket || this.state === State.Idle) return;
      this.phase = Phase.Headers;
      this.arm();
    });
    if (this.secure) (socket as tls.TLSSocket).on('session', (s: Buffer) => (this.tlsSession = s));
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('end', () => this.onEnd(socket));
    socket.on('error', (err: Error) => this.onError(socket, err));
    socket.on('close', () => this.onEnd(socket));
  }

  private write(): void {
    const p = this.payload;
    if (typeof p === 'string') this.socket!.write(p, 'latin1');
    else this.socket!.write(p);
  }

  private begin(): void {
    this.state = State.Head;
    this.gotBytes = false;
    this.pendingHead = undefined;
    this.status = 0;
    this.headers = {};
    this.chunks = [];
    this.size = 0;
    this.truncated = false;
    this.keepAlive = !this.closeAfter;
  }

  /** One timer per connection, restarted per request; when it fires between requests it does nothing. */
  private arm(): void {
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
      this.timer.unref();
    }
  }

  private onTimeout(): void {
    if (this.state === State.Idle) return;
    const err =
      this.phase === Phase.Connect
        ? httpError('UND_ERR_CONNECT_TIMEOUT', `Connect Timeout Error (timeout: ${this.timeoutMs}ms)`)
        : this.phase === Phase.Headers
          ? httpError('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error')
          : httpError('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error');
    this.fail(err);
    this.drop();
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    if (this.state === State.Idle) {
      // Bytes nobody asked for: the connection cannot be trusted for the next request.
      this.drop();
      return;
    }
    this.gotBytes = true;
    try {
      this.parse(chunk);
    } catch (err) {
      this.fail(err as Error);
      this.drop();
    }
  }

  /** The server's end of the socket (end, close) or its error: completes a close-delimited body, else fails. */
  private onEnd(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    socket.destroy();
    this.ended(otherSideClosed());
  }

  private onError(socket: net.Socket, err: Error): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    socket.destroy();
    // A reset during a close-delimited body ends the body, as a close would.
    this.ended(this.state === State.UntilClose && (err as { code?: string }).code === 'ECONNRESET' ? undefined : err);
  }

  private ended(err: Error | undefined): void {
    if (this.state === State.Idle) return;
    if (this.state === State.UntilClose) {
      this.complete();
      return;
    }
    if (!this.gotBytes && this.retryable) {
      // A kept-alive socket the server closed before answering: the (idempotent) request goes once more, on a new one.
      this.retryable = false;
      this.connect();
      this.write();
      return;
    }
    this.fail(err ?? otherSideClosed());
  }

  /** Ends the request in flight with `err` (or without settling it, for destroy). */
  private fail(err: Error | undefined): void {
    const reject = this.reject;
    this.state = State.Idle;
    this.resolve = this.reject = undefined;
    this.chunks = [];
    if (err) reject?.(err);
  }

  private drop(): void {
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
  }

  private parse(chunk: Buffer): void {
    let buf = chunk;
    let i = 0;
    while (i < buf.length || this.state === State.Head) {
      switch (this.state) {
        case State.Head: {
          if (this.pendingHead) {
            buf = Buffer.concat([this.pendingHead, buf.subarray(i)]);
            i = 0;
            this.pendingHead = undefined;
          }
          const end = buf.indexOf('\r\n\r\n', i, 'latin1');
          if (end < 0) {
            if (buf.length - i > MAX_HEAD_BYTES) throw httpError('UND_ERR_HEADERS_OVERFLOW', 'Headers Overflow Error');
            if (i < buf.length) this.pendingHead = buf.subarray(i);
            return;
          }
          if (end - i > MAX_HEAD_BYTES) throw httpError('UND_ERR_HEADERS_OVERFLOW', 'Headers Overflow Error');
          this.head(buf.toString('latin1', i, end));
          i = end + 4;
          if ((this.state as State) === State.Idle) {
            this.complete(i < buf.length);
            return;
          }
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - i);
          this.remaining -= n;
          if (!this.body(buf, i, i + n)) return;
          i += n;
          if (this.remaining === 0) {
            this.complete(i < buf.length);
            return;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - i);
          this.remaining -= n;
          if (!this.body(buf, i, i + n)) return;
          i += n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          const expected = this.remaining === 2 ? 13 : 10;
          if (buf[i] !== expected) throw httpError('HPE_STRICT', 'Expected CRLF after chunk');
          i++;
          if (--this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.ChunkSize:
        case State.Trailers: {
          const nl = buf.indexOf(10, i);
          const stop = nl < 0 ? buf.length : nl + 1;
          this.line += buf.toString('latin1', i, stop);
          i = stop;
          if (nl < 0) {
            if (this.line.length > MAX_LINE_CHARS)
              throw httpError('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'Chunk line too long');
            break;
          }
          const line = this.line;
          this.line = '';
          if (!line.endsWith('\r\n')) throw httpError('HPE_STRICT', 'Expected CRLF');
          if (this.state === State.Trailers) {
            if (line.length === 2) {
              this.complete(i < buf.length);
              return;
            }
            break;
          }
          // The size, then optional `;name=value` extensions (ignored).
          const m = /^([0-9a-fA-F]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n$/.exec(line);
          if (!m) throw httpError('HPE_INVALID_CHUNK_SIZE', 'Invalid character in chunk size');
          const size = Number.parseInt(m[1]!, 16);
          if (size === 0) this.state = State.Trailers;
          else {
            this.state = State.ChunkData;
            this.remaining = size;
          }
          break;
        }
        case State.UntilClose: {
          if (!this.body(buf, i, buf.length)) return;
          i = buf.length;
          break;
        }
        default:
          return;
      }
    }
    if ((this.state as State) !== State.Head && this.phase !== Phase.Body) this.phase = Phase.Body;
    if (this.phase === Phase.Body) this.arm();
  }

  /** Status line and headers (`text` without the blank line); sets the body's state, Idle for none. */
  private head(text: string): void {
    const decode = this.decode;
    let frame: Frame;
    if (!decode && text === this.lastHeadText) frame = this.lastFrame!;
    else {
      frame = parseHead(text, decode);
      // A server repeats its answer's head (the Date header changes once a second): an undecoded one is read once.
      if (!decode && frame.status >= 200) {
        this.lastHeadText = text;
        this.lastFrame = frame;
      }
    }
    if (frame.idleLimitMs !== undefined) this.idleLimitMs = frame.idleLimitMs;
    const status = frame.status;
    if (status < 200) {
      if (status === 101) throw httpError('UND_ERR_SOCKET', 'unexpected protocol switch (101)');
      // An interim answer (100 Continue, 103 Early Hints): the real one follows.
      this.state = State.Head;
      return;
    }
    this.status = status;
    this.headers = frame.headers ?? {};
    this.keepAlive &&= frame.keepAlive && this.idleLimitMs > 0;
    if (this.isHead || status === 204 || status === 304) this.state = State.Idle;
    else if (frame.chunked) {
      this.state = State.ChunkSize;
      this.line = '';
    } else if (frame.encoded || frame.length < 0) {
      this.state = State.UntilClose;
      this.keepAlive = false;
    } else {
      this.remaining = frame.length;
      this.state = frame.length === 0 ? State.Idle : State.Length;
    }
  }

  /** Counts (and keeps, when decoding) body bytes; false when the cap was passed and the response is complete. */
  private body(buf: Buffer, start: number, end: number): boolean {
    if (end === start) return true;
    this.size += end - start;
    if (this.decode) this.chunks.push(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
    if (this.size > MAX_BODY_BYTES) {
      // Enough: keep the first MiB and drop the connection instead of reading an endless answer to its end.
      this.truncated = true;
      this.keepAlive = false;
      this.complete();
      return false;
    }
    return true;
  }

  /** The response is whole (`extra`: bytes followed it, so the connection cannot be trusted with another). */
  private complete(extra = false): void {
    const chunks = this.chunks;
    let text = '';
    if (chunks.length > 0) {
      let buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (buf.length > MAX_BODY_BYTES) buf = buf.subarray(0, MAX_BODY_BYTES);
      text = buf.toString('utf8');
    }
    const resolve = this.resolve;
    const result: HttpResult = { status: this.status, headers: this.headers, text, truncated: this.truncated };
    this.resolve = this.reject = undefined;
    this.state = State.Idle;
    this.chunks = [];
    this.headers = {};
    if (!this.keepAlive || extra) this.drop();
    else this.idleSince = performance.now();
    resolve?.(result);
  }
}

/** What a response head says about its body and its connection. */
interface Frame {
  status: number;
  /** Decoded headers (only when asked for). */
  headers: Record<string, string | string[]> | undefined;
  keepAlive: boolean;
  /** Content-Length, -1 without one. */
  length: number;
  chunked: boolean;
  /** A Transfer-Encoding other than chunked last: the body ends at the close. */
  encoded: boolean;
  /** From `Keep-Alive: timeout=N`. */
  idleLimitMs: number | undefined;
}

function parseHead(text: string, decodeFinal: boolean): Frame {
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  if (
    !text.startsWith('HTTP/1.') ||
    (text[7] !== '1' && text[7] !== '0') ||
    text[8] !== ' ' ||
    !/^\d{3}$/.test(text.slice(9, 12)) ||
    (eol > 12 && text[12] !== ' ')
  )
    throw httpError(
      'HPE_INVALID_CONSTANT',
      `Expected an HTTP/1.x status line, got ${JSON.stringify(text.slice(0, 40))}`,
    );
  const status = Number(text.slice(9, 12));
  const frame: Frame = {
    status,
    headers: undefined,
    keepAlive: text[7] === '1',
    length: -1,
    chunked: false,
    encoded: false,
    idleLimitMs: undefined,
  };
  const decode = decodeFinal && status >= 200;
  const headers: Record<string, string | string[]> = {};
  for (let pos = eol + 2; pos < text.length; ) {
    let next = text.indexOf('\r\n', pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon > next) throw httpError('HPE_INVALID_HEADER_TOKEN', 'Invalid header field');
    const n = colon - pos;
    if (decode || n === 10 || n === 14 || n === 17) {
      const name = text.slice(pos, colon).toLowerCase();
      const value = text.slice(colon + 1, next).trim();
      if (n === 14 && name === 'content-length') {
        if (!/^\d+$/.test(value) || (frame.length >= 0 && frame.length !== Number(value)))
          throw httpError('HPE_UNEXPECTED_CONTENT_LENGTH', 'Invalid Content-Length');
        frame.length = Number(value);
      } else if (n === 17 && name === 'transfer-encoding') {
        frame.encoded = true;
        frame.chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      } else if (n === 10 && name === 'connection') {
        const v = value.toLowerCase();
        if (/(?:^|,)\s*close\s*(?:,|$)/.test(v)) frame.keepAlive = false;
        else if (/(?:^|,)\s*keep-alive\s*(?:,|$)/.test(v)) frame.keepAlive = true;
      } else if (n === 10 && name === 'keep-alive') {
        const m = KEEP_ALIVE_TIMEOUT.exec(value);
        if (m) frame.idleLimitMs = Math.min(Number(m[1]) * 1000 - KEEP_ALIVE_MARGIN_MS, KEEP_ALIVE_MS);
      }
      if (decode) addHeader(headers, name, value);
    }
    pos = next + 2;
  }
  if (decode) frame.headers = headers;
  return frame;
}

/** Repeated names become arrays, as undici's parseHeaders makes them (set-cookie). */
function addHeader(headers: Record<string, string | string[]>, name: string, value: string): void {
  const had = Object.hasOwn(headers, name) ? headers[name] : undefined;
  if (had === undefined) {
    if (name === '__proto__')
      Object.defineProperty(headers, name, { value, enumerable: true, configurable: true, writable: true });
    else headers[name] = value;
  } else if (typeof had === 'string') headers[name] = [had, value];
  else had.push(value);
}
