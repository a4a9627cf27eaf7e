/**
 * Canvas 2D render engine. Three stacked layers:
 *   image       <img> moved by a CSS transform (brightness/contrast are CSS filters on it);
 *   static      every visible, non-selected object and proposal, culled by the viewport, drawn
 *               from cached Path2D objects with level of detail;
 *   interaction the selected object with its handles, the mask being painted, tool overlays.
 * Dragging a vertex or painting only redraws the interaction layer; pan/zoom redraws the static
 * layer with culling + LOD. Work is coalesced to one requestAnimationFrame and timed per frame.
 */
import { polygonsBBox, type BBox, type Geometry, type Point, type PolygonsGeometry } from "./geometry";
import { buildPath, hexToRgb, lodLevel, type Scene } from "./scene";
import type { Annotation } from "./store";
import type { Viewport } from "./viewport";

export interface FrameStat {
  t: number;
  ms: number;
  layers: string;
}

/** What the renderer needs to know about the editor; kept narrow so it can be reasoned about. */
export interface RenderModel {
  readonly scene: Scene;
  readonly viewport: Viewport;
  drawOrder(): Annotation[];
  annotation(uid: string): Annotation | undefined;
  isHidden(uid: string): boolean;
  selectedUid(): string | null;
  selectedProposal(): number | null;
  draft(): { uid: string; geometry?: Geometry; offset?: Point } | null;
  labelColor(label: number | null): string;
  visibleProposals(): { id: number; label: number | null; score: number; class_name: string }[];
  hoverVertex(): Point | null;
  maskSessionCanvas(uid: string): HTMLCanvasElement | null;
  /** A mask being painted that is not an annotation yet (first stroke of a new mask). */
  pendingMaskCanvas(): HTMLCanvasElement | null;
  renderToolOverlay(ctx: CanvasRenderingContext2D): void;
  showAll(): boolean;
  /** Extra drawing on top of the static layer (review mode: diff highlights, comment pins). */
  decorate?(d: Decoration): void;
}

/** What a decorator gets: the static layer's context and helpers to switch coordinate systems. */
export interface Decoration {
  ctx: CanvasRenderingContext2D;
  scale: number;
  /** Objects whose bbox intersects the view (uids and "p:<id>" keys). */
  inView: Set<string>;
  level: number;
  /** Set the transform to image pixels. */
  toImage(): void;
  /** Set the transform to stage (CSS) pixels. */
  toScreen(): void;
}

const FILL_ALPHA = 0.28;

export class Renderer {
  readonly staticCanvas: HTMLCanvasElement;
  readonly interactionCanvas: HTMLCanvasElement;
  private sctx: CanvasRenderingContext2D;
  private ictx: CanvasRenderingContext2D;
  private dpr = 1;
  private dirtyStatic = true;
  private dirtyInteraction = true;
  private dirtyView = true;
  private raf = 0;
  private fills = new Map<string, string>();
  /** Frame timings (ms of render work per frame), newest last; read by bench/ via window.__editorStats. */
  readonly frames: FrameStat[] = [];
  /** When true, each frame forces the canvases to rasterize (getImageData) so timings include raster cost. */
  forceRaster = false;
  onFrame: (() => void) | null = null;

  constructor(private readonly stage: HTMLElement, private readonly image: HTMLImageElement, private readonly model: RenderModel) {
    this.staticCanvas = document.createElement("canvas");
    this.interactionCanvas = document.createElement("canvas");
    this.staticCanvas.className = "ed-layer ed-static";
    this.interactionCanvas.className = "ed-layer ed-interaction";
    this.staticCanvas.dataset.testid = "canvas-static";
    this.interactionCanvas.dataset.testid = "canvas";
    stage.append(this.staticCanvas, this.interactionCanvas);
    // Nothing reads these canvases back in normal use, so keep them GPU-friendly (no willReadFrequently).
    this.sctx = this.staticCanvas.getContext("2d")!;
    this.ictx = this.interactionCanvas.getContext("2d")!;
  }

  resize(): void {
    const r = this.stage.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    for (const c of [this.staticCanvas, this.interactionCanvas]) {
      c.width = Math.max(1, Math.round(r.width * this.dpr));
      c.height = Math.max(1, Math.round(r.height * this.dpr));
      c.style.width = `${r.width}px`;
      c.style.height = `${r.height}px`;
    }
    this.model.viewport.resize(r.width, r.height);
    this.invalidate("all");
  }

