/**
 * Who may do what. Every surface (HTTP, and any other way into the agent) authenticates its caller into a
 * Principal and asks `authorize` with the operation's name: the rule for each operation lives here once.
 */
import { AgentError } from '../../../../adapters/errors.js';

/** Each role includes the ones before it: an operator can do what an executor and a viewer can. */
export const ROLES = ['viewer', 'executor', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** The token's name (who, in the audit log and in `submitted_by`); `anonymous` when auth is off. */
  name: string;
  /** The highest role the token holds. */
  role: Role;
}

/** Without a tokens file everyone is `anonymous` with every role (the agent then only listens on loopback). */
export const ANONYMOUS: Principal = { name: 'anonymous', role: 'admin' };

export function rank(role: Role): number {
  return ROLES.indexOf(role);
}

/** The role each operation needs. */
export const OPERATIONS = {
  read: 'viewer',
  metrics: 'viewer',
  validate: 'executor',
  submit: 'executor',
  /** Cancelling one's own execution; another's needs `cancel_any`. */
  cancel: 'executor',
  cancel_any: 'operator',
  rollback: 'operator',
  /** A new execution from a finished one's package (POST /execute/{id}/retry): what submitting needs. */
  retry: 'executor',
  audit: 'admin',
  init: 'admin',
  flowrunner: 'admin',
  /** Starting, stopping, restarting FlowRunner workers and sending them commands (the Flow Manager). */
  workers: 'operator',
  /** Creating, updating (image, environment) and deleting FlowRunner workers: what runs in the cluster. */
  workers_admin: 'admin',
} as const satisfies Record<string, Role>;

export type Operation = keyof typeof OPERATIONS;

/** Throws forbidden (naming the role needed) unless `p` may perform `op`; `what` says what was asked, for the message. */
export function authorize(p: Principal, op: Operation, what: string): void {
  const needed = OPERATIONS[op];
  if (rank(p.role) >= rank(needed)) return;
  throw new AgentError('forbidden', `${what} needs the ${needed} role; token ${p.name} has ${p.role}`, {
    details: { needed_role: needed, role: p.role, roles: [...ROLES] },
  });
}

/** True when `p` may perform `op`. */
export function may(p: Principal, op: Operation): boolean {
  return rank(p.role) >= rank(OPERATIONS[op]);
}
