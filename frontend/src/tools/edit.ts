/**
 * Select / edit tool: click to select (repeated clicks cycle through stacked objects), drag a
 * vertex, drag a midpoint handle or Alt/Shift-click an edge to insert a vertex, right-click or
 * Delete on a hovered vertex to remove it, drag inside the selection to move it, drag on empty
 * space to pan. Each finished gesture is one command.
 */
import { deleteVertex, insertVertex, moveVertex, nearestEdge, nearestVertex, translateGeometry, type Point, type PolygonsGeometry, type VertexRef } from "../geometry";
import { midpointHandles } from "../render";
import { translateMaskRLE } from "../rle";
import { RemoveAnnotation, setGeometry } from "../store";
import type { Tool, ToolContext, ToolPointer } from "./types";

type Drag =
  | { kind: "vertex"; uid: string; ref: VertexRef; base: PolygonsGeometry; moved: boolean }
  | { kind: "move"; uid: string; start: Point; screen: Point; moved: boolean; cycle: boolean }
  | { kind: "pan" };

export function createEditTool(ctx: ToolContext): Tool {
  let drag: Drag | null = null;

  const selectedPolygon = (): { uid: string; g: PolygonsGeometry } | null => {
    const uid = ctx.selectedUid();
    const a = uid ? ctx.store.get(uid) : undefined;
    if (!a || a.geometry.type !== "polygons" || ctx.isLocked(a.uid) || ctx.isHidden(a.uid)) return null;
    return { uid: a.uid, g: a.geometry };
  };

  const removeVertex = (uid: string, g: PolygonsGeometry, ref: VertexRef) => {
    const a = ctx.store.get(uid)!;
    const next = deleteVertex(g, ref);
    ctx.clearHover();
    if (next) ctx.execute(setGeometry(a, next, "delete vertex"));
    else ctx.execute(new RemoveAnnotation(a));
  };

  return {
    name: "edit",
    title: "Select / edit",
    label: "Select",
    shortcut: "v",
    cursor: "default",
    viewing: true,
    keys: [
      ["Click again at the same spot", "cycle through stacked objects"],
      ["Drag a vertex / inside the selection", "move the vertex / the object"],
      ["Shift-click an edge / drag a ○ handle", "insert a vertex"],
      ["Right-click / Alt-click a vertex", "delete that vertex"],
    ],
    onPointerDown(p: ToolPointer) {
      if (ctx.readOnly()) {
        // Looking only: select (and cycle), or pan on empty image.
        if (p.button !== 0) return;
        ctx.clickSelect(p);
        if (!ctx.selectedUid() && ctx.selectedProposal() == null) {
          drag = { kind: "pan" };
          ctx.beginPan(p);
        }
        return;
      }
      const sel = selectedPolygon();
      if (sel) {
        const ref = nearestVertex(sel.g, p.image, ctx.tol(7));
        if (ref && (p.button === 2 || p.alt)) {
          removeVertex(sel.uid, sel.g, ref);
          return;
        }
        if (ref && p.button === 0) {
          drag = { kind: "vertex", uid: sel.uid, ref, base: sel.g, moved: false };
          return;
        }
        if (p.button === 0) {
          const mid = midpointHandles(sel.g, 24, ctx.viewport.scale).find((m) => Math.hypot(m.point[0] - p.image[0], m.point[1] - p.image[1]) <= ctx.tol(6));
          const edge = mid ? { ref: mid as VertexRef, point: mid.point } : p.shift ? nearestEdge(sel.g, p.image, ctx.tol(6)) : null;
          if (edge) {
            const base = insertVertex(sel.g, edge.ref, edge.point);
            const ref2 = { part: edge.ref.part, ring: edge.ref.ring, index: edge.ref.index + 1 };
            drag = { kind: "vertex", uid: sel.uid, ref: ref2, base, moved: true };
            ctx.setDraft({ uid: sel.uid, geometry: base });
            return;
          }
        }
      }
      if (p.button !== 0) return;
      const stack = ctx.stackAt(p.image);
      const cur = ctx.selectedUid();
      if (cur && stack.includes(cur) && !ctx.isLocked(cur)) {
        drag = { kind: "move", uid: cur, start: p.image, screen: p.screen, moved: false, cycle: true };
        return;
      }
      ctx.clickSelect(p);
      const now = ctx.selectedUid();
      if (now) drag = { kind: "move", uid: now, start: p.image, screen: p.screen, moved: false, cycle: false };
      else if (ctx.selectedProposal() == null) {
        drag = { kind: "pan" };
        ctx.beginPan(p);
      }
    },
    onPointerMove(p: ToolPointer) {
      if (!drag) {
        ctx.updateHover(p.image);
        return;
      }
      if (drag.kind === "vertex") {
        drag.moved = true;
        ctx.setDraft({ uid: drag.uid, geometry: moveVertex(drag.base, drag.ref, ctx.clampPoint(p.image)) });
      } else if (drag.kind === "move") {
        if (!drag.moved && Math.hypot(p.screen[0] - drag.screen[0], p.screen[1] - drag.screen[1]) < 3) return;
        drag.moved = true;
        ctx.setDraft({ uid: drag.uid, offset: [p.image[0] - drag.start[0], p.image[1] - drag.start[1]] });
      }
    },
    onPointerUp(p: ToolPointer) {
      const d = drag;
      drag = null;
      if (!d || d.kind === "pan") return;
      const a = ctx.store.get(d.uid);
      const draft = ctx.draft();
      ctx.setDraft(null);
      if (!a) return;
      if (d.kind === "vertex") {
        if (d.moved && draft?.geometry) ctx.execute(setGeometry(a, draft.geometry, "move vertex"));
        else if (d.moved) ctx.execute(setGeometry(a, d.base, "insert vertex"));
        return;
      }
      if (!d.moved) {
        if (d.cycle) ctx.clickSelect(p);
        return;
      }
      const dx = p.image[0] - d.start[0], dy = p.image[1] - d.start[1];
      if (a.geometry.type === "polygons") ctx.execute(setGeometry(a, translateGeometry(a.geometry, dx, dy), "move object"));
      else ctx.execute(setGeometry(a, { type: "mask", rle: translateMaskRLE(a.geometry.rle, dx, dy) }, "move object"));
    },
    onKey(e: KeyboardEvent) {
      const hover = ctx.hoveredVertex();
      if ((e.key === "Delete" || e.key === "Backspace") && hover && hover.uid === ctx.selectedUid() && !ctx.readOnly()) {
        const a = ctx.store.get(hover.uid);
        if (a && a.geometry.type === "polygons") {
          removeVertex(a.uid, a.geometry, hover.ref);
          return true;
        }
      }
      if (e.key === "Escape" && drag) {
        drag = null;
        ctx.setDraft(null);
        return true;
      }
      return false;
    },
  };
}

export function createPanTool(ctx: ToolContext): Tool {
  return {
    name: "pan",
    title: "Pan",
    shortcut: "g",
    cursor: "grab",
    viewing: true,
    onPointerDown(p) {
      ctx.beginPan(p);
    },
  };
}
