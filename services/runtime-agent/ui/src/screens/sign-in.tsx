/** Sign-in: a token pasted once, kept in this tab (sessionStorage), sent as a Bearer header. */
import { useState } from 'preact/hooks';

export function SignIn({ error, onToken }: { error?: string; onToken(token: string): void }) {
  const [value, setValue] = useState('');
  return (
    <main class="sign-in">
      <h1>Runtime Agent</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim() !== '') onToken(value.trim());
        }}
      >
        <label for="token">Bearer token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          aria-describedby="token-help"
        />
        <p id="token-help" class="help">
          A token from the agent's tokens file. It stays in this tab only and is sent with each request; it never
          appears in a URL.
        </p>
        {error && (
          <p class="error-note" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}
