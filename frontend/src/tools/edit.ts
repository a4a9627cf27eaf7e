/**
 * Select / edit tool: click to select (repeated clicks cycle through stacked objects), drag a
 * vertex, drag a midpoint handle or Alt/Shift-click an edge to insert a vertex, right-click or
 * Delete on a hovered vertex to remove it, drag inside the selection to move it, drag on empty
 * space to pan. Each finished gesture is one command.
 */
import type { Editor } from "../editor";
import { deleteVertex, insertVertex, moveVertex, nearestEdge, nearestVertex, translateGeometry, type Point, type PolygonsGeometry, type VertexRef } from "../geometry";
import { midpointHandles } from "../render";
import { translateMaskRLE } from "../rle";
import { RemoveAnnotation, setGeometry } from "../store";
import type { Tool, ToolPointer } from "./types";

type Drag =
  | { kind: "vertex"; uid: string; ref: VertexRef; base: PolygonsGeometry; moved: boolean }
  | { kind: "move"; uid: string; start: Point; screen: Point; moved: boolean; cycle: boolean }
  | { kind: "pan" };

export function createEditTool(ed: Editor): Tool {
  let drag: Drag | null = null;

  const selectedPolygon = (): { uid: string; g: PolygonsGeometry } | null => {
    const uid = ed.selectedUid();
    const a = uid ? ed.store.get(uid) : undefined;
    if (!a || a.geometry.type !== "polygons" || ed.isLocked(a.uid) || ed.isHidden(a.uid)) return null;
    return { uid: a.uid, g: a.geometry };
  };

  const removeVertex = (uid: string, g: PolygonsGeometry, ref: VertexRef) => {
    const a = ed.store.get(uid)!;
    const next = deleteVertex(g, ref);
    ed.hover = null;
    if (next) ed.execute(setGeometry(a, next, "delete vertex"));
    else ed.execute(new RemoveAnnotation(a));
  };

  return {
    name: "edit",
    title: "Select / edit",
    label: "Select",
    shortcut: "v",
    cursor: "default",
    onPointerDown(p: ToolPointer) {
      const sel = selectedPolygon();
      if (sel) {
        const ref = nearestVertex(sel.g, p.image, ed.tol(7));
        if (ref && (p.button === 2 || p.alt)) {
          removeVertex(sel.uid, sel.g, ref);
          return;
        }
        if (ref && p.button === 0) {
          drag = { kind: "vertex", uid: sel.uid, ref, base: sel.g, moved: false };
          return;
        }
        if (p.button === 0) {
          const mid = midpointHandles(sel.g, 24, ed.viewport.scale).find((m) => Math.hypot(m.point[0] - p.image[0], m.point[1] - p.image[1]) <= ed.tol(6));
          const edge = mid ? { ref: mid as VertexRef, point: mid.point } : p.shift ? nearestEdge(sel.g, p.image, ed.tol(6)) : null;
          if (edge) {
            const base = insertVertex(sel.g, edge.ref, edge.point);
            const ref2 = { part: edge.ref.part, ring: edge.ref.ring, index: edge.ref.index + 1 };
            drag = { kind: "vertex", uid: sel.uid, ref: ref2, base, moved: true };
            ed.setDraft({ uid: sel.uid, geometry: base });
            return;
          }
        }
      }
      if (p.button !== 0) return;
      const stack = ed.stackAt(p.image);
      const cur = ed.selectedUid();
      if (cur && stack.includes(cur) && !ed.isLocked(cur)) {
        drag = { kind: "move", uid: cur, start: p.image, screen: p.screen, moved: false, cycle: true };
        return;
      }
      ed.clickSelect(p);
      const now = ed.selectedUid();
      if (now) drag = { kind: "move", uid: now, start: p.image, screen: p.screen, moved: false, cycle: false };
      else if (ed.selectedProposal() == null) {
        drag = { kind: "pan" };
        ed.beginPan(p);
      }
    },
    onPointerMove(p: ToolPointer) {
      if (!drag) {
        ed.updateHover(p.image);
        return;
      }
      if (drag.kind === "vertex") {
        drag.moved = true;
        ed.setDraft({ uid: drag.uid, geometry: moveVertex(drag.base, drag.ref, ed.clampPoint(p.image)) });
      } else if (drag.kind === "move") {
        if (!drag.moved && Math.hypot(p.screen[0] - drag.screen[0], p.screen[1] - drag.screen[1]) < 3) return;
        drag.moved = true;
        ed.setDraft({ uid: drag.uid, offset: [p.image[0] - drag.start[0], p.image[1] - drag.start[1]] });
      }
    },
    onPointerUp(p: ToolPointer) {
      const d = drag;
      drag = null;
      if (!d || d.kind === "pan") return;
      const a = ed.store.get(d.uid);
      const draft = ed.draft();
      ed.setDraft(null);
      if (!a) return;
      if (d.kind === "vertex") {
        if (d.moved && draft?.geometry) ed.execute(setGeometry(a, draft.geometry, "move vertex"));
        else if (d.moved) ed.execute(setGeometry(a, d.base, "insert vertex"));
        return;
      }
      if (!d.moved) {
        if (d.cycle) ed.clickSelect(p);
        return;
      }
      const dx = p.image[0] - d.start[0], dy = p.image[1] - d.start[1];
      if (a.geometry.type === "polygons") ed.execute(setGeometry(a, translateGeometry(a.geometry, dx, dy), "move object"));
      else ed.execute(setGeometry(a, { type: "mask", rle: translateMaskRLE(a.geometry.rle, dx, dy) }, "move object"));
    },
    onKey(e: KeyboardEvent) {
      if ((e.key === "Delete" || e.key === "Backspace") && ed.hover && ed.hover.uid === ed.selectedUid()) {
        const a = ed.store.get(ed.hover.uid);
        if (a && a.geometry.type === "polygons") {
          removeVertex(a.uid, a.geometry, ed.hover.ref);
          return true;
        }
      }
      if (e.key === "Escape" && drag) {
        drag = null;
        ed.setDraft(null);
        return true;
      }
      return false;
    },
  };
}

export function createPanTool(ed: Editor): Tool {
  return {
    name: "pan",
    title: "Pan",
    shortcut: "g",
    cursor: "grab",
    onPointerDown(p) {
      ed.beginPan(p);
    },
  };
}
