// The page of `mumu serve`: compose a multimodal prompt, generate, follow progress, browse the gallery, and load
// a mumu PNG's prompt, references and settings back.
import { makeEditor, type EditorSegment } from './editor.ts';
import { api, follow, type Job, type ModelInfo } from './api.ts';
import { pngText } from './pngmeta.ts';
import { parsePromptText } from '../segments.ts';
import type { StoredSegment } from '../protocol.ts';

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...kids: (Node | string)[]
) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

const message = (text: string, kind: 'info' | 'error' = 'info') => {
  const m = $('#message');
  m.textContent = text;
  m.className = kind;
};
const prompt = makeEditor($('#prompt'), (m) => message(m, 'error'));
const negative = makeEditor($('#negative'), (m) => message(m, 'error'));
const field = (name: string) => $<HTMLInputElement | HTMLSelectElement>(`#settings [name=${name}]`);
let model: ModelInfo;

// --- submitting ---------------------------------------------------------------------------------------------------
// The request as multipart: the JSON in `request`, each image a file part named by its { upload } segment.
export function buildRequest(p: EditorSegment[], neg: EditorSegment[]): FormData {
  const form = new FormData();
  let k = 0;
  const toJson = (segs: EditorSegment[]) =>
    segs.map((s) => {
      if ('text' in s) return { text: s.text };
      const name = `image${++k}`;
      form.append(name, s.image, name);
      return { upload: name };
    });
  const num = (name: string) => (field(name).value.trim() === '' ? undefined : Number(field(name).value));
  const request = {
    prompt: toJson(p),
    ...(neg.length ? { negativePrompt: toJson(neg) } : {}),
    steps: num('steps'),
    guidance: num('guidance'),
    seed: num('seed'),
    n: num('n'),
    sampler: field('sampler').value,
  };
  form.set('request', JSON.stringify(request));
  return form;
}

async function generate(): Promise<void> {
  const p = prompt.segments();
  if (!p.some((s) => 'image' in s || s.text.trim()))
    return message('Write a prompt or drop an image into it first.', 'error');
  message('');
  try {
    const job = await api<Job>('/api/generations', { method: 'POST', body: buildRequest(p, negative.segments()) });
    watch(job);
  } catch (e) {
    message((e as Error).message, 'error');
  }
}

// --- running jobs -------------------------------------------------------------------------------------------------
function watch(job: Job): void {
  const bar = el('progress', { max: job.settings.steps, value: 0 });
  const label = el('span', { className: 'state', textContent: 'queued' });
  const cancel = el('button', { type: 'button', className: 'cancel', textContent: 'Cancel' });
  const li = el(
    'li',
    { className: 'job' },
    el('span', { className: 'job-prompt', textContent: describe(job) }),
    bar,
    label,
    cancel,
  );
  li.dataset.id = job.id;
  $('#active').prepend(li);
  cancel.onclick = async () => {
    cancel.disabled = true;
    label.textContent = 'cancelling…';
    await api(`/api/generations/${job.id}`, { method: 'DELETE' }).catch((e: Error) => message(e.message, 'error'));
  };
  follow(job, {
    progress: ({ step, steps }) => {
      bar.max = steps;
      bar.value = step;
      label.textContent = `step ${step}/${steps}`;
    },
    state: (j) => {
      li.dataset.state = j.state;
      if (j.state === 'running' && j.progress) label.textContent = `step ${j.progress.step}/${j.progress.steps}`;
      if (j.state === 'queued') label.textContent = 'queued';
      if (j.state === 'done') {
        li.remove();
        $('#gallery').prepend(card(j));
      } else if (j.state === 'failed' || j.state === 'cancelled') {
        label.textContent = j.state === 'failed' ? `failed: ${j.error ?? ''}` : 'cancelled';
        cancel.remove();
        setTimeout(() => li.remove(), 8000);
        $('#gallery').prepend(card(j));
      }
    },
  });
}

const describe = (j: Job) =>
  j.prompt
    .map((s) => s.text ?? ' [image] ')
    .join('')
    .replace(/\s+/g, ' ')
    .trim();

// --- the gallery --------------------------------------------------------------------------------------------------
function promptView(segs: Job['prompt']): HTMLElement {
  return el(
    'span',
    { className: 'prompt-view' },
    ...segs.map((s) => (s.image ? el('img', { src: s.image, alt: 'reference', className: 'ref' }) : (s.text ?? ''))),
  );
}

function card(j: Job): HTMLElement {
  const s = j.settings;
  const images = j.images.map((src, i) =>
    el(
      'a',
      { href: src, target: '_blank' },
      el('img', { src, alt: `result ${i + 1}`, className: 'result', draggable: true }),
    ),
  );
  const use = el('button', { type: 'button', textContent: 'Use prompt' });
  use.onclick = () =>
    loadSegments(j.prompt.map(viewToStored), j.negativePrompt.map(viewToStored), (name) => fetchRef(name), s);
  const del = el('button', { type: 'button', textContent: 'Delete' });
  del.onclick = async () => {
    await api(`/api/generations/${j.id}`, { method: 'DELETE' }).catch((e: Error) => message(e.message, 'error'));
    c.remove();
  };
  const settings = `seed ${s.seed} · ${s.steps} steps · guidance ${s.guidance} · ${s.sampler}${s.n > 1 ? ` · ${s.n} images` : ''}${j.seconds !== undefined ? ` · ${j.seconds.toFixed(1)} s` : ''}`;
  const c = el(
    'figure',
    { className: `card ${j.state}` },
    el(
      'div',
      { className: 'results' },
      ...(images.length
        ? images
        : [
            el('div', {
              className: 'no-image',
              textContent: j.state === 'failed' ? `failed: ${j.error ?? ''}` : j.state,
            }),
          ]),
    ),
    el(
      'figcaption',
      {},
      promptView(j.prompt),
      ...(j.negativePrompt.length ? [el('div', { className: 'negative' }, 'not: ', promptView(j.negativePrompt))] : []),
      el('div', { className: 'settings', textContent: settings }),
      el('div', { className: 'actions' }, use, del),
    ),
  );
  c.dataset.id = j.id;
  return c;
}

