/** Pull mode's parts, built from the configuration (docs/pull-mode.md). */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Principal } from '../auth/roles.js';
import { ConfigError, type Config, fsProblem } from '../config.js';
import { ManagerClient } from './manager-client.js';

/** Who submits and cancels the Manager's tasks (the audit log's actor, `submitted_by`). */
export const MANAGER_ACTOR: Principal = { name: 'manager', role: 'operator' };

/** The Manager's client when MANAGER_URL is set; a key file that cannot be read is a ConfigError (exit 2). */
export function managerClient(config: Config): ManagerClient | undefined {
  if (config.managerUrl === undefined) return undefined;
  let key = config.agentKey;
  if (config.agentKeyFile !== undefined) {
    const file = config.agentKeyFile;
    try {
      key = readFileSync(file, 'utf8').trimEnd();
    } catch (err) {
      throw new ConfigError(config.sources?.agentKeyFile ?? 'AGENT_KEY_FILE', fsProblem(file, err));
    }
    if (key === '') throw new ConfigError(config.sources?.agentKeyFile ?? 'AGENT_KEY_FILE', `${file} is empty`);
  }
  return new ManagerClient({
    url: config.managerUrl.replace(/\/+$/, ''),
    agentName: config.agentName ?? hostname(),
    agentKey: key ?? '',
    apiVersion: String(config.apiVersion),
    requestTimeoutMs: config.managerRequestTimeoutMs,
  });
}
