/**
 * The one pointer interface every tool implements, and the registry tools are looked up in by
 * name. Tools turn input into commands on the store; they never keep their own undo history.
 */
import type { Point } from "../geometry";
import type { Editor } from "../editor";

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
  readonly cursor?: string;
  activate?(): void;
  deactivate?(): void;
  onPointerDown?(p: ToolPointer): void;
  onPointerMove?(p: ToolPointer): void;
  onPointerUp?(p: ToolPointer): void;
  onDoubleClick?(p: ToolPointer): void;
  /** Return true when the key was handled (the editor then skips its global shortcuts). */
  onKey?(e: KeyboardEvent): boolean;
  /** Draw the tool's overlay on the interaction layer; ctx is in stage (screen) pixels. */
  renderOverlay?(ctx: CanvasRenderingContext2D): void;
}

export type ToolFactory = (editor: Editor) => Tool;

export class ToolRegistry {
  private factories = new Map<string, ToolFactory>();
  private order: string[] = [];

  register(name: string, factory: ToolFactory): void {
    if (!this.factories.has(name)) this.order.push(name);
    this.factories.set(name, factory);
  }

  create(name: string, editor: Editor): Tool {
    const f = this.factories.get(name);
    if (!f) throw new Error(`unknown tool ${name}`);
    return f(editor);
  }

  names(): string[] {
    return [...this.order];
  }
}
