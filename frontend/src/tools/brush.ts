/**
 * Brush and eraser: paint the selected mask object (or, with the brush and nothing selected, a
 * new mask object). One stroke = one command; size with [ ] or the slider (image pixels).
 */
import type { Point } from "../geometry";
import type { MaskSession } from "../mask";
import type { Tool, ToolContext, ToolPointer } from "./types";

export function createBrushTool(ctx: ToolContext, erase: boolean): Tool {
  let cursor: Point | null = null;
  let session: MaskSession | null = null;
  return {
    name: erase ? "eraser" : "brush",
    title: erase ? "Eraser" : "Brush",
    shortcut: erase ? "e" : "b",
    cursor: "none",
    keys: [["Drag", erase ? "erase from the selected mask" : "paint the selected mask (nothing selected: a new mask)"]],
    onPointerDown(p: ToolPointer) {
      if (p.button !== 0) return;
      const uid = ctx.selectedUid();
      const a = uid ? ctx.store.get(uid) : undefined;
      if (a && ctx.isLocked(a.uid)) return ctx.message("The selected object is locked", "error");
      if (a && a.geometry.type !== "mask") {
        return ctx.message("The brush paints masks: convert the polygon first (M) or deselect (Esc) to start a new mask", "error");
      }
      if (!a && erase) return ctx.message("Select a mask object to erase from", "error");
      session = ctx.maskSessionFor(a ? a.uid : null);
      session.begin(p.image, ctx.brushSize, erase);
      ctx.invalidate("interaction");
    },
    onPointerMove(p: ToolPointer) {
      cursor = p.image;
      session?.extend(p.image);
      ctx.invalidate("interaction");
    },
    onPointerUp() {
      if (!session) return;
      session = null;
      ctx.commitMaskStroke();
    },
    deactivate() {
      if (session) {
        session = null;
        ctx.commitMaskStroke();
      }
      cursor = null;
    },
    renderOverlay(g: CanvasRenderingContext2D) {
      if (!cursor) return;
      const [x, y] = ctx.viewport.toScreen(cursor);
      const r = Math.max(1, (ctx.brushSize / 2) * ctx.viewport.scale);
      g.beginPath();
      g.arc(x, y, r, 0, Math.PI * 2);
      g.lineWidth = 1.5;
      g.strokeStyle = erase ? "#ff5050" : "#ffffff";
      g.stroke();
    },
  };
}
