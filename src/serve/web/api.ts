// The page's side of the API: fetch with the server's one-line errors, and the sign-in dialog when the server has
// a token (POST /api/session sets an HttpOnly cookie, which the event streams and image URLs then carry too).
import type { JobView } from '../schema.ts';

export type { JobView };
export type Job = JobView;

export interface ModelInfo {
  name: string;
  maxImages: number;
  tokensPerImage: number;
  referenceSize: number;
  output: { width: number; height: number };
  limits: { steps: number; n: number; guidance: number; seed: number; uploadBytes: number };
  defaults: { steps: number; guidance: number; n: number; sampler: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let signingIn: Promise<void> | null = null;

// Shows the token dialog until the server accepts a token.
function signIn(): Promise<void> {
  signingIn ??= new Promise<void>((resolve) => {
    const dialog = document.querySelector<HTMLDialogElement>('#login')!;
    const form = dialog.querySelector('form')!;
    const input = dialog.querySelector<HTMLInputElement>('input[name=token]')!;
    const msg = dialog.querySelector<HTMLElement>('.login-error')!;
    form.onsubmit = async (e) => {
      e.preventDefault();
      const r = await fetch('/api/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: input.value }),
      });
      if (r.ok) {
        dialog.close();
        signingIn = null;
        resolve();
      } else msg.textContent = "That token is not this server's.";
    };
    dialog.showModal();
    input.focus();
  });
  return signingIn;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  for (;;) {
    const r = await fetch(path, { ...init, credentials: 'same-origin' });
    if (r.status === 401) {
      await signIn();
      continue;
    }
    if (r.status === 204) return undefined as T;
    const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
    if (!r.ok) throw new ApiError(r.status, (body as { error?: string }).error ?? `${r.status}`);
    return body as T;
  }
}

// Follows a job's event stream until it ends; returns a function that stops following.
export function follow(
  job: Job,
  on: { state(j: Job): void; progress(p: { step: number; steps: number }): void },
): () => void {
  const es = new EventSource(job.events);
  es.addEventListener('state', (e) => {
    const j = JSON.parse((e as MessageEvent<string>).data) as Job;
    on.state(j);
    if (['done', 'failed', 'cancelled'].includes(j.state)) es.close();
  });
  es.addEventListener('progress', (e) =>
    on.progress(JSON.parse((e as MessageEvent<string>).data) as { step: number; steps: number }),
  );
  return () => es.close();
}
