/** Small pieces every screen uses. Everything is rendered as text: no HTML from the agent is ever parsed. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { ApiError } from './api';

export function Chip({ status, label }: { status: string; label?: string }) {
  return <span class={`chip st-${status.replace(/[^a-z_-]/g, '')}`}>{label ?? status}</span>;
}

export function ErrorNote({ error }: { error: ApiError | Error | string | null | undefined }) {
  if (!error) return null;
  const message = typeof error === 'string' ? error : error.message;
  const problems = typeof error === 'object' && 'problems' in error ? error.problems : [];
  return (
    <div class="error-note" role="alert">
      <p>{message}</p>
      {problems.length > 0 && (
        <ul>
          {problems.map((p) => (
            <li key={p.path}>
              <code>{p.path}</code> {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * A modal confirmation (the native dialog: Escape cancels, focus stays inside). `children` says what will
 * happen; the confirm button names the action.
 */
export function Confirm(props: {
  title: string;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm(): void;
  onCancel(): void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onCancel={props.onCancel}>
      <h2 id="confirm-title">{props.title}</h2>
      <div class="confirm-body">{props.children}</div>
      <div class="buttons">
        <button type="button" onClick={props.onCancel}>
          Keep as is
        </button>
        <button
          type="button"
          class={props.danger ? 'danger' : 'primary'}
          disabled={props.busy}
          onClick={props.onConfirm}
        >
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <div class="json">
      <span class="json-label">{label}</span>
      <pre>{JSON.stringify(value, null, 2) ?? 'null'}</pre>
    </div>
  );
}
