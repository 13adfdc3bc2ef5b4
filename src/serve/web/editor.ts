// The multimodal prompt editor: a contenteditable line in which images sit inline, as small thumbnails, at the word
// they belong to. Images are dropped or pasted at the point where they land (or added at the caret with the file
// button), moved by dragging, and removed with their x button or Backspace. segments() reads it back in order.
export type EditorSegment = { text: string } | { image: Blob };

const CHIP_TYPE = 'application/x-mumu-chip';
let nextChip = 0;

// The caret position under a point (drops): Chromium/WebKit's caretRangeFromPoint, or the standard
// caretPositionFromPoint.
function rangeAt(x: number, y: number): Range | null {
  const doc = document as Document & { caretRangeFromPoint?: (x: number, y: number) => Range | null };
  if (doc.caretPositionFromPoint) {
    const p = doc.caretPositionFromPoint(x, y);
    if (!p) return null;
    const r = document.createRange();
    r.setStart(p.offsetNode, p.offset);
    return r;
  }
  return doc.caretRangeFromPoint?.(x, y) ?? null;
}

const isImageFile = (f: File) => f.type.startsWith('image/');

export class PromptEditor {
  private blobs = new Map<string, { blob: Blob; url: string }>();

  constructor(
    readonly el: HTMLElement,
    private onError: (msg: string) => void = () => {},
  ) {
    el.addEventListener('dragover', (e) => {
      const types = [...(e.dataTransfer?.types ?? [])];
      if (types.includes('Files') || types.includes(CHIP_TYPE)) {
        e.preventDefault();
        e.stopPropagation();
        e.dataTransfer!.dropEffect = types.includes(CHIP_TYPE) ? 'move' : 'copy';
        el.classList.add('drop-target');
      }
    });
    el.addEventListener('dragleave', () => el.classList.remove('drop-target'));
    el.addEventListener('drop', (e) => this.onDrop(e));
    el.addEventListener('paste', (e) => this.onPaste(e));
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') e.preventDefault(); // one line, as the model reads it; Ctrl+Enter generates (main.ts)
    });
  }

  private inside(r: Range | null): r is Range {
    return r !== null && this.el.contains(r.startContainer);
  }

  private endRange(): Range {
    const r = document.createRange();
    r.selectNodeContents(this.el);
    r.collapse(false);
    return r;
  }

  private caret(): Range {
    const sel = getSelection();
    const r = sel && sel.rangeCount ? sel.getRangeAt(0) : null;
    return this.inside(r) ? r : this.endRange();
  }

  private onDrop(e: DragEvent): void {
    e.preventDefault();
    e.stopPropagation();
    this.el.classList.remove('drop-target');
    const dt = e.dataTransfer;
    if (!dt) return;
    const at = rangeAt(e.clientX, e.clientY);
    const range = this.inside(at) ? at : this.endRange();
    const chipId = dt.getData(CHIP_TYPE);
    if (chipId) {
      // a thumbnail moved within this editor or from the other one
      const chip = document.querySelector<HTMLElement>(`[data-chip="${CSS.escape(chipId)}"]`);
      if (!chip || chip.contains(range.startContainer)) return;
      const from = editors.get(chip.closest<HTMLElement>('.editor')!);
      const entry = from?.blobs.get(chipId);
      if (!entry) return;
      from!.blobs.delete(chipId);
      chip.remove();
      this.insertImage(entry.blob, range, entry.url);
      return;
    }
    const files = [...dt.files];
    const images = files.filter(isImageFile);
    if (files.length > images.length)
      this.onError(`left out ${files.length - images.length} file(s) that are not images`);
    for (const f of images.reverse()) this.insertImage(f, range); // each at the same point: reversed keeps their order
  }

  private onPaste(e: ClipboardEvent): void {
    const cd = e.clipboardData;
    if (!cd) return;
    e.preventDefault();
    const images = [...cd.files].filter(isImageFile);
    const range = this.caret();
    if (images.length) {
      for (const f of images.reverse()) this.insertImage(f, range);
      return;
    }
    // plain text only: pasted rich text would bring markup into the prompt
    const text = cd.getData('text/plain').replace(/\s*\n\s*/g, ' ');
    range.deleteContents();
    const node = document.createTextNode(text);
    range.insertNode(node);
    this.placeCaretAfter(node);
  }

  private placeCaretAfter(node: Node): void {
    const r = document.createRange();
    r.setStartAfter(node);
    r.collapse(true);
    const sel = getSelection();
    sel?.removeAllRanges();
    sel?.addRange(r);
  }

  // Inserts an image thumbnail at a range (default: the caret, or the end).
  insertImage(blob: Blob, at: Range = this.caret(), url = URL.createObjectURL(blob)): HTMLElement {
    const id = `c${nextChip++}`;
    this.blobs.set(id, { blob, url });
    const chip = document.createElement('span');
    chip.className = 'chip';
    chip.contentEditable = 'false';
    chip.draggable = true;
    chip.dataset.chip = id;
    const img = document.createElement('img');
    img.src = url;
    img.alt = 'reference image';
    img.draggable = false;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'remove';
    remove.title = 'remove this image';
    remove.setAttribute('aria-label', 'remove this image');
    remove.textContent = '×';
    remove.addEventListener('click', () => {
      this.blobs.delete(id);
      URL.revokeObjectURL(url);
      chip.remove();
    });
    chip.addEventListener('dragstart', (e) => {
      e.dataTransfer!.setData(CHIP_TYPE, id);
      e.dataTransfer!.effectAllowed = 'move';
    });
    chip.append(img, remove);
    at.insertNode(chip);
    this.el.normalize(); // no empty or split text nodes left around the thumbnail
    this.placeCaretAfter(chip);
    return chip;
  }

  segments(): EditorSegment[] {
    const out: EditorSegment[] = [];
    const addText = (t: string) => {
      if (!t) return;
      const last = out[out.length - 1];
      if (last && 'text' in last) last.text += t;
      else out.push({ text: t });
    };
    const walk = (n: Node) => {
      if (n.nodeType === Node.TEXT_NODE) return addText((n.textContent ?? '').replace(/\u00a0/g, ' '));
      if (!(n instanceof HTMLElement)) return;
      const id = n.dataset.chip;
      if (id !== undefined) {
        const entry = this.blobs.get(id);
        if (entry) out.push({ image: entry.blob });
        return;
      }
      if (n.tagName === 'BR') return addText(' ');
      n.childNodes.forEach(walk);
    };
    this.el.childNodes.forEach(walk);
    return out;
  }

  clear(): void {
    for (const { url } of this.blobs.values()) URL.revokeObjectURL(url);
    this.blobs.clear();
    this.el.replaceChildren();
  }

  load(segments: EditorSegment[]): void {
    this.clear();
    for (const s of segments) {
      if ('text' in s) this.el.append(document.createTextNode(s.text));
      else this.insertImage(s.image, this.endRange());
    }
  }
}

// editor element -> editor, so a thumbnail dragged across editors finds its blob
export const editors = new Map<HTMLElement, PromptEditor>();
export function makeEditor(el: HTMLElement, onError?: (msg: string) => void): PromptEditor {
  const ed = new PromptEditor(el, onError);
  editors.set(el, ed);
  return ed;
}
