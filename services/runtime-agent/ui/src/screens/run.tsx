/** One run: its status and timings, the timeline, each step's input, outputs and error, the rollback, the log. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { Chip, ErrorNote, Json } from '../components';
import { between, duration, when } from '../format';
import { useJournal } from '../journal';
import { href } from '../router';
import type { ExecutionRecord, Me, StepView } from '../types';
import { Actions } from './actions';
import { Logs } from './logs';
import { Timeline } from './timeline';

function StepDetail({ step }: { step: StepView }) {
  return (
    <details class="step" data-step={step.name}>
      <summary>
        <Chip status={step.status} /> <strong>{step.name}</strong>{' '}
        <span class="muted">
          {step.adapter}.{step.action}
          {step.attempts > 1 && ` · ${step.attempts} attempts`}
          {step.compensates && ` · undoes ${step.compensates}`} · {duration(between(step.started_at, step.finished_at))}
        </span>
      </summary>
      {step.reason && <p class="muted">{step.reason}</p>}
      {step.error && (
        <div class="step-error">
          <strong>{step.error.type}</strong> {step.error.message}
        </div>
      )}
      <Json label="input" value={step.input} />
      <Json
        label={`outputs${step.outputs_source ? ` (${step.outputs_source.replace('_', ' ')})` : ''}`}
        value={step.outputs}
      />
    </details>
  );
}

/** A term of the run's list naming another run, by the end of its id; nothing when there is none. */
function RunLink({ label, id }: { label: string; id: string | null }) {
  if (!id) return null;
  return (
    <>
      <dt>{label}</dt>
      <dd>
        <a href={href('runs', id)}>{`…${id.slice(-8)}`}</a>
      </dd>
    </>
  );
}

export function RunScreen({ id, me }: { id: string; me: Me }) {
  const [rec, setRec] = useState<ExecutionRecord | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [now, setNow] = useState(Date.now());

  const load = useCallback(async () => {
    try {
      setRec(await api<ExecutionRecord>('GET', `/execute/${encodeURIComponent(id)}`));
      setNow(Date.now());
      setError(null);
    } catch (err) {
      setError(err as Error);
    }
  }, [id]);
  useEffect(() => {
    setRec(null);
    void load();
  }, [load]);
  useJournal((e) => e.execution_id === id, load, [id, load]);
  // A running step's bar grows with the clock, not with events.
  const running = rec?.status === 'running' || rec?.status === 'rolling_back';
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [running]);

  if (error && !rec) return <ErrorNote error={error} />;
  if (!rec) return <p class="loading">Loading…</p>;
  return (
    <article class="run" aria-labelledby="run-title">
      <p class="crumbs">
        <a href={href('runs')}>Runs</a> /
      </p>
      <div class="title-row">
        <h1 id="run-title">{rec.workflow_id}</h1>
        <Chip status={rec.status} />
        {rec.dry_run && <span class="badge">dry run</span>}
        <Actions rec={rec} me={me} onDone={load} />
      </div>
      <dl class="facts">
        <dt>Execution</dt>
        <dd>
          <code>{rec.execution_id}</code>
        </dd>
        <dt>Submitted by</dt>
        <dd>{rec.submitted_by ?? '–'}</dd>
        <dt>Created</dt>
        <dd>{when(rec.created_at)}</dd>
        <dt>Started</dt>
        <dd>{when(rec.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{when(rec.finished_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(between(rec.started_at, rec.finished_at, now))}</dd>
        <dt>Steps</dt>
        <dd>
          {rec.steps_completed}/{rec.steps_total}
          {rec.current_step && ` · now ${rec.current_step}`}
        </dd>
        <RunLink label="Retry of" id={rec.retry_of} />
        <RunLink label="Retried by" id={rec.retried_by} />
      </dl>
      <ErrorNote error={error} />
      {rec.error && (
        <div class="step-error" role="status">
          <strong>{rec.error.type}</strong>
          {rec.error.step && ` at ${rec.error.step}`}: {rec.error.message}
        </div>
      )}
      <Timeline steps={rec.steps} rollback={rec.rollback.steps} now={now} />
      <section aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        {rec.steps.map((s) => (
          <StepDetail key={s.name} step={s} />
        ))}
      </section>
      <section aria-labelledby="rollback-title" class="rollback">
        <h2 id="rollback-title">
          Rollback <Chip status={`rb-${rec.rollback.status}`} label={rec.rollback.status.replace('_', ' ')} />
        </h2>
        <p class="muted">
          {rec.rollback.trigger
            ? `Trigger: ${rec.rollback.trigger}${rec.rollback.requested_by ? `, requested by ${rec.rollback.requested_by}` : ''}.`
            : rec.rollback_on_failure
              ? 'Runs automatically if the run fails.'
              : 'Not automatic for this run.'}
        </p>
        {rec.rollback.steps.map((s) => (
          <StepDetail key={s.name} step={s} />
        ))}
      </section>
      <section aria-labelledby="params-title">
        <h2 id="params-title">Parameters</h2>
        <Json label="parameters (secrets as ***)" value={rec.parameters} />
      </section>
      <Logs
        id={rec.execution_id}
        steps={[...rec.steps, ...rec.rollback.steps].map((s) => s.name)}
        state={`${rec.status}/${rec.rollback.status}`}
      />
    </article>
  );
}
