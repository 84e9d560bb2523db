/**
 * The files and directories the settings name, checked at start before the agent loads its heavy
 * modules: one that is missing, unreadable or malformed stops the start with a ConfigError naming the
 * setting and the path. The parts that use them read them again as they start (and the tokens and
 * Kubernetes token files again later, as a mounted Secret rotates); these checks make a broken one
 * fail early, alone and in one line. K8S_SERVICE_ACCOUNT_DIR is not checked: its absence is how the
 * agent tells that it runs outside a cluster.
 */
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { kubeconfigFiles, kubeconfigProblem } from '../../../adapters/k8s/kubeconfig-files.js';
import { ConfigError, fsProblem, SETTINGS, type Config } from './config.js';
import { parseTokens, TokensFileError } from './auth/tokens.js';
import { ControlConfigProblem, parseContainerControl } from '../../../adapters/flowrunner/container/settings.js';
import { readDeliveryKey } from './delivery/signature.js';
import { SignatureVerifier } from './wpk/signature.js';

/** Throws a ConfigError for the first setting whose file or directory cannot be used. */
export function checkConfigFiles(config: Config): void {
  const name = (key: keyof Config): string => config.sources?.[key] ?? SETTINGS.find((s) => s.key === key)?.env ?? key;
  checkDataDir(config.dataDir, name('dataDir'));
  if (config.kubeconfig) checkKubeconfig(config.kubeconfig, name('kubeconfig'));
  if (config.k8sTokenFile) checkK8sToken(config.k8sTokenFile, name('k8sTokenFile'));
  if (config.k8sCaFile) checkCertificate(config.k8sCaFile, name('k8sCaFile'));
  if (config.tokensFile) checkTokens(config.tokensFile, name('tokensFile'));
  for (const program of config.shellAllowedExecutables ?? []) checkExecutable(program, name('shellAllowedExecutables'));
  if (config.shellWorkRoot) checkWorkRoot(config.shellWorkRoot, name('shellWorkRoot'));
  if (config.flowRunnerControlConfig)
    readControlConfig(config.flowRunnerControlConfig, name('flowRunnerControlConfig'));
  const keys: Array<[keyof Config, 'hmacKeyFile' | 'ed25519PublicKeyFile']> = [
    ['wpkHmacKeyFile', 'hmacKeyFile'],
    ['wpkEd25519PublicKeyFile', 'ed25519PublicKeyFile'],
  ];
  if (config.resultCallbackHmacKeyFile) {
    const file = config.resultCallbackHmacKeyFile;
    try {
      readDeliveryKey(file, (err) => fsProblem(file, err));
    } catch (err) {
      throw new ConfigError(name('resultCallbackHmacKeyFile'), (err as Error).message);
    }
  }
  for (const [key, field] of keys) {
    const file = config[key] as string | undefined;
    if (!file) continue;
    try {
      new SignatureVerifier({ [field]: file });
    } catch (err) {
      throw err instanceof ConfigError ? new ConfigError(name(key), err.problem) : err;
    }
  }
}

function read(path: string, name: string, fix: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(name, `${fsProblem(path, err)}; ${fix}`);
  }
}

function stat(path: string, name: string, fix: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw new ConfigError(name, `${fsProblem(path, err)}; ${fix}`);
  }
}

function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** The store creates DATA_DIR when missing, so the nearest part of it that exists must be a writable directory. */
function checkDataDir(dataDir: string, name: string): void {
  const fix = 'point DATA_DIR at a directory the agent may write to (it is created when missing)';
  let at = resolve(dataDir);
  for (;;) {
    let s: Stats;
    try {
      s = statSync(at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dirname(at) !== at) {
        at = dirname(at);
        continue;
      }
      throw new ConfigError(name, `${fsProblem(at, err)}; ${fix}`);
    }
    if (!s.isDirectory()) throw new ConfigError(name, `${at} is not a directory; ${fix}`);
    if (!can(at, constants.W_OK | constants.X_OK))
      throw new ConfigError(name, `${at} is not writable by the agent's user; ${fix}`);
    return;
  }
}

function checkKubeconfig(value: string, name: string): void {
  const files = kubeconfigFiles(value);
  if (files.length === 0) throw new ConfigError(name, `${JSON.stringify(value)} names no file; unset it or name one`);
  const texts = files.map((path) => ({
    path,
    text: read(path, name, 'fix the path, or remove it from KUBECONFIG').toString('utf8'),
  }));
  const problem = kubeconfigProblem(texts);
  if (problem) throw new ConfigError(name, `${problem}; fix the kubeconfig, or unset KUBECONFIG`);
}

function checkK8sToken(file: string, name: string): void {
  const token = read(file, name, 'fix the path, or unset K8S_TOKEN_FILE').toString('utf8').trim();
  if (token === '') throw new ConfigError(name, `${file} is empty; write the bearer token for K8S_SERVER into it`);
  if (/\s/.test(token))
    throw new ConfigError(name, `${file} holds more than one word; it must hold only the bearer token for K8S_SERVER`);
}

function checkCertificate(file: string, name: string): void {
  const pem = read(file, name, 'fix the path, or unset K8S_CA_FILE');
  try {
    new X509Certificate(pem);
  } catch {
    throw new ConfigError(
      name,
      `${file} is not a PEM certificate; write the CA certificate of K8S_SERVER into it (-----BEGIN CERTIFICATE-----)`,
    );
  }
}

/** The container-control file, parsed: a malformed key is a ConfigError naming the setting, the file and the key. */
export function readControlConfig(file: string, name: string) {
  const text = read(file, name, 'fix the path, or unset FLOWRUNNER_CONTROL_CONFIG').toString('utf8');
  try {
    return parseContainerControl(text);
  } catch (err) {
    if (err instanceof ControlConfigProblem) throw new ConfigError(name, `${file}: ${err.message}`);
    throw err;
  }
}

function checkTokens(file: string, name: string): void {
  const text = read(
    file,
    name,
    'fix the path, or unset RUNTIME_AGENT_TOKENS_FILE to run without authentication on loopback',
  ).toString('utf8');
  try {
    parseTokens(text, file);
  } catch (err) {
    throw err instanceof TokensFileError ? new ConfigError(name, err.message) : err;
  }
}

function checkExecutable(program: string, name: string): void {
  const fix = 'fix the path, or remove it from SHELL_ALLOWED_EXECUTABLES';
  if (!stat(program, name, fix).isFile()) throw new ConfigError(name, `${program} is not a file; ${fix}`);
  if (!can(program, constants.X_OK)) throw new ConfigError(name, `${program} is not executable; ${fix}`);
}

function checkWorkRoot(root: string, name: string): void {
  const fix = 'create the directory, or fix SHELL_WORK_ROOT';
  if (!stat(root, name, fix).isDirectory()) throw new ConfigError(name, `${root} is not a directory; ${fix}`);
  if (!can(root, constants.X_OK))
    throw new ConfigError(name, `${root} cannot be entered by the agent's user (permission denied); ${fix}`);
}
