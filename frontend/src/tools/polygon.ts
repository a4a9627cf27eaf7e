/**
 * Polygon drawing in three modes sharing one implementation: a new object, a hole cut into the
 * selected object, or an extra part of the selected object. Click adds a vertex; clicking the
 * first vertex, Enter or a double click closes; Backspace removes the last vertex; Esc cancels.
 */
import type { Editor } from "../editor";
import { addHole, addPart, newPolygons, ringSelfIntersects, type Point, type Ring } from "../geometry";
import { AddAnnotation, setGeometry } from "../store";
import type { Tool, ToolPointer } from "./types";

export type PolygonMode = "new" | "hole" | "part";

const TITLES: Record<PolygonMode, [string, string, string, string]> = {
  new: ["polygon", "Draw polygon", "p", "Polygon"],
  hole: ["hole", "Cut hole into selected", "h", "Hole"],
  part: ["part", "Add part to selected", "n", "Part"],
};

export function createPolygonTool(ed: Editor, mode: PolygonMode): Tool {
  let pts: Ring = [];
  let cursor: Point | null = null;
  const [name, title, shortcut, label] = TITLES[mode];

  const target = () => {
    const uid = ed.selectedUid();
    const a = uid ? ed.store.get(uid) : undefined;
    return a && a.geometry.type === "polygons" && !ed.isLocked(a.uid) ? a : null;
  };

  const finish = () => {
    if (pts.length < 3) {
      ed.ui.message("A polygon needs at least 3 points");
      return;
    }
    if (ringSelfIntersects(pts)) {
      ed.ui.message("The outline crosses itself; move or remove points (Backspace)", "error");
      return;
    }
    const ring = pts;
    if (mode === "new") {
      const a = ed.newAnnotation(newPolygons(ring));
      ed.execute(new AddAnnotation(a));
      ed.select(a.uid);
    } else {
      const a = target();
      if (!a || a.geometry.type !== "polygons") {
        ed.ui.message("Select a polygon object first", "error");
        return;
      }
      if (mode === "hole") {
        const g = addHole(a.geometry, ring);
        if (!g) {
          ed.ui.message("A hole must lie inside one part of the object, apart from other holes", "error");
          return;
        }
        ed.execute(setGeometry(a, g, "cut hole"));
      } else {
        ed.execute(setGeometry(a, addPart(a.geometry, ring), "add part"));
      }
    }
    pts = [];
    ed.renderer.invalidate("interaction");
  };

  return {
    name,
    title,
    label,
    shortcut,
    cursor: "crosshair",
    activate() {
      pts = [];
      if (mode !== "new" && !target()) ed.ui.message(`Select a polygon object, then draw the ${mode}`);
    },
    deactivate() {
      pts = [];
    },
    onPointerDown(p: ToolPointer) {
      if (p.button !== 0) return;
      if (mode !== "new" && !target() && pts.length === 0) {
        ed.ui.message("Select a polygon object first (V, then click it)", "error");
        return;
      }
      // The second click of a double click closes instead of adding a duplicate point.
      if (p.detail >= 2 && pts.length >= 3) return finish();
      if (pts.length >= 3) {
        const [fx, fy] = ed.viewport.toScreen(pts[0]);
        if (Math.hypot(fx - p.screen[0], fy - p.screen[1]) <= 8) return finish();
      }
      // A click in the margin (or on the very edge, a hair outside after the screen -> image
      // transform) puts the vertex on the image's edge, where it is drawn and saved.
      const q = ed.clampPoint(p.image);
      pts.push([q[0], q[1]]);
      ed.renderer.invalidate("interaction");
    },
    onPointerMove(p: ToolPointer) {
      cursor = ed.clampPoint(p.image);
      if (pts.length) ed.renderer.invalidate("interaction");
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
      ed.renderer.invalidate("interaction");
      return true;
    },
    renderOverlay(ctx: CanvasRenderingContext2D) {
      if (!pts.length) return;
      const v = ed.viewport;
      const color = mode === "hole" ? "#ff4040" : ed.labelColor(mode === "new" ? ed.activeLabel : target()?.label ?? null);
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      pts.forEach((pt, i) => {
        const [x, y] = v.toScreen(pt);
        if (i) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
      });
      if (cursor) {
        const [x, y] = v.toScreen(cursor);
        ctx.lineTo(x, y);
      }
      ctx.stroke();
      ctx.fillStyle = "#fff";
      for (const pt of pts) {
        const [x, y] = v.toScreen(pt);
        ctx.fillRect(x - 3, y - 3, 6, 6);
      }
      const [fx, fy] = v.toScreen(pts[0]);
      ctx.strokeStyle = "#ff0";
      ctx.strokeRect(fx - 6, fy - 6, 12, 12);
    },
  };
}
