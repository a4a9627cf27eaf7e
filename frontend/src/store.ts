/**
 * Annotation store (no DOM): the annotations of one image plus the dismissed model proposals,
 * changed only through commands that know how to undo themselves. Tools build commands; the
 * undo/redo stack lives here so that every edit, whatever tool made it, is undoable the same way.
 */
import type { Geometry } from "./geometry";

export type Source = "manual" | "model" | "import";

export interface Annotation {
  uid: string;
  label: number;
  geometry: Geometry;
  z_order: number;
  source: Source;
  score: number | null;
  model_version: number | null;
  prediction: number | null;
  attributes: Record<string, unknown>;
  // Read-only fields sent by the server; never sent back.
  bbox?: unknown;
  area?: number;
  author?: unknown;
  updated_at?: string;
}

/** What the store exposes to commands; commands never touch anything else. */
export interface StoreState {
  get(uid: string): Annotation | undefined;
  put(a: Annotation): void;
  delete(uid: string): void;
  setDismissed(predictionId: number, dismissed: boolean): void;
}

export interface Command {
  readonly name: string;
  do(s: StoreState): void;
  undo(s: StoreState): void;
}

export interface ChangeEvent {
  /** uids whose annotation was added, changed or removed. */
  uids: Set<string>;
  proposalsChanged: boolean;
  /** "repair": the server stored a normalised geometry and the store took it over (see patch). */
  cause: "do" | "undo" | "redo" | "load" | "repair";
  command?: Command;
}

export type ChangeListener = (e: ChangeEvent) => void;

// ---------------------------------------------------------------- commands

export class AddAnnotation implements Command {
  readonly name = "add";
  constructor(readonly annotation: Annotation) {}
  do(s: StoreState): void {
    s.put(this.annotation);
  }
  undo(s: StoreState): void {
    s.delete(this.annotation.uid);
  }
}

export class RemoveAnnotation implements Command {
  readonly name = "delete";
  constructor(readonly before: Annotation) {}
  do(s: StoreState): void {
    s.delete(this.before.uid);
  }
  undo(s: StoreState): void {
    s.put(this.before);
  }
}

/** Replaces one annotation by another version of itself (geometry, label, z-order, ...). */
export class UpdateAnnotation implements Command {
  constructor(readonly name: string, readonly before: Annotation, readonly after: Annotation) {}
  do(s: StoreState): void {
    s.put(this.after);
  }
  undo(s: StoreState): void {
    s.put(this.before);
  }
}

export class DismissProposal implements Command {
  readonly name = "dismiss proposal";
  constructor(readonly predictionId: number) {}
  do(s: StoreState): void {
    s.setDismissed(this.predictionId, true);
  }
  undo(s: StoreState): void {
    s.setDismissed(this.predictionId, false);
  }
}

/** Several commands as one undo step (accept all, z-order swaps, ...). */
export class Batch implements Command {
  constructor(readonly name: string, readonly commands: Command[]) {}
  do(s: StoreState): void {
    for (const c of this.commands) c.do(s);
  }
  undo(s: StoreState): void {
    for (let i = this.commands.length - 1; i >= 0; i--) this.commands[i].undo(s);
  }
}

// ---------------------------------------------------------------- store

export class AnnotationStore {
  private items = new Map<string, Annotation>();
  private dismissed = new Set<number>();
  private undoStack: Command[] = [];
  private redoStack: Command[] = [];
  private listeners = new Set<ChangeListener>();
  private pending: ChangeEvent | null = null;
  /** Increases on every change; the autosaver compares it with the last saved revision. */
  revision = 0;
  readonly maxUndo = 500;

  private readonly state: StoreState = {
    get: (uid) => this.items.get(uid),
    put: (a) => {
      this.items.set(a.uid, a);
      this.pending!.uids.add(a.uid);
    },
    delete: (uid) => {
      this.items.delete(uid);
      this.pending!.uids.add(uid);
    },
    setDismissed: (id, d) => {
      if (d) this.dismissed.add(id);
      else this.dismissed.delete(id);
      this.pending!.proposalsChanged = true;
    },
  };

