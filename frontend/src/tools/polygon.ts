/**
 * Polygon drawing in three modes sharing one implementation: a new object, a hole cut into the
 * selected object, or an extra part of the selected object. Click adds a vertex; clicking the
 * first vertex, Enter or a double click closes; Backspace removes the last vertex; Esc cancels.
 */
import { addHole, addPart, newPolygons, type Point, type Ring } from "../geometry";
import { AddAnnotation, setGeometry } from "../store";
import type { Tool, ToolContext, ToolPointer } from "./types";

export type PolygonMode = "new" | "hole" | "part";

const TITLES: Record<PolygonMode, [string, string, string, string]> = {
  new: ["polygon", "Draw polygon", "p", "Polygon"],
  hole: ["hole", "Cut hole into selected", "h", "Hole"],
  part: ["part", "Add part to selected", "n", "Part"],
};

export function createPolygonTool(ctx: ToolContext, mode: PolygonMode): Tool {
  let pts: Ring = [];
  let cursor: Point | null = null;
  const [name, title, shortcut, label] = TITLES[mode];

  const target = () => {
    const uid = ctx.selectedUid();
    const a = uid ? ctx.store.get(uid) : undefined;
    return a && a.geometry.type === "polygons" && !ctx.isLocked(a.uid) ? a : null;
  };

  const finish = () => {
    if (pts.length < 3) {
      ctx.message("A polygon needs at least 3 points");
      return;
    }
    // An outline that crosses itself is closed as drawn: the server untangles it when it saves and
    // the editor takes its repair over in place (see autosave.ts), so a slip of the hand costs nothing.
    const ring = pts;
    if (mode === "new") {
      const a = ctx.newAnnotation(newPolygons(ring));
      ctx.execute(new AddAnnotation(a));
      ctx.select(a.uid);
    } else {
      const a = target();
      if (!a || a.geometry.type !== "polygons") {
        ctx.message("Select a polygon object first", "error");
        return;
      }
      if (mode === "hole") {
        const g = addHole(a.geometry, ring);
        if (!g) {
          ctx.message("A hole must lie inside one part of the object, apart from other holes", "error");
          return;
        }
        ctx.execute(setGeometry(a, g, "cut hole"));
      } else {
        ctx.execute(setGeometry(a, addPart(a.geometry, ring), "add part"));
      }
    }
    pts = [];
    ctx.invalidate("interaction");
  };

  return {
    name,
    title,
    label,
    shortcut,
    cursor: "crosshair",
    keys: mode === "new"
      ? [
          ["Click / click the first vertex", "add a vertex / close the outline"],
          ["Enter / double-click", "close the outline (one that crosses itself is untangled when saved)"],
          ["Backspace", "remove the last vertex"],
          ["Esc", "cancel the outline"],
        ]
      : [["Enter / double-click", `close the ${mode}`]],
    activate() {
      pts = [];
      if (mode !== "new" && !target()) ctx.message(`Select a polygon object, then draw the ${mode}`);
    },
    deactivate() {
      pts = [];
    },
    onPointerDown(p: ToolPointer) {
      if (p.button !== 0) return;
      if (mode !== "new" && !target() && pts.length === 0) {
        ctx.message("Select a polygon object first (V, then click it)", "error");
        return;
      }
      // The second click of a double click closes instead of adding a duplicate point.
      if (p.detail >= 2 && pts.length >= 3) return finish();
      if (pts.length >= 3) {
        const [fx, fy] = ctx.viewport.toScreen(pts[0]);
        if (Math.hypot(fx - p.screen[0], fy - p.screen[1]) <= 8) return finish();
      }
      // A click in the margin (or on the very edge, a hair outside after the screen -> image
      // transform) puts the vertex on the image's edge, where it is drawn and saved.
      const q = ctx.clampPoint(p.image);
      pts.push([q[0], q[1]]);
      ctx.invalidate("interaction");
    },
    onPointerMove(p: ToolPointer) {
      cursor = ctx.clampPoint(p.image);
      if (pts.length) ctx.invalidate("interaction");
    },
    onDoubleClick() {
      if (pts.length >= 3) finish();
    },
    onKey(e: KeyboardEvent) {
      if (!pts.length) return false;
      if (e.key === "Enter") finish();
      else if (e.key === "Escape") pts = [];
      else if (e.key === "Backspace" || e.key === "Delete") pts.pop();
      else return false;
      ctx.invalidate("interaction");
      return true;
    },
    renderOverlay(g: CanvasRenderingContext2D) {
      if (!pts.length) return;
      const v = ctx.viewport;
      const color = mode === "hole" ? "#ff4040" : ctx.labelColor(mode === "new" ? ctx.activeLabel : target()?.label ?? null);
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      pts.forEach((pt, i) => {
        const [x, y] = v.toScreen(pt);
        if (i) g.lineTo(x, y);
        else g.moveTo(x, y);
      });
      if (cursor) {
        const [x, y] = v.toScreen(cursor);
        g.lineTo(x, y);
      }
      g.stroke();
      g.fillStyle = "#fff";
      for (const pt of pts) {
        const [x, y] = v.toScreen(pt);
        g.fillRect(x - 3, y - 3, 6, 6);
      }
      const [fx, fy] = v.toScreen(pts[0]);
      g.strokeStyle = "#ff0";
      g.strokeRect(fx - 6, fy - 6, 12, 12);
    },
  };
}
