/**
 * The error of a destination the egress policy refuses: `forbidden`, never
 * retried (the same destination is refused again), with a message that names
 * the host, the address, why, and the setting that would allow it.
 */
import { AgentError, findInCauses } from '../errors.js';
import type { AddressClass } from './ip-address.js';

/** Why a destination is refused: its address is of a class other than public, or its host is not allowlisted. */
export type RefusalReason = Exclude<AddressClass, 'public'> | 'not-allowed';

/** Node-style code, so that HTTP clients' error texts (`CODE: message`) show where the refusal came from. */
export const EGRESS_REFUSED = 'ERR_EGRESS_REFUSED';

const NEVER = 'no setting allows it';

const WHY: Record<RefusalReason, { why: string; setting?: string; fix: string }> = {
  metadata: { why: 'a cloud metadata service', fix: NEVER },
  'link-local': {
    why: 'a link-local address (169.254.0.0/16, fe80::/10), where cloud metadata services answer',
    fix: NEVER,
  },
  multicast: { why: 'a multicast address', fix: NEVER },
  reserved: { why: 'a reserved or broadcast address (240.0.0.0/4)', fix: NEVER },
  unspecified: {
    why: 'the unspecified address (0.0.0.0/8, ::), which reaches this machine',
    setting: 'EGRESS_ALLOW_LOOPBACK',
    fix: 'set EGRESS_ALLOW_LOOPBACK=true to allow loopback destinations',
  },
  loopback: {
    why: 'a loopback address (127.0.0.0/8, ::1)',
    setting: 'EGRESS_ALLOW_LOOPBACK',
    fix: 'set EGRESS_ALLOW_LOOPBACK=true to allow it',
  },
  private: {
    why: 'a private address (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)',
    setting: 'EGRESS_ALLOW_PRIVATE',
    fix: 'set EGRESS_ALLOW_PRIVATE=true, or add its range to EGRESS_ALLOWED_HOSTS, to allow it',
  },
  'not-allowed': {
    why: 'not in EGRESS_ALLOWED_HOSTS',
    setting: 'EGRESS_ALLOWED_HOSTS',
    fix: 'add the host name, or a CIDR of its address, to EGRESS_ALLOWED_HOSTS to allow it',
  },
};

export class EgressRefusal extends AgentError {
  readonly code = EGRESS_REFUSED;

  /** `address` is where `host` would have connected (a DNS answer or an override); undefined when the name alone is refused. */
  constructor(host: string, address: string | undefined, reason: RefusalReason, allowed?: readonly string[]) {
    const { why, setting, fix } = WHY[reason];
    const where =
      address === undefined || address === host || `[${address}]` === host ? host : `${host} (address ${address})`;
    const listed = reason === 'not-allowed' && allowed ? ` (${allowed.join(', ')})` : '';
    const what = reason === 'metadata' && address === undefined ? 'a cloud metadata host name' : why;
    super('forbidden', `outbound HTTP to ${where} is refused by the egress policy: ${what}${listed}; ${fix}`, {
      retryable: false,
      details: { host, ...(address !== undefined ? { address } : {}), reason, ...(setting ? { setting } : {}) },
    });
  }
}

/** The refusal in `err` or its causes (HTTP clients wrap what the lookup failed with). */
export function findRefusal(err: unknown): EgressRefusal | undefined {
  return findInCauses(err, EgressRefusal, 5);
}
