/**
 * Server-assisted tools. Box -> mask: drag a box, then click inside it to add foreground points
 * (Shift- or right-click for background) and refine; Enter/Esc finishes. The server segments
 * with SAM when it has a SAM model (the editor's `sam` option), otherwise with GrabCut. With SAM a
 * lone click is a prompt too, and its answer to a lone box or click comes with other candidate
 * masks, best first: "C" (keymap) swaps the object for the next one. Intelligent scissors:
 * click points along an edge, the server snaps the path; Enter or double click closes it into a
 * polygon. Both land as ordinary, editable objects; a missing endpoint (404/501) is reported.
 */
import { errorText, isUnavailable, type MaskResult } from "../api";
import { newPolygons, type Geometry, type Point } from "../geometry";
import { AddAnnotation, setGeometry } from "../store";
import type { Tool, ToolContext, ToolPointer } from "./types";

export function createBoxMaskTool(ctx: ToolContext): Tool {
  let dragStart: Point | null = null;
  let cursor: Point | null = null;
  /** `box` is null for a SAM prompt started with a click; `candidates` are SAM's answers to the last prompt, `shown` the one on screen. */
  let job: { uid: string | null; box: [number, number, number, number] | null; fg: Point[]; bg: Point[]; candidates: MaskResult[]; shown: number } | null = null;
  let busy = false;
  let sam = ctx.sam;

  const run = async () => {
    if (!job || busy) return;
    busy = true;
    const j = job;
    // The engine chosen in the toolbar (or the project's best); SAM keeps its own endpoint (clicks, candidates).
    const engine = ctx.boxEngine();
    if (engine) sam = engine === "sam";
    ctx.message(`Box → mask${sam ? " (SAM)" : ""}: asking the server…`);
    try {
      let result;
      try {
        if (!sam && !j.box) throw new Error("drag a box around the object");
        result = sam ? await ctx.api.sam(ctx.image.id, j.box, j.fg, j.bg) : await ctx.api.boxToMask(ctx.image.id, j.box!, j.fg, j.bg, engine, ctx.activeLabel);
      } catch (e) {
        if (!sam || !isUnavailable(e)) throw e;
        // SAM was configured but cannot run (package or file missing): GrabCut still can, given a box.
        sam = false;
        ctx.message(`SAM is not available (${errorText(e)}); using GrabCut`, "error");
        if (!j.box) throw new Error("without SAM, drag a box around the object");
        result = await ctx.api.boxToMask(ctx.image.id, j.box, j.fg, j.bg, "grabcut");
      }
      j.candidates = result.candidates ?? [];
      j.shown = 0;
      if (result.area === 0) {
        ctx.message("Box → mask found no object in this box: draw it by hand or try another box", "error");
        if (!j.uid) job = null;
        return;
      }
      const g = result.geometry;
      const cur = j.uid ? ctx.store.get(j.uid) : undefined;
      if (cur) ctx.execute(setGeometry(cur, g, "refine box → mask"));
      else {
        const a = ctx.newAnnotation(g);
        ctx.execute(new AddAnnotation(a));
        j.uid = a.uid;
        ctx.select(a.uid);
      }
      const others = j.candidates.length > 1 ? `; C: next of ${j.candidates.length} candidates` : "";
      const by = result.engine && result.engine !== engine ? ` (by ${result.engine})` : "";
      ctx.message(`Box → mask done${by}: click to add foreground (Shift/right-click: background), Enter to finish${others}`);
    } catch (e) {
      if (isUnavailable(e)) ctx.message("Box → mask is not available on this server yet", "error");
      else ctx.message(`Box → mask failed: ${errorText(e)}`, "error");
      if (!j.uid) job = null;
    } finally {
      busy = false;
      ctx.invalidate("interaction");
    }
  };

  return {
    name: "boxmask",
    title: "Box → mask",
    label: "Box→mask",
    shortcut: "x",
    cursor: "crosshair",
    keys: [
      ["Drag a box", "segment the object in it"],
      ["Click (with SAM)", "segment the object under the click"],
      ["Click / Shift-click inside", "add a foreground / background point and refine"],
      ["Enter / Esc", "finish the object"],
    ],
    cycleCandidate(direction: 1 | -1) {
      const cur = job?.uid ? ctx.store.get(job.uid) : undefined;
      if (!job || !cur || busy || job.candidates.length < 2) return false;
      const n = job.candidates.length;
      job.shown = (job.shown + direction + n) % n;
      const c = job.candidates[job.shown];
      if (c.area === 0) ctx.message(`Candidate ${job.shown + 1} of ${n} is empty; C for the next`, "error");
      else {
        ctx.execute(setGeometry(cur, c.geometry, "other SAM candidate"));
        ctx.message(`Candidate ${job.shown + 1} of ${n}${c.score != null ? ` (SAM's score ${c.score.toFixed(2)})` : ""}; C: next, Enter: keep`);
      }
      ctx.invalidate("interaction");
      return true;
    },
    deactivate() {
      job = null;
      dragStart = null;
    },
    onPointerDown(p: ToolPointer) {
      dragStart = p.image;
    },
    onPointerMove(p: ToolPointer) {
      cursor = p.image;
      if (dragStart) ctx.invalidate("interaction");
    },
    onPointerUp(p: ToolPointer) {
      const s = dragStart;
      dragStart = null;
      if (!s) return;
      const w = Math.abs(p.image[0] - s[0]), h = Math.abs(p.image[1] - s[1]);
      if (w * ctx.viewport.scale < 4 && h * ctx.viewport.scale < 4) {
        const background = p.shift || p.button === 2;
        if (!job) {
          // SAM segments from a click alone; GrabCut needs the box.
          if (!sam || background) return ctx.message(sam ? "Click on the object first, or drag a box around it" : "Drag a box around the object");
          job = { uid: null, box: null, fg: [], bg: [], candidates: [], shown: 0 };
        }
        (background ? job.bg : job.fg).push([p.image[0], p.image[1]]);
        void run();
        return;
      }
      job = { uid: null, box: [Math.min(s[0], p.image[0]), Math.min(s[1], p.image[1]), w, h], fg: [], bg: [], candidates: [], shown: 0 };
      void run();
    },
    onKey(e: KeyboardEvent) {
      if ((e.key === "Enter" || e.key === "Escape") && job) {
        job = null;
        ctx.invalidate("interaction");
        return true;
      }
      return false;
    },
    renderOverlay(g) {
      const v = ctx.viewport;
      let box = job?.box ?? null;
      if (dragStart && cursor) box = [Math.min(dragStart[0], cursor[0]), Math.min(dragStart[1], cursor[1]), Math.abs(cursor[0] - dragStart[0]), Math.abs(cursor[1] - dragStart[1])];
      if (!box && !job) return;
      if (box) {
        const [x, y] = v.toScreen([box[0], box[1]]);
        g.setLineDash([5, 4]);
        g.strokeStyle = "#00e5ff";
        g.lineWidth = 1.5;
        g.strokeRect(x, y, box[2] * v.scale, box[3] * v.scale);
        g.setLineDash([]);
      }
      for (const [pts, color] of [[job?.fg ?? [], "#30ff60"], [job?.bg ?? [], "#ff4040"]] as [Point[], string][]) {
        g.fillStyle = color;
        for (const pt of pts) {
          const [px, py] = v.toScreen(pt);
          g.beginPath();
          g.arc(px, py, 4, 0, Math.PI * 2);
          g.fill();
        }
      }
    },
  };
}

export function createScissorsTool(ctx: ToolContext): Tool {
  let pts: Point[] = [];
  let path: Point[] | null = null;
  let unavailable = false;
  let seq = 0;

  const preview = async () => {
    if (pts.length < 2 || unavailable) return;
    const my = ++seq;
    try {
      const res = await ctx.api.scissors(ctx.image.id, pts, false);
      if (my === seq) path = res.path;
    } catch (e) {
      if (isUnavailable(e)) {
        unavailable = true;
        ctx.message("Intelligent scissors are not available on this server yet; Enter makes a plain polygon from your clicks", "error");
      } else ctx.message(`Scissors failed: ${errorText(e)}`, "error");
    }
    ctx.invalidate("interaction");
  };

  const finish = async () => {
    if (pts.length < 3) return ctx.message("Click at least 3 points");
    let geometry: Geometry = newPolygons(pts);
    let repaired: string | null = null;
    if (!unavailable) {
      try {
        const res = await ctx.api.scissors(ctx.image.id, pts, true);
        // The server's polygon is the path made valid (an edge that doubles back makes the raw
        // path cross itself); older servers send only the path, which the save then repairs.
        geometry = res.geometry ?? newPolygons(res.path);
        repaired = res.repaired ?? null;
      } catch (e) {
        if (!isUnavailable(e)) return ctx.message(`Scissors failed: ${errorText(e)}`, "error");
        ctx.message("Scissors not available: used the clicked points as a polygon", "error");
      }
    }
    const a = ctx.newAnnotation(geometry);
    if (ctx.execute(new AddAnnotation(a))) {
      ctx.select(a.uid);
      if (repaired) ctx.message(`Scissors outline repaired: ${repaired.replace(/\.$/, "").toLowerCase()}`);
    }
    pts = [];
    path = null;
    ctx.invalidate("interaction");
  };

  return {
    name: "scissors",
    title: "Intelligent scissors",
    label: "Scissors",
    shortcut: "s",
    cursor: "crosshair",
    keys: [
      ["Click points along an edge", "the path snaps to it"],
      ["Enter / double-click", "close the outline"],
      ["Backspace", "remove the last point"],
    ],
    deactivate() {
      pts = [];
      path = null;
    },
    onPointerDown(p) {
      if (p.button !== 0) return;
      if (p.detail >= 2) return void finish();
      const q = ctx.clampPoint(p.image);
      pts.push([q[0], q[1]]);
      ctx.invalidate("interaction");
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
      ctx.invalidate("interaction");
      return true;
    },
    renderOverlay(g) {
      const v = ctx.viewport;
      const line = path ?? pts;
      if (!line.length) return;
      g.strokeStyle = "#ffd400";
      g.lineWidth = 2;
      g.beginPath();
      line.forEach((pt, i) => {
        const [x, y] = v.toScreen(pt);
        if (i) g.lineTo(x, y);
        else g.moveTo(x, y);
      });
      g.stroke();
      g.fillStyle = "#ffd400";
      for (const pt of pts) {
        const [x, y] = v.toScreen(pt);
        g.fillRect(x - 3, y - 3, 6, 6);
      }
    },
  };
}
