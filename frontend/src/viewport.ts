/** Pan/zoom transform between image pixels and stage (CSS) pixels: screen = image * scale + t. */
import type { BBox, Point } from "./geometry";

export class Viewport {
  scale = 1;
  tx = 0;
  ty = 0;
  width = 1;
  height = 1;
  constructor(public imageW: number, public imageH: number) {}

  resize(w: number, h: number): void {
    this.width = Math.max(1, w);
    this.height = Math.max(1, h);
  }

  toScreen(p: Point): Point {
    return [p[0] * this.scale + this.tx, p[1] * this.scale + this.ty];
  }

  toImage(p: Point): Point {
    return [(p[0] - this.tx) / this.scale, (p[1] - this.ty) / this.scale];
  }

  fitScale(): number {
    return Math.min(this.width / this.imageW, this.height / this.imageH) * 0.98;
  }

  fit(): void {
    this.scale = this.fitScale();
    this.tx = (this.width - this.imageW * this.scale) / 2;
    this.ty = (this.height - this.imageH * this.scale) / 2;
  }

  /** 1:1 around the stage centre. */
  oneToOne(): void {
    this.zoomTo(1, this.width / 2, this.height / 2);
  }

  zoomTo(scale: number, sx: number, sy: number): void {
    const min = Math.min(0.05, this.fitScale() / 4);
    const s = Math.max(min, Math.min(64, scale));
    const [ix, iy] = this.toImage([sx, sy]);
    this.scale = s;
    this.tx = sx - ix * s;
    this.ty = sy - iy * s;
  }

  zoomBy(factor: number, sx = this.width / 2, sy = this.height / 2): void {
    this.zoomTo(this.scale * factor, sx, sy);
  }

  panBy(dx: number, dy: number): void {
    this.tx += dx;
    this.ty += dy;
  }

  /** Visible image rectangle (image px), padded so strokes at the border are not culled. */
  visibleRect(padPx = 4): BBox {
    const [x0, y0] = this.toImage([-padPx, -padPx]);
    const [x1, y1] = this.toImage([this.width + padPx, this.height + padPx]);
    return { minX: x0, minY: y0, maxX: x1, maxY: y1 };
  }
}
