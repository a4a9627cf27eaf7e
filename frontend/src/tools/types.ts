/**
 * The one pointer interface every tool implements, the narrow context tools work through, and the
 * registry tools are looked up in by name. Tools turn input into commands on the store; they never
 * keep their own undo history, and they see the editor only through ToolContext (not its UI, its
 * renderer or its other state).
 */
import type { api } from "../api";
import type { Geometry, Point } from "../geometry";
import type { MaskSession } from "../mask";
import type { Draft, Hover } from "../state";
import type { Annotation, AnnotationStore, Command } from "../store";
import type { Viewport } from "../viewport";

/** What a tool may use of the editor. */
export interface ToolContext {
  readonly image: { readonly id: number; readonly width: number; readonly height: number };
  readonly viewport: Viewport;
  /** Read the objects here; change them only through `execute`. */
  readonly store: AnnotationStore;
  readonly api: typeof api;
  /** The server has a SAM model: box (and click) prompts go to it rather than to GrabCut. */
  readonly sam: boolean;
  /** The box → mask engine to use: the one chosen in the toolbar, else the project's best; null before the server said. */
  boxEngine(): string | null;
  readonly brushSize: number;
  readonly activeLabel: number | null;
  /** True when the caller may only look at this image (execute then refuses). */
  readOnly(): boolean;
  selectedUid(): string | null;
  selectedProposal(): number | null;
  select(uid: string | null): void;
  isLocked(uid: string): boolean;
  isHidden(uid: string): boolean;
  /** Run an edit as one undoable step; false when nothing was left to do or the image is read-only. */
  execute(cmd: Command): boolean;
  /** A new object with the active label (and its schema's default attributes). */
  newAnnotation(geometry: Geometry, extra?: Partial<Annotation>): Annotation;
  clampPoint(p: Point): Point;
  /** Picking tolerance: `px` screen pixels in image units. */
  tol(px: number): number;
  /** Visible, unlocked objects under an image point, topmost first. */
  stackAt(p: Point): string[];
  clickSelect(p: ToolPointer): void;
  beginPan(p: ToolPointer): void;
  updateHover(p: Point): void;
  hoveredVertex(): Hover | null;
  clearHover(): void;
  draft(): Draft | null;
  setDraft(d: Draft | null): void;
  labelColor(label: number | null): string;
  maskSessionFor(uid: string | null): MaskSession;
  commitMaskStroke(): void;
  message(text: string, kind?: "info" | "error"): void;
  invalidate(layer: "static" | "interaction" | "view" | "all"): void;
}

export interface ToolPointer {
  /** Image pixel coordinates. */
  image: Point;
  /** Stage (CSS px) coordinates. */
  screen: Point;
  button: number;
  buttons: number;
  shift: boolean;
  alt: boolean;
  ctrl: boolean;
  /** Click count from the browser (2 on the second click of a double click). */
  detail: number;
}

export interface Tool {
  readonly name: string;
  readonly title: string;
  /** Short toolbar label (the title is the tooltip); defaults to the title. */
  readonly label?: string;
  /** Shortcut key shown in the toolbar and the cheat sheet. */
  readonly shortcut?: string;
  /** Keys and gestures the tool handles while active, for the cheat sheet: [keys, what they do]. */
  readonly keys?: [string, string][];
  /** Usable on an image the caller may only look at (selecting, panning). */
  readonly viewing?: boolean;
  readonly cursor?: string;
  activate?(): void;
  deactivate?(): void;
  onPointerDown?(p: ToolPointer): void;
  onPointerMove?(p: ToolPointer): void;
  onPointerUp?(p: ToolPointer): void;
  onDoubleClick?(p: ToolPointer): void;
  /** Return true when the key was handled (the editor then skips its global shortcuts). */
  onKey?(e: KeyboardEvent): boolean;
  /** Replace the object just made with the next / previous candidate the server proposed (keymap "C"); false when there is none. */
  cycleCandidate?(direction: 1 | -1): boolean;
  /** Draw the tool's overlay on the interaction layer; ctx is in stage (screen) pixels. */
  renderOverlay?(ctx: CanvasRenderingContext2D): void;
}

export type ToolFactory = (ctx: ToolContext) => Tool;

export class ToolRegistry {
  private factories = new Map<string, ToolFactory>();
  private order: string[] = [];

  register(name: string, factory: ToolFactory): void {
    if (!this.factories.has(name)) this.order.push(name);
    this.factories.set(name, factory);
  }

  create(name: string, ctx: ToolContext): Tool {
    const f = this.factories.get(name);
    if (!f) throw new Error(`unknown tool ${name}`);
    return f(ctx);
  }

  names(): string[] {
    return [...this.order];
  }
}
