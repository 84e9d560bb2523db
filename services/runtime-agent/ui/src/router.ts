/**
 * Screens are addressed by the URL's hash (#/runs/<id>), a screen's filters by a query after it
 * (#/runs?status=failed,rolled_back&since=1h): links work and can be shared, the agent serves one page.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  parts: string[];
  params: URLSearchParams;
}

function split(): { path: string; query: string } {
  const h = location.hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  return q === -1 ? { path: h, query: '' } : { path: h.slice(0, q), query: h.slice(q + 1) };
}

function current(): Route {
  const { path, query } = split();
  return {
    parts: path === '' ? [] : path.split('/').map((p) => decodeURIComponent(p)),
    params: new URLSearchParams(query),
  };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const on = () => setRoute(current());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function href(...parts: string[]): string {
  return `#/${parts.map((p) => encodeURIComponent(p)).join('/')}`;
}

export function go(...parts: string[]): void {
  location.hash = href(...parts);
}

/** Sets this screen's query (its filters) in place: no history entry per change; empty values are left out. */
export function setQuery(params: Record<string, string>): void {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '') q.set(k, v);
  const query = q.toString();
  location.replace(`#/${split().path}${query ? `?${query}` : ''}`);
}
