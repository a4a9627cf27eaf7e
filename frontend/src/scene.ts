/**
 * Derived per-object data shared by the renderer and hit testing: bbox, spatial index entry,
 * cached Path2D per level of detail, decoded mask crops and their coloured canvases. Entries are
 * keyed by object id and validated by geometry identity (geometries are immutable), so an edit
 * invalidates exactly the object it touched.
 */
import { decimateRing, pointInPolygons, polygonsBBox, type BBox, type Geometry, type Point, type PolygonsGeometry } from "./geometry";
import { decodeRLECropped, maskContains, type CroppedMask } from "./rle";
import { GridIndex } from "./spatial";

export interface SceneEntry {
  geometry: Geometry;
  bbox: BBox;
  paths: Map<number, Path2D>;
  mask?: CroppedMask;
  maskCanvas?: { color: string; canvas: HTMLCanvasElement };
}

/** Level >= FULL means "every vertex". */
const FULL = 0;

export function lodLevel(scale: number): number {
  return Math.min(FULL, Math.floor(Math.log2(scale)));
}

export class Scene {
  readonly grid = new GridIndex(128);
  private entries = new Map<string, SceneEntry>();

  update(key: string, geometry: Geometry): SceneEntry {
    const old = this.entries.get(key);
    if (old && old.geometry === geometry) return old;
    let e: SceneEntry;
    if (geometry.type === "polygons") {
      e = { geometry, bbox: polygonsBBox(geometry), paths: new Map() };
    } else {
      const mask = decodeRLECropped(geometry.rle);
      const bbox = mask.area ? { minX: mask.x0, minY: mask.y0, maxX: mask.x0 + mask.w, maxY: mask.y0 + mask.h } : { minX: 0, minY: 0, maxX: -1, maxY: -1 };
      e = { geometry, bbox, paths: new Map(), mask };
    }
    this.entries.set(key, e);
    this.grid.insert(key, e.bbox);
    return e;
  }

  remove(key: string): void {
    this.entries.delete(key);
    this.grid.remove(key);
  }

  clear(): void {
    this.entries.clear();
    this.grid.clear();
  }

  get(key: string): SceneEntry | undefined {
    return this.entries.get(key);
  }

  /** Path2D of all rings (fill with "evenodd" so holes stay open), decimated for low zoom. */
  path(key: string, level: number): Path2D | null {
    const e = this.entries.get(key);
    if (!e || e.geometry.type !== "polygons") return null;
    let p = e.paths.get(level);
    if (!p) {
      p = buildPath(e.geometry, level >= FULL ? 0 : 2 ** -(level + 1));
      e.paths.set(level, p);
    }
    return p;
  }

  contains(key: string, pt: Point): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    if (pt[0] < e.bbox.minX || pt[0] > e.bbox.maxX || pt[1] < e.bbox.minY || pt[1] > e.bbox.maxY) return false;
    if (e.geometry.type === "polygons") return pointInPolygons(pt, e.geometry);
    return maskContains(e.mask!, pt[0], pt[1]);
  }

  /** Canvas of the mask crop painted in `color` (opaque; the caller sets globalAlpha). */
  maskCanvas(key: string, color: string): HTMLCanvasElement | null {
    const e = this.entries.get(key);
    if (!e?.mask || !e.mask.area) return null;
    if (e.maskCanvas && e.maskCanvas.color === color) return e.maskCanvas.canvas;
    const canvas = maskToCanvas(e.mask, color);
    e.maskCanvas = { color, canvas };
    return canvas;
  }
}

export function buildPath(g: PolygonsGeometry, tolerance: number): Path2D {
  const p = new Path2D();
  for (const part of g.polygons) {
    for (const ring0 of [part.exterior, ...part.holes]) {
      const ring = tolerance > 0 ? decimateRing(ring0, tolerance) : ring0;
      p.moveTo(ring[0][0], ring[0][1]);
      for (let i = 1; i < ring.length; i++) p.lineTo(ring[i][0], ring[i][1]);
      p.closePath();
    }
  }
  return p;
}

export function hexToRgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

export function maskToCanvas(m: CroppedMask, color: string): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = Math.max(1, m.w);
  c.height = Math.max(1, m.h);
  const ctx = c.getContext("2d")!;
  const img = ctx.createImageData(c.width, c.height);
  const [r, g, b] = hexToRgb(color);
  const px = new Uint32Array(img.data.buffer);
  // ImageData is RGBA bytes; on little-endian machines that is 0xAABBGGRR as a Uint32.
  const v = (255 << 24) | (b << 16) | (g << 8) | r;
  for (let i = 0; i < m.data.length; i++) if (m.data[i]) px[i] = v;
  ctx.putImageData(img, 0, 0);
  return c;
}

/** What an overlay strokes of an object that is not one of the editor's own (another person's version). */
export interface Outline {
  path: Path2D | null; // null for a mask: its bounding box is drawn
  bbox: BBox;
}

export function outlineOf(g: Geometry): Outline {
  if (g.type === "polygons") return { path: buildPath(g, 0), bbox: polygonsBBox(g) };
  const m = decodeRLECropped(g.rle);
  return { path: null, bbox: { minX: m.x0, minY: m.y0, maxX: m.x0 + m.w, maxY: m.y0 + m.h } };
}

export function strokeOutline(ctx: CanvasRenderingContext2D, o: Outline): void {
  if (o.path) ctx.stroke(o.path);
  else ctx.strokeRect(o.bbox.minX, o.bbox.minY, o.bbox.maxX - o.bbox.minX, o.bbox.maxY - o.bbox.minY);
}
