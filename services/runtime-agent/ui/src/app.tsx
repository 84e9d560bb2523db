/**
 * The console's shell: who is signed in, the navigation, and the screen the URL names. The agent decides what
 * each role may do (GET /whoami); the console only hides what would be refused anyway.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { type ApiError, api, whenUnauthorized } from './api';
import { journalState, onJournalState, startJournal, stopJournal } from './journal';
import { href, useRoute } from './router';
import { OverviewScreen } from './screens/overview';
import { RunScreen } from './screens/run';
import { RunsScreen } from './screens/runs';
import { SignIn } from './screens/sign-in';
import { RunForm, WorkflowsScreen } from './screens/workflows';
import { setToken, token } from './session';
import type { Me } from './types';

type Auth = { state: 'loading' } | { state: 'signed-out'; error?: string } | { state: 'in'; me: Me };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'loading' });
  const [live, setLive] = useState(journalState());
  const route = useRoute();

  const check = useCallback(async () => {
    const had = token() !== null;
    try {
      const me = await api<Me>('GET', '/whoami');
      setAuth({ state: 'in', me });
      void startJournal().catch(() => {});
    } catch (err) {
      stopJournal();
      const e = err as ApiError;
      if (e.status === 401) setAuth({ state: 'signed-out', error: had ? 'the agent refused this token' : undefined });
      else setAuth({ state: 'signed-out', error: e.message });
    }
  }, []);

  useEffect(() => {
    whenUnauthorized(() => {
      setToken(null);
      stopJournal();
      setAuth({ state: 'signed-out', error: 'the agent no longer accepts this token: sign in again' });
    });
    void check();
    return onJournalState(setLive);
  }, [check]);

  const signOut = () => {
    setToken(null);
    stopJournal();
    setAuth({ state: 'signed-out' });
  };

  if (auth.state === 'loading') return <p class="loading">Loading…</p>;
  if (auth.state === 'signed-out')
    return (
      <SignIn
        error={auth.error}
        onToken={(t) => {
          setToken(t);
          void check();
        }}
      />
    );

  const { me } = auth;
  const [screen = 'runs', id, sub] = route.parts;
  const nav = (name: string, label: string) => (
    <a href={href(name)} aria-current={screen === name ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <header class="top">
        <span class="brand">Runtime Agent</span>
        <nav aria-label="Screens">
          {nav('runs', 'Runs')}
          {nav('workflows', 'Workflows')}
          {nav('overview', 'Overview')}
        </nav>
        <span class={`live live-${live}`} title="the event stream this page updates from">
          {live === 'open' ? 'live' : live === 'retrying' ? 'reconnecting…' : 'offline'}
        </span>
        <span class="who" data-testid="who">
          {me.name} <span class="role">{me.role}</span>
        </span>
        {me.authentication && (
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        )}
      </header>
      <main>
        {screen === 'runs' && id === undefined && <RunsScreen params={route.params} />}
        {screen === 'runs' && id !== undefined && <RunScreen id={id} me={me} />}
        {screen === 'workflows' && id === undefined && <WorkflowsScreen me={me} />}
        {screen === 'workflows' && id !== undefined && sub === 'run' && <RunForm workflowId={id} me={me} />}
        {screen === 'workflows' && id !== undefined && sub !== 'run' && <WorkflowsScreen me={me} open={id} />}
        {screen === 'overview' && <OverviewScreen />}
      </main>
    </>
  );
}
