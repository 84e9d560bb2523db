/**
 * One stream of the agent's event journal for the whole tab (GET /events?follow=true), from the newest event
 * on: every screen that shows state listens here and reloads what an event touched, so nothing polls.
 */
import { useEffect } from 'preact/hooks';
import { api } from './api';
import { followSse } from './sse';
import type { JournalEvent } from './types';

type Listener = (e: JournalEvent) => void;
const listeners = new Set<Listener>();
let controller: AbortController | undefined;
let state: 'open' | 'retrying' | 'closed' = 'closed';
const stateListeners = new Set<(s: typeof state) => void>();

export function journalState(): typeof state {
  return state;
}

export function onJournalState(l: (s: typeof state) => void): () => void {
  stateListeners.add(l);
  return () => stateListeners.delete(l);
}

function setState(s: typeof state): void {
  state = s;
  for (const l of stateListeners) l(s);
}

/** Starts following (again, e.g. after signing in). */
export async function startJournal(): Promise<void> {
  stopJournal();
  const c = new AbortController();
  controller = c;
  const { last_seq } = await api<{ last_seq: number }>('GET', '/events?limit=1&since=0');
  if (c.signal.aborted) return;
  void followSse(`/events?follow=true&since=${last_seq}`, {
    signal: c.signal,
    reconnect: true,
    onState: setState,
    onMessage(m) {
      if (m.event === 'error') return;
      let e: JournalEvent;
      try {
        e = JSON.parse(m.data) as JournalEvent;
      } catch {
        return;
      }
      for (const l of listeners) l(e);
    },
  });
}

export function stopJournal(): void {
  controller?.abort();
  controller = undefined;
  setState('closed');
}

/**
 * Calls `reload` once events stop arriving for a moment (a burst of step events is one reload), for events
 * that `matches`.
 */
export function useJournal(matches: (e: JournalEvent) => boolean, reload: () => void, deps: unknown[]): void {
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const l: Listener = (e) => {
      if (!matches(e)) return;
      clearTimeout(timer);
      timer = setTimeout(reload, 120);
    };
    listeners.add(l);
    return () => {
      listeners.delete(l);
      clearTimeout(timer);
    };
  }, deps);
}
