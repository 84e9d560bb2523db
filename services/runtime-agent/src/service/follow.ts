/**
 * Following a numbered stream (journal events, log lines): the stored items after `since`, then live ones as
 * they come, none missed and none twice. Live items are held while the stored ones are read, and anything
 * at or below the last seq handed out is dropped.
 */
export interface FollowSource<T extends { seq: number }> {
  /** Stored items after `since`, oldest first, at most `limit`. */
  page(since: number, limit: number): T[];
  /** Live items as they are committed; returns the unsubscribe function. */
  subscribe(push: (item: T) => void): () => void;
}

const PAGE = 1000;

/** Calls `deliver` with each item after `since`, in seq order; returns the function that stops following. */
export function follow<T extends { seq: number }>(
  source: FollowSource<T>,
  since: number,
  deliver: (item: T) => void,
  matches: (item: T) => boolean = () => true,
): () => void {
  let last = since;
  let held: T[] | undefined = [];
  let stopped = false;
  const send = (item: T) => {
    if (stopped || item.seq <= last) return;
    last = item.seq;
    if (matches(item)) deliver(item);
  };
  const unsubscribe = source.subscribe((item) => (held ? held.push(item) : send(item)));
  for (;;) {
    const page = source.page(last, PAGE);
    for (const item of page) send(item);
    if (page.length < PAGE || stopped) break;
  }
  const backlog = held;
  held = undefined;
  for (const item of backlog) send(item);
  return () => {
    stopped = true;
    unsubscribe();
  };
}
