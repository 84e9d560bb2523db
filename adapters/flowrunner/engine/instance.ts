/** What a flow instance (one user's run through the flowmap) starts with: its context and its client's headers. */
import type { Context } from './compile.js';
import type { Flowmap } from './flowmap.js';
import type { HeaderProfile } from './realism.js';

/**
 * The starting context of each flow instance: the flowmap's staticVars (a copy each time), then the
 * built-ins, which a staticVar cannot shadow.
 */
export function contextStarter(flowmap: Flowmap): (user: number, flowInstance: number, ip: string) => Context {
  const hasStaticVars = Object.keys(flowmap.staticVars).length > 0;
  return (user, flowInstance, ip) => {
    const base = {
      userId: `user-${user}`,
      userFakeIp: ip,
      flowInstance,
      flowStartTimeEpoch: Math.floor(Date.now() / 1000),
      flow_error: null,
    };
    return hasStaticVars ? Object.assign(structuredClone(flowmap.staticVars), base) : base;
  };
}

/** The simulated client's headers: its browser profile's, and the forwarded-for header (lower-case name, '' for none) with its IP. */
export function clientHeaders(profile: HeaderProfile, xffKey: string, ip: string): Record<string, string> {
  const headers: Record<string, string> = Object.assign({}, profile.headers);
  if (xffKey) headers[xffKey] = ip;
  return headers;
}
