/**
 * Workflows: the catalog, and a form per package generated from its parameter schema. A dry run shows the
 * plan (each step as the dry run saw it) before the real run; the agent validates, and its problems are shown
 * at their fields.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { type ApiError, api } from '../api';
import { Chip, ErrorNote } from '../components';
import { useJournal } from '../journal';
import { go, href } from '../router';
import { ENDED, type ExecutionRecord, type Me, type Param, type Problem, type Workflow } from '../types';

/** The catalog (GET /workflows), read once per screen. */
export function useCatalog() {
  const [workflows, setWorkflows] = useState<Workflow[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => {
    api<{ workflows: Workflow[] }>('GET', '/workflows').then(
      (w) => setWorkflows(w.workflows),
      (err: Error) => setError(err),
    );
  }, []);
  return { workflows, error };
}

function describeParam(p: Param): string {
  const bits: string[] = [p.type];
  if (p.enum) bits.push(`one of ${p.enum.map(String).join(', ')}`);
  if (p.default !== undefined) bits.push(`default ${JSON.stringify(p.default)}`);
  if (p.minimum !== undefined) bits.push(`≥ ${p.minimum}`);
  if (p.maximum !== undefined) bits.push(`≤ ${p.maximum}`);
  if (p.secret) bits.push('secret');
  return bits.join(' · ');
}

