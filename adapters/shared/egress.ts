/**
 * The destination policy of outbound HTTP (api and flowrunner): which
 * addresses and hosts a step may reach. Link-local and cloud metadata
 * addresses are always refused.
 */
export interface EgressSettings {
  /** Loopback addresses (127/8, ::1): the app next to the sidecar. */
  allowLoopback: boolean;
  /** Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7). */
  allowPrivate: boolean;
  /** Host names (`api.example.com`, `*.example.com`) or CIDRs; undefined = any host whose addresses are allowed. */
  allowedHosts?: string[];
}

export const DEFAULT_EGRESS: EgressSettings = { allowLoopback: true, allowPrivate: false };
