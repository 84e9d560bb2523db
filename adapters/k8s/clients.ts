/**
 * The clients of a cluster configuration: the configuration loaded into client-node's KubeConfig
 * (client-node itself loaded first, on the first call), and the API clients made from it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AppsV1Api,
  CoreV1Api,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  KubernetesObjectApi,
} from '@kubernetes/client-node';
import { type ClientNode, loadClientNode } from './client-node.js';
import type { ClusterSource, K8sInitConfig, K8sSettings, Source } from './cluster-source.js';
import { kubeconfigFiles } from './kubeconfig-files.js';

export interface Clients {
  /** client-node, for the values this adapter needs of it. */
  lib: ClientNode;
  /** client-node's own HTTP library: requests made as plain JSON go out with its authentication and TLS. */
  http: IsomorphicFetchHttpLibrary;
  source: Source;
  server: string;
  namespace: string;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  objects: KubernetesObjectApi;
}

/** How often a token file named by K8S_TOKEN_FILE is read again. */
const TOKEN_REREAD_MS = 30_000;

/**
 * The clients of `found`, or why its configuration does not load (a kubeconfig that does not parse,
 * a token file that cannot be read, a kubeconfig without a current cluster).
 */
export async function connect(
  found: ClusterSource,
  settings: K8sSettings,
): Promise<{ clients: Clients } | { reason: string }> {
  const lib = await loadClientNode();
  const kc = new lib.KubeConfig();
  let namespace = settings.namespace;
  try {
    switch (found.source) {
      case 'in-cluster': {
        const own = loadInCluster(kc, found);
        namespace ??= own;
        break;
      }
      case 'kubeconfig':
        loadKubeconfig(kc, lib, kubeconfigFiles(found.file));
        if (!kc.getCurrentCluster())
          return { reason: `kubeconfig ${found.file} has no current context with a cluster` };
        break;
      case 'config':
        loadConfig(kc, found.server, settings);
        break;
      case 'init':
        namespace = found.init.namespace ?? settings.namespace;
        loadInit(kc, found.init, namespace ?? 'default');
        break;
    }
  } catch (err) {
    return { reason: `loading the configuration failed: ${loadError(err)}` };
  }
  return {
    clients: {
      lib,
      http: new lib.IsomorphicFetchHttpLibrary(),
      source: found.source,
      server: kc.getCurrentCluster()?.server ?? '',
      namespace: namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default',
      kc,
      core: kc.makeApiClient(lib.CoreV1Api),
      apps: kc.makeApiClient(lib.AppsV1Api),
      objects: lib.KubernetesObjectApi.makeApiClient(kc),
    },
  };
}

/**
 * As client-node's loadFromCluster, but from a configurable directory; the token file is re-read as it
 * rotates. Returns the service account's namespace.
 */
function loadInCluster(
  kc: KubeConfig,
  { saDir, host, port }: { saDir: string; host: string; port: string },
): string | undefined {
  const nsFile = join(saDir, 'namespace');
  const namespace = existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : undefined;
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  kc.loadFromOptions({
    clusters: [
      {
        name: 'in-cluster',
        server: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
        caFile: join(saDir, 'ca.crt'),
        skipTLSVerify: scheme === 'http',
      },
    ],
    users: [{ name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: join(saDir, 'token') } } }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster', namespace }],
    currentContext: 'in-cluster',
  });
  return namespace;
}

/** A server and token from the configuration; a token file is read again every TOKEN_REREAD_MS (a mounted Secret rotates). */
function loadConfig(kc: KubeConfig, server: string, settings: K8sSettings): void {
  const fromFile = settings.token === undefined && settings.tokenFile !== undefined;
  kc.loadFromOptions({
    clusters: [{ name: 'config', server, caFile: settings.caFile, skipTLSVerify: plainHttp(server) }],
    users: [{ name: 'config', token: fromFile ? readTokenFile(settings.tokenFile!) : settings.token }],
    contexts: [{ name: 'config', cluster: 'config', user: 'config', namespace: settings.namespace }],
    currentContext: 'config',
  });
  if (fromFile) watchTokenFile(kc, settings.tokenFile!, settings.tokenRereadMs ?? TOKEN_REREAD_MS);
}

/** The server, token and CA that `POST /init` gave. */
function loadInit(kc: KubeConfig, init: K8sInitConfig & { server: string }, namespace: string): void {
  kc.loadFromOptions({
    clusters: [
      {
        name: 'init',
        server: init.server,
        caData: init.caData ? Buffer.from(init.caData).toString('base64') : undefined,
        skipTLSVerify: init.insecureSkipTlsVerify === true || plainHttp(init.server),
      },
    ],
    users: [{ name: 'init', token: init.token }],
    contexts: [{ name: 'init', cluster: 'init', user: 'init', namespace }],
    currentContext: 'init',
  });
}

/** A token file's content without the line break editors and `echo` leave (a header value may not contain one). */
function readTokenFile(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

function watchTokenFile(kc: KubeConfig, file: string, everyMs: number): void {
  const timer = setInterval(() => {
    try {
      const token = readTokenFile(file);
      const user = kc.users[0];
      if (user && token && token !== user.token) kc.users = [{ ...user, token }];
    } catch {
      // A file being replaced may be missing for a moment; the last token stays until the next read.
    }
  }, everyMs);
  timer.unref();
}

/** client-node refuses a plain-http cluster unless TLS verification is off (there is no TLS to verify). */
function plainHttp(server: string): boolean {
  return server.startsWith('http:');
}

/**
 * Why loading failed, without quoting the file: a YAML parser's message carries a snippet of the
 * lines around the error, which may hold a token or a key. Only the error's name and position.
 */
export function loadError(err: unknown): string {
  const e = err as
    | { name?: unknown; mark?: { line?: unknown; column?: unknown }; code?: unknown; message?: unknown }
    | undefined;
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  if (e?.mark && typeof e.mark.line === 'number') {
    const column = typeof e.mark.column === 'number' ? e.mark.column + 1 : '?';
    return `${name} at line ${e.mark.line + 1}, column ${column} (the file's content is not shown)`;
  }
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // File-system errors (ENOENT, EACCES) name the path, not the content; anything else could quote it.
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return message;
  if (!message.includes('\n') && message.length <= 200 && !/token|password|secret|key|cert/i.test(message))
    return `${name}: ${message}`;
  return `${name} (the details are not shown: they may quote the file)`;
}

/** Several kubeconfig files (KUBECONFIG a:b) merged as kubectl merges them: the first file to set a name or the current context wins. */
function loadKubeconfig(kc: KubeConfig, lib: ClientNode, files: string[]): void {
  kc.loadFromFile(files[0]!);
  for (const file of files.slice(1)) {
    const more = new lib.KubeConfig();
    more.loadFromFile(file);
    if (!kc.currentContext && more.currentContext) kc.setCurrentContext(more.currentContext);
    for (const c of more.clusters) if (!kc.getCluster(c.name)) kc.addCluster(c);
    for (const u of more.users) if (!kc.getUser(u.name)) kc.addUser(u);
    for (const c of more.contexts) if (!kc.getContextObject(c.name)) kc.addContext(c);
  }
}
