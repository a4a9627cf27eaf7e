/**
 * Brush and eraser: paint the selected mask object (or, with the brush and nothing selected, a
 * new mask object). One stroke = one command; size with [ ] or the slider (image pixels).
 */
import type { Editor } from "../editor";
import type { Point } from "../geometry";
import type { MaskSession } from "../mask";
import type { Tool, ToolPointer } from "./types";

export function createBrushTool(ed: Editor, erase: boolean): Tool {
  let cursor: Point | null = null;
  let session: MaskSession | null = null;
  return {
    name: erase ? "eraser" : "brush",
    title: erase ? "Eraser" : "Brush",
    shortcut: erase ? "e" : "b",
    cursor: "none",
    onPointerDown(p: ToolPointer) {
      if (p.button !== 0) return;
      const uid = ed.selectedUid();
      const a = uid ? ed.store.get(uid) : undefined;
      if (a && ed.isLocked(a.uid)) return ed.ui.message("The selected object is locked", "error");
      if (a && a.geometry.type !== "mask") {
        return ed.ui.message("The brush paints masks: convert the polygon first (M) or deselect (Esc) to start a new mask", "error");
      }
      if (!a && erase) return ed.ui.message("Select a mask object to erase from", "error");
      session = ed.maskSessionFor(a ? a.uid : null);
      session.begin(p.image, ed.brushSize, erase);
      ed.renderer.invalidate("interaction");
    },
    onPointerMove(p: ToolPointer) {
      cursor = p.image;
      session?.extend(p.image);
      ed.renderer.invalidate("interaction");
    },
    onPointerUp() {
      if (!session) return;
      session = null;
      ed.commitMaskStroke();
    },
    deactivate() {
      if (session) {
        session = null;
        ed.commitMaskStroke();
      }
      cursor = null;
    },
    renderOverlay(ctx: CanvasRenderingContext2D) {
      if (!cursor) return;
      const [x, y] = ed.viewport.toScreen(cursor);
      const r = Math.max(1, (ed.brushSize / 2) * ed.viewport.scale);
      ctx.beginPath();
      ctx.arc(x, y, r, 0, Math.PI * 2);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = erase ? "#ff5050" : "#ffffff";
      ctx.stroke();
    },
  };
}