  constructor(annotations: Annotation[] = [], dismissed: number[] = []) {
    for (const a of annotations) this.items.set(a.uid, a);
    for (const d of dismissed) this.dismissed.add(d);
  }

  subscribe(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get(uid: string): Annotation | undefined {
    return this.items.get(uid);
  }

  has(uid: string): boolean {
    return this.items.has(uid);
  }

  all(): Annotation[] {
    return [...this.items.values()];
  }

  get size(): number {
    return this.items.size;
  }

  /** Bottom to top (draw order); ties broken by uid so the order is stable. */
  sortedByZ(): Annotation[] {
    return this.all().sort((a, b) => a.z_order - b.z_order || (a.uid < b.uid ? -1 : 1));
  }

  maxZ(): number {
    let m = 0;
    for (const a of this.items.values()) if (a.z_order > m) m = a.z_order;
    return m;
  }

  isDismissed(predictionId: number): boolean {
    return this.dismissed.has(predictionId);
  }

  dismissedIds(): number[] {
    return [...this.dismissed];
  }

  /** Prediction ids that already became annotations (the editor hides those proposals). */
  acceptedPredictionIds(): Set<number> {
    const s = new Set<number>();
    for (const a of this.items.values()) if (a.prediction != null) s.add(a.prediction);
    return s;
  }

  execute(cmd: Command): void {
    this.run(cmd, "do", (c) => c.do(this.state));
    this.undoStack.push(cmd);
    if (this.undoStack.length > this.maxUndo) this.undoStack.shift();
    this.redoStack = [];
  }

  canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  undo(): Command | null {
    const cmd = this.undoStack.pop();
    if (!cmd) return null;
    this.run(cmd, "undo", (c) => c.undo(this.state));
    this.redoStack.push(cmd);
    return cmd;
  }

  redo(): Command | null {
    const cmd = this.redoStack.pop();
    if (!cmd) return null;
    this.run(cmd, "redo", (c) => c.do(this.state));
    this.undoStack.push(cmd);
    return cmd;
  }

  /** Replace everything (initial load, "load their version"); clears history since it no longer applies. */
  load(annotations: Annotation[], dismissed?: number[]): void {
    const uids = new Set<string>([...this.items.keys(), ...annotations.map((a) => a.uid)]);
    this.items = new Map(annotations.map((a) => [a.uid, a]));
    if (dismissed) this.dismissed = new Set(dismissed);
    this.undoStack = [];
    this.redoStack = [];
    this.revision++;
    this.emit({ uids, proposalsChanged: true, cause: "load" });
  }

  /**
   * Take over a geometry the server normalised when it stored the object ("repaired"). Not a
   * command: there is nothing to undo (the server already holds exactly this), and the revision
   * stays, because the store and the server agree again. Returns false when the object is gone
   * or was edited since (`expected` is the version that was sent), so the repair no longer applies.
   */
  patch(uid: string, expected: Annotation, geometry: Geometry): boolean {
    if (this.items.get(uid) !== expected) return false;
    this.items.set(uid, { ...expected, geometry });
    this.emit({ uids: new Set([uid]), proposalsChanged: false, cause: "repair" });
    return true;
  }

  private run(cmd: Command, cause: ChangeEvent["cause"], fn: (c: Command) => void): void {
    this.pending = { uids: new Set(), proposalsChanged: false, cause, command: cmd };
    try {
      fn(cmd);
    } finally {
      const ev = this.pending;
      this.pending = null;
      this.revision++;
      this.emit(ev);
    }
  }

  private emit(e: ChangeEvent): void {
    for (const fn of this.listeners) fn(e);
  }
}

// ---------------------------------------------------------------- command builders

export function setGeometry(a: Annotation, geometry: Geometry, name = "edit shape"): UpdateAnnotation {
  return new UpdateAnnotation(name, a, { ...a, geometry });
}

export function setLabel(a: Annotation, label: number): UpdateAnnotation {
  return new UpdateAnnotation("change label", a, { ...a, label });
}

/**
 * Bring forward: swap z with the nearest object above that overlaps (by bbox); overlap matters
 * because that is the only stacking a user can see. Returns null when already on top.
 */
export function zOrderStep(
  store: AnnotationStore,
  uid: string,
  direction: 1 | -1,
  overlaps: (a: Annotation, b: Annotation) => boolean,
): Command | null {
  const a = store.get(uid);
  if (!a) return null;
  const order = store.sortedByZ();
  const i = order.findIndex((o) => o.uid === uid);
  for (let j = i + direction; j >= 0 && j < order.length; j += direction) {
    const b = order[j];
    if (!overlaps(a, b)) continue;
    let za = b.z_order, zb = a.z_order;
    if (za === zb) {
      // Equal z: make the move visible by stepping past the neighbour.
      za = b.z_order + direction;
    }
    return new Batch(direction > 0 ? "bring forward" : "send backward", [
      new UpdateAnnotation("z-order", a, { ...a, z_order: za }),
      new UpdateAnnotation("z-order", b, { ...b, z_order: zb }),
    ]);
  }
  return null;
}

/**
 * Replace the whole set by `after` as one undoable step (restoring journaled edits): adds,
 * changes and removals against what the store holds now. null when there is no difference.
 */
export function replaceSet(store: AnnotationStore, after: Annotation[], name: string): Command | null {
  const commands: Command[] = [];
  const keep = new Set<string>();
  for (const a of after) {
    keep.add(a.uid);
    const before = store.get(a.uid);
    if (!before) commands.push(new AddAnnotation(a));
    else if (!samePayload(before, a)) commands.push(new UpdateAnnotation(name, before, a));
  }
  for (const before of store.all()) if (!keep.has(before.uid)) commands.push(new RemoveAnnotation(before));
  return commands.length ? new Batch(name, commands) : null;
}

/**
 * The command with every geometry it would put into the store passed through `fix`
 * (normalizeGeometry): an object whose geometry fixes to nothing is not added, or is removed.
 * Returns `cmd` itself when nothing changed and null when nothing is left to do.
 */
export function normalizeCommand(cmd: Command, fix: (g: Geometry) => Geometry | null): Command | null {
  if (cmd instanceof AddAnnotation) {
    const g = fix(cmd.annotation.geometry);
    if (g === cmd.annotation.geometry) return cmd;
    return g ? new AddAnnotation({ ...cmd.annotation, geometry: g }) : null;
  }
  if (cmd instanceof UpdateAnnotation) {
    // Geometry the store already holds is not re-checked (a label or z-order change).
    if (cmd.after.geometry === cmd.before.geometry) return cmd;
    const g = fix(cmd.after.geometry);
    if (g === cmd.after.geometry) return cmd;
    return g ? new UpdateAnnotation(cmd.name, cmd.before, { ...cmd.after, geometry: g }) : new RemoveAnnotation(cmd.before);
  }
  if (cmd instanceof Batch) {
    const parts = cmd.commands.map((c) => normalizeCommand(c, fix));
    if (parts.every((c, i) => c === cmd.commands[i])) return cmd;
    const left = parts.filter((c): c is Command => c !== null);
    return left.length ? new Batch(cmd.name, left) : null;
  }
  return cmd;
}

/** Client-side uuid v4 (the API accepts client-created uids). */
export function newUid(): string {
  const c = globalThis.crypto;
  if (c && "randomUUID" in c) return c.randomUUID();
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The writable part of an annotation, as the PUT endpoint expects it. */
export function toPayload(a: Annotation): Omit<Annotation, "bbox" | "area" | "author" | "updated_at"> {
  return {
    uid: a.uid,
    label: a.label,
    geometry: a.geometry,
    z_order: a.z_order,
    source: a.source,
    score: a.score,
    model_version: a.model_version,
    prediction: a.prediction,
    attributes: a.attributes,
  };
}

/** Stable JSON of a value with object keys sorted (key order differs between server and editor). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

/** Same writable content (what a save would send), whatever the key order. */
export function samePayload(a: Annotation, b: Annotation): boolean {
  return canonicalJson(toPayload(a)) === canonicalJson(toPayload(b));
}
