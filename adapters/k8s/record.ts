/**
 * What a write records of an object before it changes it, so that its default compensation
 * (restore) can put the object back; and that compensation.
 */
import type { Compensation } from '../contract.js';
import type { Write } from './api.js';
import { describe } from './kinds.js';
import { isSecret, type KObj, readOrAbsent, snapshot, type Target } from './runtime.js';

/** What a write found before it changed an object. */
export interface Recorded {
  /** The object existed. */
  existed: boolean;
  /** A re-creatable copy (server-owned fields removed), or null: it did not exist, or it is not recorded. */
  previous: KObj | null;
  /** False for a Secret: its contents are never recorded, so there is nothing to restore from. */
  recorded: boolean;
}

export const SECRET_NOT_RECORDED =
  "a Secret's contents are never recorded (they would be kept in the execution record); this write has no compensation, so a rollback leaves it as it is";

/**
 * What attempt 1 recorded of the object, or a new record on the first attempt: a retry keeps what the
 * first attempt found, since that attempt's write may have landed before its answer was lost. `check`
 * may refuse a first record (it is then not kept). A Secret's contents are never recorded.
 */
export async function recordOnce(w: Write, check?: (rec: Recorded) => void): Promise<Recorded> {
  const recalled = w.recall<Recorded>();
  if (recalled) {
    w.ctx.log.info(`attempt ${w.ctx.attempt}: using what attempt 1 recorded of ${describe(w.target)}`);
    return recalled;
  }
  const found = await readOrAbsent(w.ctx, w.clients, w.target);
  const secret = isSecret(w.target);
  if (secret) w.ctx.log.warn(`${describe(w.target)}: ${SECRET_NOT_RECORDED}`);
  const rec: Recorded = {
    existed: found !== undefined,
    previous: found && !secret ? snapshot(found) : null,
    recorded: !secret,
  };
  check?.(rec);
  w.remember(rec);
  return rec;
}

/** The default compensation of apply and patch: put back what the write recorded (nothing for a Secret, which is never recorded). */
export function restoreRecorded(
  _input: unknown,
  out: { recorded?: boolean; target: Target; previous: KObj | null },
): Compensation | undefined {
  return out.recorded === false ? undefined : restoreOf(out.target, out.previous);
}

/** A restore of `t` to `previous` (null: delete what the write created). */
export function restoreOf(t: Target, previous: KObj | null): Compensation {
  return {
    action: 'restore',
    with: {
      apiVersion: t.apiVersion,
      kind: t.kind,
      ...(t.namespace !== undefined ? { namespace: t.namespace } : {}),
      name: t.name,
      previous,
    },
  };
}