// A job view's segment (references by URL) as a stored segment (references by that URL too).
const viewToStored = (s: Job['prompt'][number]): StoredSegment =>
  s.image ? { reference: s.image } : { text: s.text ?? '' };

async function fetchRef(url: string): Promise<Blob | null> {
  const r = await fetch(url, { credentials: 'same-origin' });
  return r.ok ? r.blob() : null;
}

let next: string | null = null;
async function loadGallery(more = false): Promise<void> {
  const page = await api<{ items: Job[]; next: string | null }>(
    `/api/generations?limit=12${more && next ? `&before=${next}` : ''}`,
  );
  if (!more) $('#gallery').replaceChildren();
  for (const j of page.items) {
    if (j.state === 'queued' || j.state === 'running') {
      if (!more && !document.querySelector(`#active [data-id="${j.id}"]`)) watch(j);
    } else $('#gallery').append(card(j));
  }
  next = page.next;
  $('#more').hidden = next === null;
}

// --- loading a prompt back ----------------------------------------------------------------------------------------
async function loadSegments(
  p: StoredSegment[],
  neg: StoredSegment[],
  resolve: (name: string) => Promise<Blob | null>,
  settings: Partial<Job['settings']>,
): Promise<void> {
  const missing: string[] = [];
  const toEditor = async (segs: StoredSegment[]) => {
    const out: EditorSegment[] = [];
    for (const s of segs) {
      if ('text' in s) out.push({ text: s.text });
      else {
        const blob = await resolve(s.reference).catch(() => null);
        if (blob) out.push({ image: blob });
        else missing.push(s.reference);
      }
    }
    return out;
  };
  prompt.load(await toEditor(p));
  negative.load(await toEditor(neg));
  for (const [k, v] of Object.entries(settings))
    if (v !== undefined && document.querySelector(`#settings [name=${k}]`)) field(k).value = String(v);
  message(
    missing.length
      ? `Loaded, without ${missing.length} reference(s) this server no longer has: ${missing.join(', ')}`
      : 'Prompt, references and settings loaded.',
    missing.length ? 'error' : 'info',
  );
}

// A PNG made by mumu (by this server, or by `mumu generate`): its prompt, references and settings.
async function loadPng(file: File): Promise<void> {
  const text = await pngText(await file.arrayBuffer());
  if (!text || text.software !== 'mumu')
    return message(`${file.name} is not a PNG made by mumu (no mumu settings in it).`, 'error');
  const segs = text.mumu_segments
    ? (JSON.parse(text.mumu_segments) as { prompt: StoredSegment[]; negativePrompt: StoredSegment[] })
    : { prompt: parsePromptText(text.prompt ?? ''), negativePrompt: parsePromptText(text.negative_prompt ?? '') };
  const urls = JSON.parse(text.references ?? '{}') as Record<string, string>;
  const sampler = text.sampler;
  await loadSegments(segs.prompt, segs.negativePrompt, async (name) => (urls[name] ? fetchRef(urls[name]) : null), {
    seed: text.seed !== undefined ? Number(text.seed) : undefined,
    steps: text.steps !== undefined ? Number(text.steps) : undefined,
    guidance: text.guidance_scale !== undefined ? Number(text.guidance_scale) : undefined,
    n: text.n !== undefined ? Number(text.n) : 1,
    sampler: sampler === 'ddim' || sampler === 'euler' || sampler === 'euler_a' ? sampler : undefined,
  });
}

// --- wiring -------------------------------------------------------------------------------------------------------
document.addEventListener('dragover', (e) => {
  if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
});
document.addEventListener('drop', (e) => {
  // drops that the editors did not take: a mumu PNG to load back
  e.preventDefault();
  const f = e.dataTransfer?.files[0];
  if (f) void loadPng(f);
});
$('#generate').onclick = () => void generate();
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void generate();
});
$('#add-image').onclick = () => $<HTMLInputElement>('#file').click();
$<HTMLInputElement>('#file').onchange = (e) => {
  for (const f of (e.target as HTMLInputElement).files ?? []) prompt.insertImage(f);
  (e.target as HTMLInputElement).value = '';
};
$('#load-png').onclick = () => $<HTMLInputElement>('#png-file').click();
$<HTMLInputElement>('#png-file').onchange = (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) void loadPng(f);
};
$('#more').onclick = () => void loadGallery(true);

async function init(): Promise<void> {
  model = await api<ModelInfo>('/api/model');
  $('#model').textContent =
    `${model.name} · up to ${model.maxImages} images per prompt · ${model.output.width}×${model.output.height} px`;
  const set = (name: string, v: number | string, max?: number) => {
    const f = field(name);
    if (f.value === '') f.value = String(v);
    if (max !== undefined) (f as HTMLInputElement).max = String(max);
  };
  set('steps', model.defaults.steps, model.limits.steps);
  set('guidance', model.defaults.guidance, model.limits.guidance);
  set('n', model.defaults.n, model.limits.n);
  await loadGallery();
  document.body.dataset.ready = 'true';
}
init().catch((e: Error) => message(`The server did not answer: ${e.message}`, 'error'));
