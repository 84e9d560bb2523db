/**
 * `pods/portforward` over WebSocket, as the apiserver proxies it to the kubelet's streaming server
 * (pkg/kubelet/cri/streaming/portforward/websocket.go): a GET with `Upgrade: websocket` to
 * /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=P, subprotocol `v4.channel.k8s.io` (or the plain
 * `channel.k8s.io`). Every binary message starts with its channel byte; for the i-th port, channel 2i carries
 * data and 2i+1 errors, and the first message on each of the two carries the port as two bytes,
 * little-endian. One WebSocket carries one TCP connection to the port.
 *
 * The "pod's port" is a TCP address the test names (`kube.forwardPod`, `kube.podBackend`; backends.ts), such
 * as an agent it started on loopback. Refusals before the upgrade are the apiserver's Status answers: 401 without the
 * token, 404 for a pod that does not exist, 400 without `ports`.
 */
import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { PodBackends } from './backends.js';
import type { KObj } from './json.js';

export interface ForwardRecord {
  namespace: string;
  pod: string;
  port: number;
}

const PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/;
const PROTOCOLS = ['v4.channel.k8s.io', 'channel.k8s.io'];

export class PortForwards {
  private readonly sockets = new Set<WebSocket>();
  /** Every forwarded connection, in order. */
  readonly forwarded: ForwardRecord[] = [];
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });

  constructor(
    private readonly token: string,
    private readonly getPod: (namespace: string, name: string) => KObj | undefined,
    private readonly backends: PodBackends,
  ) {}

  /** The server's `upgrade` listener. */
  readonly upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = PATH.exec(url.pathname);
    if (!m) return refuse(socket, 404, 'NotFound', 'the server could not find the requested resource');
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return refuse(socket, 401, 'Unauthorized', 'Unauthorized');
    const [, namespace, pod] = m.map(decodeURIComponent);
    const podObj = this.getPod(namespace, pod);
    if (!podObj) return refuse(socket, 404, 'NotFound', `pods "${pod}" not found`);
    const ports = url.searchParams.getAll('ports').flatMap((p) => p.split(','));
    const port = Number(ports[0]);
    if (ports.length !== 1 || !Number.isInteger(port) || port < 1 || port > 65535) {
      return refuse(socket, 400, 'BadRequest', 'query parameter "ports" is required: one port from 1 to 65535');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.forward(ws, podObj, port));
  };

  private forward(ws: WebSocket, podObj: KObj, port: number): void {
    const namespace = podObj.metadata!.namespace!;
    const pod = podObj.metadata!.name!;
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    this.forwarded.push({ namespace, pod, port });
    const portBytes = Buffer.from([port & 0xff, port >> 8]);
    ws.send(Buffer.concat([Buffer.from([0]), portBytes]));
    ws.send(Buffer.concat([Buffer.from([1]), portBytes]));
    const target = this.backends.resolve(podObj, port);
    const fail = (why: string) => {
      const message = `error forwarding port ${port} to pod ${pod}, uid : ${why}`;
      if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(message)]));
      ws.close();
    };
    if (!target)
      return fail(`failed to connect to localhost:${port} inside namespace "${namespace}": connection refused`);
    const tcp = net.connect(target.port, target.host);
    tcp.on('data', (chunk: Buffer) => {
      if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([0]), chunk]));
    });
    tcp.on('error', (err) => fail(err.message));
    tcp.on('close', () => ws.close());
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length === 0 || data[0] !== 0) return;
      tcp.write(data.subarray(1));
    });
    ws.on('close', () => tcp.end());
  }

  close(): void {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}

/** An apiserver Status answer on a connection that asked to upgrade. */
function refuse(socket: Duplex, code: number, reason: string, message: string): void {
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
  socket.end(
    `HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
