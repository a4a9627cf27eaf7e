/**
 * Brush/eraser painting for one mask object: the mask lives as a Uint8Array bitmap plus a
 * full-image offscreen canvas; strokes paint with canvas composite modes (source-over for the
 * brush, destination-out for the eraser) and are folded back into the bitmap, then encoded to
 * COCO RLE, only when the stroke ends.
 */
import type { BBox, Geometry, Point, RLE } from "./geometry";
import { decodeRLE, bitmapBBox, encodeBitmap, type Bitmap } from "./rle";

export class MaskSession {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  readonly bitmap: Bitmap;
  bbox: BBox | null;
  /** The geometry this session last produced or was built from; a different one means undo/redo happened. */
  geometry: Geometry | null;
  private stroke: { last: Point; dirty: BBox; erase: boolean; size: number } | null = null;

  constructor(readonly uid: string, width: number, height: number, geometry: Geometry | null, private readonly color: string) {
    this.canvas = document.createElement("canvas");
    this.canvas.width = width;
    this.canvas.height = height;
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true })!;
    this.geometry = geometry;
    this.bitmap = geometry && geometry.type === "mask" ? decodeRLE(geometry.rle) : { width, height, data: new Uint8Array(width * height) };
    this.bbox = bitmapBBox(this.bitmap);
    if (this.bbox) this.repaint(this.bbox);
  }

  get painting(): boolean {
    return this.stroke !== null;
  }

  begin(p: Point, size: number, erase: boolean): void {
    const r = size / 2;
    this.stroke = { last: p, erase, size, dirty: { minX: p[0] - r, minY: p[1] - r, maxX: p[0] + r, maxY: p[1] + r } };
    this.segment(p, p);
  }

  extend(p: Point): void {
    if (!this.stroke) return;
    this.segment(this.stroke.last, p);
    this.stroke.last = p;
    const r = this.stroke.size / 2, d = this.stroke.dirty;
    d.minX = Math.min(d.minX, p[0] - r);
    d.minY = Math.min(d.minY, p[1] - r);
    d.maxX = Math.max(d.maxX, p[0] + r);
    d.maxY = Math.max(d.maxY, p[1] + r);
  }

  private segment(a: Point, b: Point): void {
    const s = this.stroke!;
    const ctx = this.ctx;
    ctx.globalCompositeOperation = s.erase ? "destination-out" : "source-over";
    ctx.strokeStyle = this.color;
    ctx.fillStyle = this.color;
    ctx.lineWidth = s.size;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    if (a[0] === b[0] && a[1] === b[1]) {
      ctx.arc(a[0], a[1], s.size / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
    }
    ctx.globalCompositeOperation = "source-over";
  }

  /**
   * Fold the stroke into the bitmap (alpha >= 50% counts as set, so anti-aliased edges don't
   * leak), redraw that area crisply and return the new RLE, or null when the mask became empty.
   */
  end(): RLE | null {
    const s = this.stroke;
    this.stroke = null;
    if (!s) return null;
    const { width: w, height: h, data } = this.bitmap;
    const x0 = Math.max(0, Math.floor(s.dirty.minX) - 1), y0 = Math.max(0, Math.floor(s.dirty.minY) - 1);
    const x1 = Math.min(w - 1, Math.ceil(s.dirty.maxX) + 1), y1 = Math.min(h - 1, Math.ceil(s.dirty.maxY) + 1);
    if (x1 >= x0 && y1 >= y0) {
      const img = this.ctx.getImageData(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
      const px = img.data;
      const rw = x1 - x0 + 1;
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) data[y * w + x] = px[((y - y0) * rw + (x - x0)) * 4 + 3] >= 128 ? 1 : 0;
      }
      this.repaint({ minX: x0, minY: y0, maxX: x1, maxY: y1 });
    }
    // The new bbox can only grow by the stroke (brush) or shrink inside the old one (eraser).
    const dirty = { minX: x0, minY: y0, maxX: x1, maxY: y1 };
    const search = this.bbox ? { minX: Math.min(this.bbox.minX, x0), minY: Math.min(this.bbox.minY, y0), maxX: Math.max(this.bbox.maxX, x1), maxY: Math.max(this.bbox.maxY, y1) } : dirty;
    this.bbox = bitmapBBox(this.bitmap, search);
    if (!this.bbox) return null;
    return encodeBitmap(this.bitmap, this.bbox);
  }

  private repaint(r: BBox): void {
    const { width: w, data } = this.bitmap;
    const rw = r.maxX - r.minX + 1, rh = r.maxY - r.minY + 1;
    const img = this.ctx.createImageData(rw, rh);
    const px = new Uint32Array(img.data.buffer);
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(this.color);
    const [cr, cg, cb] = m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
    const v = (255 << 24) | (cb << 16) | (cg << 8) | cr;
    for (let y = 0; y < rh; y++) {
      const row = (y + r.minY) * w + r.minX;
      for (let x = 0; x < rw; x++) if (data[row + x]) px[y * rw + x] = v;
    }
    this.ctx.putImageData(img, r.minX, r.minY);
  }
}
