// A plain node:http target for the benchmarks (bench/target.ts), in its own process so it does not share
// the client's core. Prints its port, then serves small JSON answers until killed, and tells its parent
// how many requests it answered and when (Date.now()) each connection was opened. Bounded: it exits
// when its parent goes away, and by itself after MAX_SECONDS even if nobody kills it.
import { createServer } from 'node:http';

const MAX_SECONDS = 300;
/** Connection opening times kept (the benchmarks open a few thousand). */
const MAX_CONNECTIONS_KEPT = 100_000;
let n = 0;
/** Bytes of the request heads (request line, headers, blank line) as received, and of the bodies. */
let headBytes = 0;
let bodyBytes = 0;
const opened = [];
const server = createServer((req, res) => {
  n++;
  let head = req.method.length + req.url.length + 14; // " ", " HTTP/1.1\r\n" and the blank line
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    head += req.rawHeaders[i].length + req.rawHeaders[i + 1].length + 4;
  headBytes += head;
  req.on('data', (c) => (bodyBytes += c.length));
  if (req.url.startsWith('/login')) {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(`{"token":"t${n}","user":{"id":${n % 100},"plan":"${n % 2 ? 'pro' : 'free'}"}}`);
    });
    return;
  }
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true,"n":1}');
});
server.keepAliveTimeout = 60_000;
server.on('connection', () => {
  if (opened.length < MAX_CONNECTIONS_KEPT) opened.push(Date.now());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  if (m === 'count') process.send?.({ count: n });
  if (m === 'connections') process.send?.({ opened });
  if (m === 'bytes') process.send?.({ count: n, headBytes, bodyBytes });
});
setTimeout(() => process.exit(0), MAX_SECONDS * 1000).unref();
