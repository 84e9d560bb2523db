/**
 * The steps as a timeline: a bar per step from its start to its end, coloured by status, with its attempts;
 * the rollback's compensations after them. Steps a retry kept from the run it retries get no bar (their times
 * are the other run's) and stay off the axis. Drawn in SVG with attributes
 * only (the page allows no inline style).
 */
import { duration } from '../format';
import type { StepView } from '../types';

const ROW = 26;
const LABEL = 210;
const WIDTH = 1000;

interface Row {
  step: StepView;
  rollback: boolean;
}

/** A step a retry kept from the run it retries (its outputs are reused, its times are the other run's). */
const kept = (step: StepView) => step.outputs_source === 'reused';

export function Timeline({ steps, rollback, now }: { steps: StepView[]; rollback: StepView[]; now: number }) {
  const rows: Row[] = [
    ...steps.map((s) => ({ step: s, rollback: false })),
    ...rollback.map((s) => ({ step: s, rollback: true })),
  ];
  const times = rows
    .filter(({ step }) => !kept(step))
    .flatMap(({ step }) => [step.started_at, step.finished_at])
    .filter((t): t is string => t !== null)
    .map(Date.parse);
  const running = rows.some(({ step }) => step.started_at && !step.finished_at);
  if (running) times.push(now);
  const t0 = times.length ? Math.min(...times) : now;
  const t1 = Math.max(times.length ? Math.max(...times) : now, t0 + 1);
  const span = WIDTH - LABEL - 90;
  const x = (t: number) => LABEL + ((t - t0) / (t1 - t0)) * span;
  const height = rows.length * ROW + (rollback.length ? 14 : 0) + 4;
  let y = 2;
  return (
    <figure class="timeline">
      <svg
        viewBox={`0 0 ${WIDTH} ${height}`}
        role="img"
        aria-label={`Timeline of ${rows.length} steps over ${duration(t1 - t0)}`}
      >
        {rows.map(({ step, rollback: isRollback }, i) => {
          if (isRollback && i === steps.length) y += 14;
          const top = y;
          y += ROW;
          const start = step.started_at && !kept(step) ? Date.parse(step.started_at) : null;
          const end = step.finished_at ? Date.parse(step.finished_at) : start !== null ? now : null;
          const bx = start === null ? null : x(start);
          const bw = start === null || end === null ? 0 : Math.max(3, x(end) - x(start));
          return (
            <g key={`${isRollback ? 'r' : 'm'}-${step.name}`} class={`tl-row${isRollback ? ' tl-rollback' : ''}`}>
              <title>{`${step.name}: ${step.status}${step.attempts > 1 ? `, ${step.attempts} attempts` : ''}${start !== null && end !== null ? `, ${duration(end - start)}` : ''}`}</title>
              <text x={4} y={top + 17} class="tl-label">
                {isRollback ? `↶ ${step.name}` : step.name}
              </text>
              {bx === null ? (
                <text x={LABEL} y={top + 17} class="tl-none">
                  {kept(step) ? `${step.status}, kept from the run retried` : step.status.replace('_', ' ')}
                </text>
              ) : (
                <rect x={bx} y={top + 4} width={bw} height={ROW - 8} rx={3} class={`tl-bar st-${step.status}`} />
              )}
              {bx !== null && (
                <text x={bx + bw + 6} y={top + 17} class="tl-note">
                  {`${step.status}${step.attempts > 1 ? ` ×${step.attempts}` : ''}`}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption class="legend">
        Bars run from each step's start to its end; ×N is the number of attempts (retries); ↶ marks the rollback's
        compensations.
      </figcaption>
    </figure>
  );
}
