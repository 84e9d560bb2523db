/** Screens are addressed by the URL's hash (#/runs/<id>): links work, the agent serves one page. */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  parts: string[];
}

function current(): Route {
  const h = location.hash.replace(/^#\/?/, '');
  return { parts: h === '' ? [] : h.split('/').map((p) => decodeURIComponent(p)) };
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
