/**
 * An execution's log, streamed (GET /logs/{id}?follow=true read with fetch, so the token stays in a header):
 * the stored lines, then new ones as the steps write them, until the execution ends. Filter by step and
 * search by text; "follow" keeps the newest line in view.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { followSse } from '../sse';
import type { LogLine } from '../types';

const MAX_LINES = 5000;

/**
 * `state`: the execution's status and its rollback's. The agent ends a log stream when the execution's work
 * ends; when the state changes after that (a rollback by hand), the log is read again from the last line shown.
 */
export function Logs({ id, steps, state: runState }: { id: string; steps: string[]; state: string }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [state, setState] = useState<'open' | 'retrying' | 'closed'>('closed');
  const [ended, setEnded] = useState<string | null>(null);
  const [step, setStep] = useState('');
  const [search, setSearch] = useState('');
  const [followOn, setFollowOn] = useState(true);
  const [round, setRound] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const lastSeq = useRef(0);

  useEffect(() => {
    setLines([]);
    lastSeq.current = 0;
  }, [id]);
  const endedRef = useRef(false);
  endedRef.current = ended !== null;
  // Only a change of the run's state starts another read (not the stream's own end).
  useEffect(() => {
    if (endedRef.current) setRound((r) => r + 1);
  }, [runState]);

  useEffect(() => {
    setEnded(null);
    const c = new AbortController();
    let pending: LogLine[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const add = pending;
      pending = [];
      setLines((cur) => [...cur, ...add.filter((l) => l.seq > (cur.at(-1)?.seq ?? 0))].slice(-MAX_LINES));
    };
    void followSse(`/logs/${encodeURIComponent(id)}?follow=true&since=${lastSeq.current}`, {
      signal: c.signal,
      reconnect: true,
      onState: setState,
      last: (m) => m.event === 'end',
      onMessage(m) {
        try {
          if (m.event === 'log') {
            const line = JSON.parse(m.data) as LogLine;
            lastSeq.current = Math.max(lastSeq.current, line.seq);
            pending.push(line);
            frame ||= requestAnimationFrame(flush);
          } else if (m.event === 'end') setEnded((JSON.parse(m.data) as { status: string | null }).status ?? 'ended');
        } catch {
          // a message that is not JSON is not a log line
        }
      },
    });
    return () => {
      c.abort();
      cancelAnimationFrame(frame);
    };
    // `round` reads again once the run's state changed after its stream ended.
  }, [id, round]);

  const shown = useMemo(() => {
    const needle = search.toLowerCase();
    return lines.filter(
      (l) => (step === '' || l.step === step) && (needle === '' || l.message.toLowerCase().includes(needle)),
    );
  }, [lines, step, search]);

  useEffect(() => {
    if (followOn && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown, followOn]);

  return (
    <section class="logs" aria-labelledby="logs-title">
      <div class="title-row">
        <h2 id="logs-title">Log</h2>
        <span class="muted" data-testid="log-state">
          {ended ? `ended (${ended})` : state === 'open' ? 'streaming' : state === 'retrying' ? 'reconnecting…' : ''}
        </span>
      </div>
      <div class="filters">
        <label>
          Step
          <select value={step} onChange={(e) => setStep(e.currentTarget.value)}>
            <option value="">all steps</option>
            {steps.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <label class="check">
          <input type="checkbox" checked={followOn} onChange={(e) => setFollowOn(e.currentTarget.checked)} />
          Follow
        </label>
      </div>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus to scroll by keyboard */}
      <div class="log-lines" ref={box} tabIndex={0} role="log" aria-label="Log lines">
        {shown.length === 0 && <p class="muted">{lines.length === 0 ? 'No lines yet.' : 'No line matches.'}</p>}
        {shown.map((l) => (
          <div key={l.seq} class={`log-line lv-${l.level} src-${l.stream ?? 'none'}`}>
            <span class="log-ts">{new Date(l.ts).toLocaleTimeString()}</span>
            <span class="log-step">{l.step ?? '·'}</span>
            <span class="log-msg">{l.message}</span>
          </div>
        ))}
      </div>
    </section>
  );
}