export function WorkflowsScreen({ me, open }: { me: Me; open?: string }) {
  const { workflows, error } = useCatalog();
  return (
    <section aria-labelledby="wf-title">
      <h1 id="wf-title">Workflows</h1>
      <ErrorNote error={error} />
      {workflows === null && !error && <p class="loading">Loading…</p>}
      <ul class="cards">
        {workflows?.map((w) => (
          <li key={w.workflow_id} class="card" id={`wf-${w.workflow_id}`} data-workflow={w.workflow_id}>
            <div class="title-row">
              <h2>{w.name}</h2>
              <span class="muted">{w.version}</span>
              {w.source === 'registered' && <span class="badge">registered</span>}
              {w.signed && <span class="badge">signed</span>}
              {me.may.submit && (
                <a
                  class="button primary"
                  href={href('workflows', w.workflow_id, 'run')}
                  aria-label={`Run ${w.workflow_id}`}
                >
                  Run
                </a>
              )}
            </div>
            {w.description && <p>{w.description}</p>}
            <p class="muted">
              {w.steps.length} steps ({w.adapters.join(', ')}){w.rollback_enabled ? ' · rollback enabled' : ''}
              {w.timeout_seconds ? ` · times out after ${w.timeout_seconds} s` : ''}
            </p>
            <details open={open === w.workflow_id}>
              <summary>Parameters ({Object.keys(w.parameters).length}) and steps</summary>
              <dl class="params">
                {Object.entries(w.parameters).map(([name, p]) => (
                  <div key={name}>
                    <dt>
                      <code>{name}</code>
                      {p.required && (
                        <span class="req">
                          <span aria-hidden="true">*</span>
                          <span class="sr-only">required</span>
                        </span>
                      )}
                    </dt>
                    <dd>
                      {describeParam(p)}
                      {p.description && <span class="muted"> — {p.description}</span>}
                    </dd>
                  </div>
                ))}
              </dl>
              <ol class="step-names">
                {w.steps.map((s) => (
                  <li key={s}>{s}</li>
                ))}
              </ol>
            </details>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** A form value as the parameter's type wants it: numbers and booleans as such, arrays and objects from JSON. */
function typed(p: Param, raw: string | boolean): { value?: unknown; problem?: string } {
  if (typeof raw === 'boolean') return { value: raw };
  if (raw === '') return {};
  if (p.type === 'integer' || p.type === 'number') {
    const n = Number(raw);
    return Number.isFinite(n) ? { value: n } : { value: raw };
  }
  if (p.type === 'array' || p.type === 'object') {
    try {
      return { value: JSON.parse(raw) };
    } catch {
      return { problem: 'is not valid JSON' };
    }
  }
  return { value: raw };
}

function initial(p: Param): string | boolean {
  if (p.type === 'boolean') return p.default === true;
  if (p.default === undefined || p.secret) return '';
  return typeof p.default === 'string' ? p.default : JSON.stringify(p.default);
}

function Field({
  name,
  p,
  value,
  problem,
  onChange,
}: {
  name: string;
  p: Param;
  value: string | boolean;
  problem?: string;
  onChange(v: string | boolean): void;
}) {
  const id = `param-${name}`;
  const describedBy =
    [p.description ? `${id}-help` : '', problem ? `${id}-problem` : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name,
    'aria-describedby': describedBy,
    'aria-invalid': problem ? true : undefined,
    'aria-required': p.required || undefined,
  };
  let input: JSX.Element;
  if (p.type === 'boolean')
    input = (
      <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.currentTarget.checked)} />
    );
  else if (p.enum)
    input = (
      <select {...common} value={String(value)} onChange={(e) => onChange(e.currentTarget.value)}>
        {!p.required && p.default === undefined && <option value="">(none)</option>}
        {p.enum.map((v) => (
          <option key={String(v)} value={typeof v === 'string' ? v : JSON.stringify(v)}>
            {String(v)}
          </option>
        ))}
      </select>
    );
  else if (p.type === 'array' || p.type === 'object')
    input = <textarea {...common} rows={3} value={String(value)} onInput={(e) => onChange(e.currentTarget.value)} />;
  else
    input = (
      <input
        {...common}
        type={p.secret ? 'password' : p.type === 'integer' || p.type === 'number' ? 'number' : 'text'}
        autocomplete={p.secret ? 'new-password' : 'off'}
        step={p.type === 'integer' ? 1 : p.type === 'number' ? 'any' : undefined}
        min={p.minimum}
        max={p.maximum}
        placeholder={p.secret && p.default !== undefined ? 'leave empty for the default' : undefined}
        value={String(value)}
        onInput={(e) => onChange(e.currentTarget.value)}
      />
    );
  return (
    <div class={`field${problem ? ' invalid' : ''}`} data-field={name}>
      <label for={id}>
        {name}
        {p.required && (
          <span class="req" aria-hidden="true">
            {' '}
            *
          </span>
        )}
        <span class="muted">
          {' '}
          {p.type}
          {p.secret ? ', secret' : ''}
        </span>
      </label>
      {input}
      {p.description && (
        <p id={`${id}-help`} class="help">
          {p.description}
        </p>
      )}
      {problem && (
        <p id={`${id}-problem`} class="field-problem" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}

export function RunForm({ workflowId, me }: { workflowId: string; me: Me }) {
  const { workflows, error: loadError } = useCatalog();
  const wf = workflows?.find((w) => w.workflow_id === workflowId);
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [dryRun, setDryRun] = useState(true);
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [busy, setBusy] = useState(false);
  const [plan, setPlan] = useState<ExecutionRecord | null>(null);
  const [planId, setPlanId] = useState<string | null>(null);

  const loadPlan = useCallback(async () => {
    if (planId) setPlan(await api<ExecutionRecord>('GET', `/execute/${planId}`));
  }, [planId]);
  useEffect(() => {
    void loadPlan();
  }, [loadPlan]);
  useJournal(
    (e) => e.execution_id === planId,
    () => void loadPlan(),
    [planId, loadPlan],
  );

  if (loadError) return <ErrorNote error={loadError} />;
  if (!workflows) return <p class="loading">Loading…</p>;
  if (!wf) return <ErrorNote error={`workflow ${workflowId} is not in the catalog`} />;

  /** The agent's problems by parameter (shown at their fields), and the rest. */
  const problemsAtFields = (list: Problem[]) => {
    const at: Record<string, string> = {};
    const rest: Problem[] = [];
    for (const p of list) {
      const m = /^\$\.parameters\.([A-Za-z0-9_-]+)/.exec(p.path);
      if (m && m[1] in wf.parameters) at[m[1]] = at[m[1]] ? `${at[m[1]]}; ${p.message}` : p.message;
      else rest.push(p);
    }
    return { at, rest };
  };

  const submit = async (asDryRun: boolean) => {
    const parameters: Record<string, unknown> = {};
    const local: Record<string, string> = {};
    for (const [name, p] of Object.entries(wf.parameters)) {
      const t = typed(p, values[name] ?? initial(p));
      if (t.problem) local[name] = t.problem;
      else if (t.value !== undefined) parameters[name] = t.value;
    }
    setProblems(local);
    setError(null);
    setBusy(true);
    if (Object.keys(local).length) {
      // Nothing is submitted; the agent still checks the other fields, so every problem shows in one round.
      try {
        const report = await api<{ errors: Problem[] }>('POST', '/validate', {
          workflow_id: wf.workflow_id,
          parameters,
        });
        const { at } = problemsAtFields(report.errors);
        for (const name of Object.keys(local)) delete at[name];
        setProblems({ ...at, ...local });
      } catch {
        // The local problems stand on their own.
      } finally {
        setBusy(false);
      }
      return;
    }
    try {
      const r = await api<{ execution_id: string }>('POST', '/execute', {
        workflow_id: wf.workflow_id,
        parameters,
        dry_run: asDryRun,
      });
      if (asDryRun) {
        setPlan(null);
        setPlanId(r.execution_id);
      } else go('runs', r.execution_id);
    } catch (err) {
      const e = err as ApiError;
      const { at, rest } = problemsAtFields(e.problems ?? []);
      setProblems(at);
      setError(Object.keys(at).length && rest.length === 0 ? new Error(e.message) : e);
    } finally {
      setBusy(false);
    }
  };

  const planDone = plan !== null && ENDED.has(plan.status);
  // A dry run's "succeeded" step ran nothing: the plan says it would run.
  const planLabel = (status: string) => (status === 'succeeded' ? 'would run' : status);
  return (
    <section aria-labelledby="form-title">
      <p class="crumbs">
        <a href={href('workflows')}>Workflows</a> /
      </p>
      <h1 id="form-title">Run {wf.workflow_id}</h1>
      {wf.description && <p>{wf.description}</p>}
      {!me.may.submit && <p class="error-note">Your role ({me.role}) may not start runs.</p>}
      <form
        class="run-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void submit(dryRun);
        }}
      >
        {Object.keys(wf.parameters).length === 0 && <p class="muted">This workflow takes no parameters.</p>}
        {Object.entries(wf.parameters).map(([name, p]) => (
          <Field
            key={name}
            name={name}
            p={p}
            value={values[name] ?? initial(p)}
            problem={problems[name]}
            onChange={(v) => {
              setValues((cur) => ({ ...cur, [name]: v }));
              // The plan was made with the old values: a real run must follow a dry run of the values it sends.
              setPlanId(null);
              setPlan(null);
            }}
          />
        ))}
        <label class="check">
          <input type="checkbox" name="dry_run" checked={dryRun} onChange={(e) => setDryRun(e.currentTarget.checked)} />
          Dry run first: show the plan, change nothing
        </label>
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy || !me.may.submit}>
            {dryRun ? 'Dry run' : 'Run'}
          </button>
        </div>
      </form>
      {planId && (
        <section class="plan" aria-labelledby="plan-title" aria-live="polite">
          <h2 id="plan-title">
            Plan {plan && <Chip status={plan.status} />} <a href={href('runs', planId)}>dry run record</a>
          </h2>
          {plan?.error && (
            <p class="step-error">
              {plan.error.type}: {plan.error.message}
            </p>
          )}
          <ol class="plan-steps">
            {plan?.steps.map((s) => (
              <li key={s.name}>
                <Chip status={s.status} label={planLabel(s.status)} /> <strong>{s.name}</strong>{' '}
                <span class="muted">
                  {s.adapter}.{s.action}
                  {s.reason ? ` · ${s.reason}` : ''}
                </span>
              </li>
            ))}
          </ol>
          {planDone && (
            <div class="buttons">
              <button type="button" class="primary" disabled={busy} onClick={() => void submit(false)}>
                Run for real
              </button>
            </div>
          )}
        </section>
      )}
    </section>
  );
}
