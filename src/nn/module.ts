// Module: the base of every layer and model. There is no registration API: a module's parameters are the Tensors in
// its own properties, its children are the Modules (or arrays of Modules) in its properties, and the property names
// are the checkpoint key segments. So `down_blocks[0].attentions[1].transformer_blocks[0].attn2.to_k.weight` *is* the
// key `down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight`, and one generic walk gives the state dict.
// Caches that must not be parameters live in `#private` fields, which the walk does not see.
import { Tensor, Generator, keep, noGrad, type DType } from '../torch/index.ts';

export type StateDict = Record<string, Tensor>;
// Checkpoint tensors by key, each read when needed.
export type WeightSource = Map<string, { shape: readonly number[]; read: () => Tensor }>;

// Where a parameter or child lives, so `to()` and LoRA injection can replace it in place.
interface Slot<T> {
  path: string;
  owner: object;
  key: string | number;
  value: T;
}

// ---- seeded initialisation ----
// Every layer draws its initial weights from the generator on top of this stack, so `seeded(0, () => new Model(cfg))`
// builds the same weights on every machine. Without a context a process-wide generator seeded 0 is used.
const generators: Generator[] = [];
let fallback: Generator | undefined;

export function seeded<T>(seed: number | Generator, build: () => T): T {
  generators.push(typeof seed === 'number' ? new Generator(seed) : seed);
  try {
    return build();
  } finally {
    generators.pop();
  }
}
export const initGenerator = (): Generator => generators[generators.length - 1] ?? (fallback ??= new Generator(0));

// A new trainable leaf, kept alive beyond any tidy() scope the constructor runs in.
export const parameter = (t: Tensor): Tensor => keep(t.requiresGrad_(true));

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

export class StateDictError extends Error {
  constructor(
    readonly report: LoadReport,
    where: string,
  ) {
    const lines = [`${where}: state dict does not match the model`];
    const list = (title: string, keys: string[]) => {
      if (keys.length) lines.push(`  ${title} (${keys.length}):`, ...keys.map((k) => `    ${k}`));
    };
    list('missing keys', report.missing);
    list('unexpected keys', report.unexpected);
    list(
      'wrong shape',
      report.mismatched.map((m) => `${m.key}: model [${m.expected}], checkpoint [${m.got}]`),
    );
    super(lines.join('\n'));
    this.name = 'StateDictError';
  }
}

const isChildList = (v: unknown): v is (Module | Tensor)[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => x instanceof Module || x instanceof Tensor);

export abstract class Module {
  training = true;

  // ---- the walk ----
  *paramSlots(prefix = ''): Iterable<Slot<Tensor>> {
    for (const [key, value] of Object.entries(this)) {
      const path = prefix + key;
      if (value instanceof Tensor) yield { path, owner: this, key, value };
      else if (value instanceof Module) yield* value.paramSlots(path + '.');
      else if (isChildList(value)) {
        for (let i = 0; i < value.length; i++) {
          const v = value[i]!;
          if (v instanceof Tensor) yield { path: `${path}.${i}`, owner: value, key: i, value: v };
          else yield* v.paramSlots(`${path}.${i}.`);
        }
      }
    }
  }

  // Every module below this one (itself first, with path ''), with where it hangs.
  *moduleSlots(prefix = '', owner: object | null = null, key: string | number = ''): Iterable<Slot<Module>> {
    yield { path: prefix.replace(/\.$/, ''), owner: owner ?? this, key, value: this };
    for (const [k, value] of Object.entries(this)) {
      if (value instanceof Module) yield* value.moduleSlots(prefix + k + '.', this, k);
      else if (isChildList(value)) {
        for (let i = 0; i < value.length; i++) {
          const v = value[i]!;
          if (v instanceof Module) yield* v.moduleSlots(`${prefix}${k}.${i}.`, value, i);
        }
      }
    }
  }

  namedParameters(): [string, Tensor][] {
    return [...this.paramSlots()].map((s) => [s.path, s.value]);
  }
  parameters(): Tensor[] {
    return [...this.paramSlots()].map((s) => s.value);
  }
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }
  namedModules(): [string, Module][] {
    return [...this.moduleSlots()].map((s) => [s.path, s.value]);
  }

  numParameters({ trainableOnly = false } = {}): number {
    return this.parameters().reduce((n, p) => n + (trainableOnly && !p.requiresGrad ? 0 : p.numel), 0);
  }

  // ---- modes ----
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  // Freeze (false) or unfreeze (true) every parameter below this module.
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }

  // Moves or casts every parameter. Tensors cannot change device in place, so each slot gets a new leaf tensor with
  // the same requiresGrad (build optimisers after calling this).
  to(target: DType | string): this {
    noGrad(() => {
      for (const s of this.paramSlots()) {
        const t = keep(s.value.detach().to(target));
        if (s.value.requiresGrad) t.requiresGrad_(true);
        (s.owner as Record<string | number, unknown>)[s.key] = t;
      }
    });
    return this;
  }

  // ---- checkpoints ----
  // Detached views of the parameters (no copies): save them, or copy from them.
  stateDict(): StateDict {
    const sd: StateDict = {};
    for (const s of this.paramSlots()) sd[s.path] = s.value.detach();
    return sd;
  }

  // Copies matching tensors into the parameters in place (so optimisers holding them stay valid). Strict mode checks
  // the whole dict first and reports every missing, unexpected and wrong-shape key in one error; non-strict mode
  // loads what fits and returns the same report.
  loadStateDict(sd: StateDict, opts: { strict?: boolean; where?: string } = {}): LoadReport {
    const source: WeightSource = new Map(Object.entries(sd).map(([k, t]) => [k, { shape: t.shape, read: () => t }]));
    return this.loadFrom(source, { ...opts, disposeAfterCopy: false });
  }

  // The same from tensors read one at a time (a checkpoint file opened lazily): shapes are checked from the file
  // header before any data is read, and each tensor is freed once copied, so loading never holds a second copy of
  // the model.
  loadFrom(
    source: WeightSource,
    { strict = true, where = this.constructor.name, disposeAfterCopy = true } = {},
  ): LoadReport {
    const slots = new Map([...this.paramSlots()].map((s) => [s.path, s.value]));
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    for (const key of slots.keys()) if (!source.has(key)) report.missing.push(key);
    for (const [key, { shape }] of source) {
      const p = slots.get(key);
      if (!p) report.unexpected.push(key);
      else if (p.shape.join() !== shape.join())
        report.mismatched.push({ key, expected: [...p.shape], got: [...shape] });
    }
    const bad = report.missing.length + report.unexpected.length + report.mismatched.length;
    if (strict && bad) throw new StateDictError(report, where);
    const wrong = new Set(report.mismatched.map((m) => m.key));
    noGrad(() => {
      for (const [key, p] of slots) {
        const entry = source.get(key);
        if (!entry || wrong.has(key)) continue;
        const t = entry.read();
        p.copy_(t);
        if (disposeAfterCopy) t.dispose();
      }
    });
    return report;
  }
}
