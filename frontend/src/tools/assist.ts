/**
 * Server-assisted tools. Box -> mask: drag a box, then click inside it to add foreground points
 * (Shift- or right-click for background) and refine; Enter/Esc finishes. The server segments
 * with SAM when it has a SAM model (the editor's `sam` option), otherwise with GrabCut. Intelligent scissors:
 * click points along an edge, the server snaps the path; Enter or double click closes it into a
 * polygon. Both land as ordinary, editable objects; a missing endpoint (404/501) is reported.
 */
import type { Editor } from "../editor";
import { isUnavailable } from "../editor";
import { errorText } from "../api";
import { newPolygons, type Geometry, type Point } from "../geometry";
import { AddAnnotation, setGeometry } from "../store";
import type { Tool, ToolPointer } from "./types";

export function createBoxMaskTool(ed: Editor): Tool {
  let dragStart: Point | null = null;
  let cursor: Point | null = null;
  let job: { uid: string | null; box: [number, number, number, number]; fg: Point[]; bg: Point[] } | null = null;
  let busy = false;
  let sam = ed.opts.sam === true;

  const run = async () => {
    if (!job || busy) return;
    busy = true;
    const j = job;
    ed.ui.message(`Box → mask${sam ? " (SAM)" : ""}: asking the server…`);
    try {
      let result;
      try {
        result = sam ? await ed.api.sam(ed.image.id, j.box, j.fg, j.bg) : await ed.api.boxToMask(ed.image.id, j.box, j.fg, j.bg);
      } catch (e) {
        if (!sam || !isUnavailable(e)) throw e;
        // SAM was configured but cannot run (package or file missing): GrabCut still can.
        sam = false;
        ed.ui.message(`SAM is not available (${errorText(e)}); using GrabCut`, "error");
        result = await ed.api.boxToMask(ed.image.id, j.box, j.fg, j.bg);
      }
      if (result.area === 0) {
        ed.ui.message("Box → mask found no object in this box: draw it by hand or try another box", "error");
        if (!j.uid) job = null;
        return;
      }
      const g = result.geometry;
      const cur = j.uid ? ed.store.get(j.uid) : undefined;
      if (cur) ed.execute(setGeometry(cur, g, "refine box → mask"));
      else {
        const a = ed.newAnnotation(g);
        ed.execute(new AddAnnotation(a));
        j.uid = a.uid;
        ed.select(a.uid);
      }
      ed.ui.message("Box → mask done: click inside to add foreground (Shift/right-click: background), Enter to finish");
    } catch (e) {
      if (isUnavailable(e)) ed.ui.message("Box → mask is not available on this server yet", "error");
      else ed.ui.message(`Box → mask failed: ${errorText(e)}`, "error");
      if (!j.uid) job = null;
    } finally {
      busy = false;
      ed.renderer.invalidate("interaction");
    }
  };

  return {
    name: "boxmask",
    title: "Box → mask",
    label: "Box→mask",
    shortcut: "x",
    cursor: "crosshair",
    deactivate() {
      job = null;
      dragStart = null;
    },
    onPointerDown(p: ToolPointer) {
      dragStart = p.image;
    },
    onPointerMove(p: ToolPointer) {
      cursor = p.image;
      if (dragStart) ed.renderer.invalidate("interaction");
    },
    onPointerUp(p: ToolPointer) {
      const s = dragStart;
      dragStart = null;
      if (!s) return;
      const w = Math.abs(p.image[0] - s[0]), h = Math.abs(p.image[1] - s[1]);
      if (w * ed.viewport.scale < 4 && h * ed.viewport.scale < 4) {
        if (!job) return ed.ui.message("Drag a box around the object");
        (p.shift || p.button === 2 ? job.bg : job.fg).push([p.image[0], p.image[1]]);
        void run();
        return;
      }
      job = { uid: null, box: [Math.min(s[0], p.image[0]), Math.min(s[1], p.image[1]), w, h], fg: [], bg: [] };
      void run();
    },
    onKey(e: KeyboardEvent) {
      if ((e.key === "Enter" || e.key === "Escape") && job) {
        job = null;
        ed.renderer.invalidate("interaction");
        return true;
      }
      return false;
    },
    renderOverlay(ctx) {
      const v = ed.viewport;
      let box = job?.box ?? null;
      if (dragStart && cursor) box = [Math.min(dragStart[0], cursor[0]), Math.min(dragStart[1], cursor[1]), Math.abs(cursor[0] - dragStart[0]), Math.abs(cursor[1] - dragStart[1])];
      if (!box) return;
      const [x, y] = v.toScreen([box[0], box[1]]);
      ctx.setLineDash([5, 4]);
      ctx.strokeStyle = "#00e5ff";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x, y, box[2] * v.scale, box[3] * v.scale);
      ctx.setLineDash([]);
      for (const [pts, color] of [[job?.fg ?? [], "#30ff60"], [job?.bg ?? [], "#ff4040"]] as [Point[], string][]) {
        ctx.fillStyle = color;
        for (const pt of pts) {
          const [px, py] = v.toScreen(pt);
          ctx.beginPath();
          ctx.arc(px, py, 4, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    },
  };
}

export function createScissorsTool(ed: Editor): Tool {
  let pts: Point[] = [];
  let path: Point[] | null = null;
  let unavailable = false;
  let seq = 0;

  const preview = async () => {
    if (pts.length < 2 || unavailable) return;
    const my = ++seq;
    try {
      const res = await ed.api.scissors(ed.image.id, pts, false);
      if (my === seq) path = res.path;
    } catch (e) {
      if (isUnavailable(e)) {
        unavailable = true;
        ed.ui.message("Intelligent scissors are not available on this server yet; Enter makes a plain polygon from your clicks", "error");
      } else ed.ui.message(`Scissors failed: ${errorText(e)}`, "error");
    }
    ed.renderer.invalidate("interaction");
  };

  const finish = async () => {
    if (pts.length < 3) return ed.ui.message("Click at least 3 points");
    let geometry: Geometry = newPolygons(pts);
    let repaired: string | null = null;
    if (!unavailable) {
      try {
        const res = await ed.api.scissors(ed.image.id, pts, true);
        // The server's polygon is the path made valid (an edge that doubles back makes the raw
        // path cross itself); older servers send only the path, which the save then repairs.
        geometry = res.geometry ?? newPolygons(res.path);
        repaired = res.repaired ?? null;
      } catch (e) {
        if (!isUnavailable(e)) return ed.ui.message(`Scissors failed: ${errorText(e)}`, "error");
        ed.ui.message("Scissors not available: used the clicked points as a polygon", "error");
      }
    }
    const a = ed.newAnnotation(geometry);
    if (ed.execute(new AddAnnotation(a))) {
      ed.select(a.uid);
      if (repaired) ed.ui.message(`Scissors outline repaired: ${repaired.replace(/\.$/, "").toLowerCase()}`);
    }
    pts = [];
    path = null;
    ed.renderer.invalidate("interaction");
  };

  return {
    name: "scissors",
    title: "Intelligent scissors",
    label: "Scissors",
    shortcut: "s",
    cursor: "crosshair",
    deactivate() {
      pts = [];
      path = null;
    },
    onPointerDown(p) {
      if (p.button !== 0) return;
      if (p.detail >= 2) return void finish();
      const q = ed.clampPoint(p.image);
      pts.push([q[0], q[1]]);
      ed.renderer.invalidate("interaction");
      void preview();
    },
    onKey(e) {
      if (!pts.length) return false;
      if (e.key === "Enter") void finish();
      else if (e.key === "Escape") {
        pts = [];
        path = null;
      } else if (e.key === "Backspace") {
        pts.pop();
        path = null;
        void preview();
      } else return false;
      ed.renderer.invalidate("interaction");
      return true;
    },
    renderOverlay(ctx) {
      const v = ed.viewport;
      const line = path ?? pts;
      if (!line.length) return;
      ctx.strokeStyle = "#ffd400";
      ctx.lineWidth = 2;
      ctx.beginPath();
      line.forEach((pt, i) => {
        const [x, y] = v.toScreen(pt);
        if (i) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = "#ffd400";
      for (const pt of pts) {
        const [x, y] = v.toScreen(pt);
        ctx.fillRect(x - 3, y - 3, 6, 6);
      }
    },
  };
}
