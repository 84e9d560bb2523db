/** Runs: newest first, filtered by status (several at once), workflow and age; updated from the journal. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, query } from '../api';
import { Chip, ErrorNote } from '../components';
import { between, duration, when } from '../format';
import { useJournal } from '../journal';
import { href, setQuery } from '../router';
import { STATUSES, type Summary } from '../types';
import { useCatalog } from './workflows';

const SINCE = [
  ['', 'any time'],
  ['15m', 'last 15 minutes'],
  ['1h', 'last hour'],
  ['6h', 'last 6 hours'],
  ['24h', 'last 24 hours'],
  ['7d', 'last 7 days'],
] as const;
const FAILED = ['failed', 'rolled_back', 'rollback_failed'];
const PAGE = 25;

/** The filters live in the URL's query (`status=failed,rolled_back&workflow=…&since=1h`), so a view can be shared. */
export function RunsScreen({ params }: { params: URLSearchParams }) {
  const statuses = (params.get('status') ?? '').split(',').filter((s) => (STATUSES as readonly string[]).includes(s));
  const workflow = params.get('workflow') ?? '';
  const sinceParam = params.get('since') ?? '';
  const since = SINCE.some(([v]) => v === sinceParam) ? sinceParam : '';
  // Paging belongs to one set of filters: another set starts again at the newest page.
  const filters = JSON.stringify([statuses, workflow, since]);
  const [paging, setPaging] = useState<{ filters: string; cursors: Array<string | undefined> }>({
    filters,
    cursors: [undefined],
  });
  const cursors = paging.filters === filters ? paging.cursors : [undefined];
  const setCursors = (next: (c: Array<string | undefined>) => Array<string | undefined>) =>
    setPaging({ filters, cursors: next(cursors) });
  const [page, setPage] = useState<{ executions: Summary[]; next_cursor: string | null } | null>(null);
  // The workflow filter's choices; without the catalog it offers "all workflows" only.
  const { workflows } = useCatalog();
  const [error, setError] = useState<Error | null>(null);
  const cursor = cursors[cursors.length - 1];

  const load = useCallback(async () => {
    try {
      const [status, workflow_id, since] = JSON.parse(filters) as [string[], string, string];
      const q = query({ status, workflow_id, since, limit: PAGE, cursor });
      setPage(await api('GET', `/executions${q}`));
      setError(null);
    } catch (err) {
      setError(err as Error);
    }
  }, [filters, cursor]);

  useEffect(() => {
    void load();
  }, [load]);
  useJournal(
    (e) => e.type === 'execution.created' || e.type === 'execution.status_changed' || e.type === 'step.finished',
    load,
    [load],
  );

  const filter = (next: { statuses?: string[]; workflow?: string; since?: string }) => {
    const s = next.statuses ?? statuses;
    setQuery({
      status: STATUSES.filter((x) => s.includes(x)).join(','),
      workflow: next.workflow ?? workflow,
      since: next.since ?? since,
    });
  };
  const toggle = (s: string) =>
    filter({ statuses: statuses.includes(s) ? statuses.filter((x) => x !== s) : [...statuses, s] });
  const failedLastHour =
    statuses.length === FAILED.length && FAILED.every((s) => statuses.includes(s)) && since === '1h';

  return (
    <section aria-labelledby="runs-title">
      <div class="title-row">
        <h1 id="runs-title">Runs</h1>
        <button
          type="button"
          aria-pressed={failedLastHour}
          onClick={() => filter({ statuses: failedLastHour ? [] : FAILED, since: failedLastHour ? '' : '1h' })}
        >
          Failed in the last hour
        </button>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <fieldset>
          <legend>Status</legend>
          {STATUSES.map((s) => (
            <label key={s} class={`check chip-check st-${s}`}>
              <input
                type="checkbox"
                name="status"
                value={s}
                checked={statuses.includes(s)}
                onChange={() => toggle(s)}
              />
              {s}
            </label>
          ))}
        </fieldset>
        <label>
          Workflow
          <select value={workflow} onChange={(e) => filter({ workflow: e.currentTarget.value })}>
            <option value="">all workflows</option>
            {workflows?.map((w) => (
              <option key={w.workflow_id} value={w.workflow_id}>
                {w.workflow_id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Since
          <select value={since} onChange={(e) => filter({ since: e.currentTarget.value })}>
            {SINCE.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote error={error} />
      {page && page.executions.length === 0 && <p class="empty">No runs match.</p>}
      {page && page.executions.length > 0 && (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Workflow</th>
              <th scope="col">Steps</th>
              <th scope="col">Created</th>
              <th scope="col">Duration</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {page.executions.map((e) => (
              <tr key={e.execution_id} data-id={e.execution_id} data-status={e.status}>
                <td>
                  <Chip status={e.status} />
                  {e.dry_run && <span class="badge">dry run</span>}
                </td>
                <td>
                  <a href={href('runs', e.execution_id)}>{e.workflow_id}</a>
                  <span class="id">…{e.execution_id.slice(-8)}</span>
                </td>
                <td>
                  {e.steps_completed}/{e.steps_total}
                  {e.current_step && <span class="muted"> · {e.current_step}</span>}
                </td>
                <td>{when(e.created_at)}</td>
                <td>{e.finished_at ? duration(between(e.started_at, e.finished_at)) : '–'}</td>
                <td>{e.submitted_by ?? '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Newer
        </button>
        <button
          type="button"
          disabled={!page?.next_cursor}
          onClick={() => page?.next_cursor && setCursors((c) => [...c, page.next_cursor!])}
        >
          Older
        </button>
      </nav>
    </section>
  );
}
