/** Overview: the last 24 hours, from GET /executions/overview: runs by status, p50/p95 duration by workflow. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorNote } from '../components';
import { duration } from '../format';
import { useJournal } from '../journal';
import { href } from '../router';
import { STATUSES, type Overview } from '../types';

const W = 600;
const ROW = 24;
const LABEL = 150;

function StatusChart({ counts }: { counts: Record<string, number> }) {
  const max = Math.max(1, ...STATUSES.map((s) => counts[s] ?? 0));
  return (
    <svg viewBox={`0 0 ${W} ${STATUSES.length * ROW}`} class="chart" role="img" aria-label="Runs by status">
      {STATUSES.map((s, i) => {
        const n = counts[s] ?? 0;
        const w = ((W - LABEL - 60) * n) / max;
        return (
          <g key={s}>
            <text x={0} y={i * ROW + 16} class="tl-label">
              {s}
            </text>
            <rect
              x={LABEL}
              y={i * ROW + 4}
              width={Math.max(n ? 2 : 0, w)}
              height={ROW - 8}
              rx={2}
              class={`tl-bar st-${s}`}
            />
            <text x={LABEL + w + 6} y={i * ROW + 16} class="tl-note">
              {String(n)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function DurationChart({ rows }: { rows: Overview['by_workflow'] }) {
  const max = Math.max(1, ...rows.map((r) => r.p95_ms ?? 0));
  const label = 260;
  const h = rows.length * ROW * 1.5;
  return (
    <svg
      viewBox={`0 0 ${W + 160} ${Math.max(h, ROW)}`}
      class="chart"
      role="img"
      aria-label="Duration by workflow, p50 and p95"
    >
      {rows.map((r, i) => {
        const y = i * ROW * 1.5;
        const scale = (ms: number | null) => ((W - label - 40) * (ms ?? 0)) / max;
        return (
          <g key={r.workflow_id}>
            <text x={0} y={y + 16} class="tl-label">
              {r.workflow_id}
            </text>
            <rect x={label} y={y + 3} width={scale(r.p95_ms)} height={ROW - 6} rx={2} class="bar-p95" />
            <rect x={label} y={y + 7} width={scale(r.p50_ms)} height={ROW - 14} rx={2} class="bar-p50" />
            <text x={label + scale(r.p95_ms) + 6} y={y + 16} class="tl-note">
              {`p50 ${duration(r.p50_ms)} · p95 ${duration(r.p95_ms)} · ${r.ended}/${r.runs} ended`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

export function OverviewScreen() {
  const [o, setO] = useState<Overview | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const load = useCallback(async () => {
    try {
      setO(await api<Overview>('GET', '/executions/overview?since=24h'));
      setError(null);
    } catch (err) {
      setError(err as Error);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  useJournal((e) => e.type === 'execution.status_changed' || e.type === 'execution.created', load, [load]);
  return (
    <section aria-labelledby="ov-title">
      <h1 id="ov-title">Overview: the last 24 hours</h1>
      <ErrorNote error={error} />
      {o && (
        <>
          <p>
            <strong>{o.total}</strong> runs since {new Date(o.since).toLocaleString()}
            {o.truncated && ' (only the first 100000 counted)'}. <a href={href('runs')}>All runs</a>
          </p>
          <div class="charts">
            <figure>
              <figcaption>Runs by status</figcaption>
              <StatusChart counts={o.by_status} />
            </figure>
            <figure>
              <figcaption>Duration by workflow (ended runs; thin bar p50, wide bar p95)</figcaption>
              {o.by_workflow.length === 0 ? <p class="muted">No runs.</p> : <DurationChart rows={o.by_workflow} />}
            </figure>
          </div>
        </>
      )}
    </section>
  );
}