  /**
   * "static": objects changed (full static redraw). "view": pan/zoom only — during a gesture the
   * cached static layer is re-composited with a CSS transform and redrawn once the view settles.
   */
  invalidate(what: "static" | "interaction" | "view" | "all"): void {
    if (what === "static" || what === "all") this.dirtyStatic = true;
    if (what === "view" || what === "all") this.dirtyView = true;
    this.dirtyInteraction = true;
    if (!this.raf) this.raf = requestAnimationFrame(() => this.frame());
  }

  /** Render synchronously (first paint, tests). */
  flush(): void {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.frame();
  }

  private frame(): void {
    this.raf = 0;
    const t0 = performance.now();
    const layers: string[] = [];
    if (this.dirtyView) {
      this.positionImage();
      layers.push("view");
      if (!this.dirtyStatic) {
        this.recompositeStatic();
        layers.push("recomposite");
      }
    }
    if (this.dirtyStatic) {
      this.drawStatic();
      layers.push("static");
      if (this.forceRaster) this.sctx.getImageData(0, 0, 1, 1);
    }
    if (this.dirtyInteraction) {
      this.drawInteraction();
      layers.push("interaction");
      if (this.forceRaster) this.ictx.getImageData(0, 0, 1, 1);
    }
    this.dirtyView = this.dirtyStatic = this.dirtyInteraction = false;
    const t1 = performance.now();
    this.frames.push({ t: t0, ms: t1 - t0, layers: layers.join("+") });
    if (this.frames.length > 5000) this.frames.splice(0, 1000);
    this.onFrame?.();
  }

  /** Viewport the static canvas was last drawn at (its CSS transform maps that to the current one). */
  private drawnAt = { scale: 1, tx: 0, ty: 0 };
  private settleTimer: ReturnType<typeof setTimeout> | null = null;
  /** Quiet time after the last pan/zoom step before the static layer is redrawn sharp. */
  settleMs = 120;

