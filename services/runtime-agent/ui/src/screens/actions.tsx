/**
 * Cancel, Roll back and Retry from step…, each shown only when the caller's role may use it (GET /whoami
 * says so) and the execution is in a state where the agent would take it; each asks first, saying what will
 * happen. The agent still decides: a refusal is shown as it answers.
 */
import { useState } from 'preact/hooks';
import { type ApiError, api } from '../api';
import { Confirm, ErrorNote } from '../components';
import { go } from '../router';
import type { ExecutionRecord, Me } from '../types';

type Open = 'cancel' | 'rollback' | 'retry' | null;

/** The step a retry starts at by default: the one that failed, else the first that did not succeed. */
function defaultFrom(rec: ExecutionRecord): string {
  if (rec.error?.step && rec.steps.some((s) => s.name === rec.error?.step)) return rec.error.step;
  return (rec.steps.find((s) => s.status !== 'succeeded' && s.status !== 'skipped') ?? rec.steps[0])?.name ?? '';
}

export function Actions({ rec, me, onDone }: { rec: ExecutionRecord; me: Me; onDone(): void }) {
  const [open, setOpen] = useState<Open>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [from, setFrom] = useState(defaultFrom(rec));

  const running = rec.status === 'pending' || rec.status === 'running';
  const canCancel = running && (me.may.cancel_any || (me.may.cancel && rec.submitted_by === me.name));
  const canRollback =
    me.may.rollback && ['failed', 'cancelled', 'completed'].includes(rec.status) && rec.rollback.status !== 'running';
  const canRetry = me.may.retry && !running && rec.status !== 'rolling_back' && rec.retried_by === null;
  if (!canCancel && !canRollback && !canRetry) return null;

  const act = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      setOpen(null);
      onDone();
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  const fromIndex = rec.steps.findIndex((s) => s.name === from);
  const undoable = rec.steps.filter((s) => s.status === 'succeeded').length;

  return (
    <div class="actions">
      {canCancel && (
        <button type="button" class="danger" onClick={() => setOpen('cancel')}>
          Cancel
        </button>
      )}
      {canRollback && (
        <button type="button" class="danger" onClick={() => setOpen('rollback')}>
          Roll back
        </button>
      )}
      {canRetry && (
        <button type="button" onClick={() => setOpen('retry')}>
          Retry from step…
        </button>
      )}
      {!open && <ErrorNote error={error} />}
      {open === 'cancel' && (
        <Confirm
          title="Cancel this run?"
          confirmLabel="Cancel the run"
          danger
          busy={busy}
          onCancel={() => setOpen(null)}
          onConfirm={() => act(() => api('POST', `/execute/${rec.execution_id}/cancel`))}
        >
          <p>
            The running step of <strong>{rec.workflow_id}</strong> is aborted and no further step starts.
            {rec.rollback_on_failure ? ' Its rollback then undoes the steps that succeeded.' : ' Nothing is undone.'}
          </p>
          <ErrorNote error={error} />
        </Confirm>
      )}
      {open === 'rollback' && (
        <Confirm
          title="Roll back this run?"
          confirmLabel="Roll back"
          danger
          busy={busy}
          onCancel={() => setOpen(null)}
          onConfirm={() => act(() => api('POST', `/rollback/${rec.execution_id}`))}
        >
          <p>
            Of the {undoable} step{undoable === 1 ? '' : 's'} that succeeded, those with a compensation are undone
            newest first, then the package's rollback handlers run. The run ends <code>rolled_back</code>, or{' '}
            <code>rollback_failed</code> if a compensation fails; with nothing to undo, the agent says so and changes
            nothing.
          </p>
          <ErrorNote error={error} />
        </Confirm>
      )}
      {open === 'retry' && (
        <Confirm
          title="Retry this run?"
          confirmLabel={`Retry from ${from}`}
          busy={busy}
          onCancel={() => setOpen(null)}
          onConfirm={() =>
            act(async () => {
              const r = await api<{ execution_id: string }>('POST', `/execute/${rec.execution_id}/retry`, {
                from_step: from,
              });
              go('runs', r.execution_id);
            })
          }
        >
          <label>
            Start at step
            <select value={from} onChange={(e) => setFrom(e.currentTarget.value)}>
              {rec.steps.map((s) => (
                <option key={s.name} value={s.name}>
                  {s.name} ({s.status})
                </option>
              ))}
            </select>
          </label>
          <p>
            A new run of <strong>{rec.workflow_id}</strong> starts at <strong>{from}</strong>
            {fromIndex > 0
              ? `; ${fromIndex === 1 ? 'the step before it is' : `the ${fromIndex} steps before it are`} not run again and ${fromIndex === 1 ? 'keeps its' : 'keep their'} recorded outputs.`
              : '; every step runs again.'}{' '}
            It uses the same parameters{rec.dry_run ? ' and is a dry run too' : ''}.
          </p>
          <ErrorNote error={error} />
        </Confirm>
      )}
    </div>
  );
}