  private recompositeStatic(): void {
    const v = this.model.viewport, d = this.drawnAt;
    const k = v.scale / d.scale;
    const style = `translate(${v.tx - d.tx * k}px, ${v.ty - d.ty * k}px) scale(${k})`;
    this.staticCanvas.style.transform = style;
    this.stage.classList.add("ed-moving");
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.stage.classList.remove("ed-moving");
      this.invalidate("static");
    }, this.settleMs);
  }

  private positionImage(): void {
    const v = this.model.viewport;
    this.image.style.transform = `translate(${v.tx}px, ${v.ty}px) scale(${v.scale})`;
    // Past 1:1 show real pixels instead of a blur: annotators need to see pixel edges.
    this.image.classList.toggle("ed-pixelated", v.scale > 1);
  }

  private fill(color: string, alpha = FILL_ALPHA): string {
    const key = color + alpha;
    let f = this.fills.get(key);
    if (!f) {
      const [r, g, b] = hexToRgb(color);
      f = `rgba(${r},${g},${b},${alpha})`;
      this.fills.set(key, f);
    }
    return f;
  }

  private setImageTransform(ctx: CanvasRenderingContext2D): void {
    const v = this.model.viewport, d = this.dpr;
    ctx.setTransform(d * v.scale, 0, 0, d * v.scale, d * v.tx, d * v.ty);
  }

  private drawStatic(): void {
    const ctx = this.sctx, m = this.model, v = m.viewport;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.staticCanvas.width, this.staticCanvas.height);
    this.drawnAt = { scale: v.scale, tx: v.tx, ty: v.ty };
    this.staticCanvas.style.transform = "";
    if (!m.showAll()) return;
    const vis = v.visibleRect();
    const inView = m.scene.grid.queryRect(vis);
    const selected = m.selectedUid();
    const level = lodLevel(v.scale);
    const s = v.scale;
    this.setImageTransform(ctx);
    // One device pixel: Skia strokes that as a hairline, ~7x cheaper than 1.5 px in software raster.
    ctx.lineWidth = 1 / (s * this.dpr);
    let lastColor = "";
    const tiny: BBox[] = [];
    for (const a of m.drawOrder()) {
      if (!inView.has(a.uid) || a.uid === selected || m.isHidden(a.uid)) continue;
      const e = m.scene.get(a.uid);
      if (!e) continue;
      const color = m.labelColor(a.label);
      const b = e.bbox;
      // Objects under ~2 screen px are a dot whatever their outline: skip building paths.
      if ((b.maxX - b.minX) * s < 2 && (b.maxY - b.minY) * s < 2) {
        ctx.fillStyle = color;
        ctx.fillRect(b.minX, b.minY, Math.max(b.maxX - b.minX, 2 / s), Math.max(b.maxY - b.minY, 2 / s));
        lastColor = "";
        tiny.push(b);
        continue;
      }
      if (e.geometry.type === "mask") {
        const c = m.scene.maskCanvas(a.uid, color);
        if (c && e.mask) {
          ctx.imageSmoothingEnabled = false;
          ctx.globalAlpha = 0.45;
          ctx.drawImage(c, e.mask.x0, e.mask.y0);
          ctx.globalAlpha = 1;
        }
        continue;
      }
      const path = m.scene.path(a.uid, level)!;
      if (color !== lastColor) {
        ctx.fillStyle = this.fill(color);
        ctx.strokeStyle = color;
        lastColor = color;
      }
      ctx.fill(path, "evenodd");
      ctx.stroke(path);
    }
    this.drawProposals(ctx, inView, level);
    if (m.decorate) {
      const d = this.dpr;
      m.decorate({
        ctx,
        scale: s,
        inView,
        level,
        toImage: () => this.setImageTransform(ctx),
        toScreen: () => ctx.setTransform(d, 0, 0, d, 0, 0),
      });
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
    }
  }

  private drawProposals(ctx: CanvasRenderingContext2D, inView: Set<string>, level: number): void {
    const m = this.model, s = m.viewport.scale;
    const sel = m.selectedProposal();
    const labels: [string, Point, string][] = [];
    ctx.setLineDash([6 / s, 4 / s]);
    for (const p of m.visibleProposals()) {
      const key = `p:${p.id}`;
      if (!inView.has(key)) continue;
      const e = m.scene.get(key);
      if (!e) continue;
      const color = m.labelColor(p.label);
      ctx.strokeStyle = color;
      ctx.lineWidth = (p.id === sel ? 3 : 1 / this.dpr) / s;
      if (e.geometry.type === "mask") {
        const c = m.scene.maskCanvas(key, color);
        if (c && e.mask) {
          ctx.globalAlpha = p.id === sel ? 0.4 : 0.2;
          ctx.drawImage(c, e.mask.x0, e.mask.y0);
          ctx.globalAlpha = 1;
        }
        ctx.strokeRect(e.bbox.minX, e.bbox.minY, e.bbox.maxX - e.bbox.minX, e.bbox.maxY - e.bbox.minY);
      } else {
        const path = m.scene.path(key, level)!;
        if (p.id === sel) {
          ctx.fillStyle = this.fill(color, 0.15);
          ctx.fill(path, "evenodd");
        }
        ctx.stroke(path);
      }
      if ((e.bbox.maxX - e.bbox.minX) * s > 24) labels.push([color, [e.bbox.minX, e.bbox.minY], `${p.class_name} ${p.score.toFixed(2)}`]);
    }
    ctx.setLineDash([]);
    if (!labels.length) return;
    // Text in screen space so it stays readable at any zoom.
    const d = this.dpr;
    ctx.setTransform(d, 0, 0, d, 0, 0);
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "bottom";
    for (const [color, pt, text] of labels) {
      const [x, y] = m.viewport.toScreen(pt);
      const w = ctx.measureText(text).width + 6;
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(x, y - 14, w, 14);
      ctx.fillStyle = color;
      ctx.fillText(text, x + 3, y - 1);
    }
  }

  private drawInteraction(): void {
    const ctx = this.ictx, m = this.model, v = m.viewport, d = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.interactionCanvas.width, this.interactionCanvas.height);
    const uid = m.selectedUid();
    const a = uid ? m.scene.get(uid) : undefined;
    const ann = uid ? m.annotation(uid) : undefined;
    if (uid && a && ann && !m.isHidden(uid)) {
      const draft = m.draft();
      const geometry = draft && draft.uid === uid && draft.geometry ? draft.geometry : a.geometry;
      const offset = draft && draft.uid === uid && draft.offset ? draft.offset : [0, 0];
      const color = m.labelColor(ann.label);
      this.setImageTransform(ctx);
      ctx.translate(offset[0], offset[1]);
      const session = m.maskSessionCanvas(uid);
      if (session) {
        this.drawVisiblePart(ctx, session, 0.5);
      } else if (geometry.type === "mask") {
        const c = m.scene.maskCanvas(uid, color);
        if (c && a.mask) {
          ctx.imageSmoothingEnabled = false;
          ctx.globalAlpha = 0.6;
          ctx.drawImage(c, a.mask.x0, a.mask.y0);
          ctx.globalAlpha = 1;
        }
        ctx.setLineDash([4 / v.scale, 3 / v.scale]);
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 1 / v.scale;
        ctx.strokeRect(a.bbox.minX, a.bbox.minY, a.bbox.maxX - a.bbox.minX, a.bbox.maxY - a.bbox.minY);
        ctx.setLineDash([]);
      } else {
        // The selected object is one object: building its full-detail path each frame is cheap.
        const path = geometry === a.geometry ? m.scene.path(uid, 0)! : buildPath(geometry, 0);
        ctx.fillStyle = this.fill(color, 0.45);
        ctx.fill(path, "evenodd");
        ctx.lineWidth = 3.5 / v.scale;
        ctx.strokeStyle = "#ffffff";
        ctx.stroke(path);
        ctx.lineWidth = 2 / v.scale;
        ctx.strokeStyle = color;
        ctx.stroke(path);
        ctx.setTransform(d, 0, 0, d, 0, 0);
        this.drawHandles(ctx, geometry, offset as Point);
      }
    }
    const pending = m.pendingMaskCanvas();
    if (pending) {
      this.setImageTransform(ctx);
      this.drawVisiblePart(ctx, pending, 0.5);
    }
    ctx.setTransform(d, 0, 0, d, 0, 0);
    const hv = m.hoverVertex();
    if (hv) {
      const [x, y] = v.toScreen(hv);
      ctx.strokeStyle = "#ff0";
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 6, y - 6, 12, 12);
    }
    m.renderToolOverlay(ctx);
  }

  /** Draw only the visible source rectangle of a full-image canvas (cost ~ viewport, not image). */
  private drawVisiblePart(ctx: CanvasRenderingContext2D, c: HTMLCanvasElement, alpha: number): void {
    const r = this.model.viewport.visibleRect(0);
    const x0 = Math.max(0, Math.floor(r.minX)), y0 = Math.max(0, Math.floor(r.minY));
    const x1 = Math.min(c.width, Math.ceil(r.maxX)), y1 = Math.min(c.height, Math.ceil(r.maxY));
    if (x1 <= x0 || y1 <= y0) return;
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = alpha;
    ctx.drawImage(c, x0, y0, x1 - x0, y1 - y0, x0, y0, x1 - x0, y1 - y0);
    ctx.globalAlpha = 1;
  }

  private drawHandles(ctx: CanvasRenderingContext2D, g: PolygonsGeometry, offset: Point): void {
    const v = this.model.viewport;
    const b = polygonsBBox(g);
    const vis = v.visibleRect(10);
    const s = v.scale;
    ctx.fillStyle = "#fff";
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 1;
    const mids: Point[] = [];
    for (const part of g.polygons) {
      for (const ring of [part.exterior, ...part.holes]) {
        for (let i = 0; i < ring.length; i++) {
          const p = ring[i];
          const q = ring[(i + 1) % ring.length];
          const x = (p[0] + offset[0]) * s + v.tx, y = (p[1] + offset[1]) * s + v.ty;
          if (p[0] >= vis.minX && p[0] <= vis.maxX && p[1] >= vis.minY && p[1] <= vis.maxY) {
            ctx.fillRect(x - 3.5, y - 3.5, 7, 7);
            ctx.strokeRect(x - 3.5, y - 3.5, 7, 7);
          }
          // Midpoint handles only where the edge is long enough on screen to grab them apart.
          if (Math.hypot(q[0] - p[0], q[1] - p[1]) * s > 24) mids.push([(p[0] + q[0]) / 2 + offset[0], (p[1] + q[1]) / 2 + offset[1]]);
        }
      }
    }
    if ((b.maxX - b.minX) * s < 8) return;
    ctx.fillStyle = "rgba(255,255,255,0.7)";
    for (const mp of mids) {
      const [x, y] = v.toScreen(mp);
      ctx.beginPath();
      ctx.arc(x, y, 3, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }
  }
}

/** Edge midpoints of a polygons geometry (the insert-vertex handles), with their edge refs. */
export function midpointHandles(g: PolygonsGeometry, minScreenLen: number, scale: number): { part: number; ring: number; index: number; point: Point }[] {
  const out: { part: number; ring: number; index: number; point: Point }[] = [];
  g.polygons.forEach((part, pi) =>
    [part.exterior, ...part.holes].forEach((ring, ri) => {
      for (let i = 0; i < ring.length; i++) {
        const p = ring[i], q = ring[(i + 1) % ring.length];
        if (Math.hypot(q[0] - p[0], q[1] - p[1]) * scale > minScreenLen) out.push({ part: pi, ring: ri, index: i, point: [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2] });
      }
    }),
  );
  return out;
}
