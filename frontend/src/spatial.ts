/**
 * Uniform-grid spatial index over bounding boxes (no DOM) for hit testing and viewport culling.
 *
 * A grid beats a tree here: objects in one image have similar sizes, updates (one object edited)
 * are O(cells touched) and the whole index rebuilds in a few ms for thousands of objects.
 */
import type { BBox, Point } from "./geometry";

export class GridIndex {
  private cells = new Map<number, Set<string>>();
  private boxes = new Map<string, BBox>();

  constructor(private readonly cellSize = 256) {}

  private key(cx: number, cy: number): number {
    // Cells are non-negative for in-image boxes; the offset keeps slightly negative ones distinct.
    return (cx + 1024) * 65536 + (cy + 1024);
  }

  private range(b: BBox): [number, number, number, number] {
    const s = this.cellSize;
    return [Math.floor(b.minX / s), Math.floor(b.minY / s), Math.floor(b.maxX / s), Math.floor(b.maxY / s)];
  }

  insert(id: string, b: BBox): void {
    this.remove(id);
    if (!(b.maxX >= b.minX && b.maxY >= b.minY)) return;
    this.boxes.set(id, b);
    const [x0, y0, x1, y1] = this.range(b);
    for (let cx = x0; cx <= x1; cx++) {
      for (let cy = y0; cy <= y1; cy++) {
        const k = this.key(cx, cy);
        let cell = this.cells.get(k);
        if (!cell) this.cells.set(k, (cell = new Set()));
        cell.add(id);
      }
    }
  }

  remove(id: string): void {
    const b = this.boxes.get(id);
    if (!b) return;
    this.boxes.delete(id);
    const [x0, y0, x1, y1] = this.range(b);
    for (let cx = x0; cx <= x1; cx++) for (let cy = y0; cy <= y1; cy++) this.cells.get(this.key(cx, cy))?.delete(id);
  }

  clear(): void {
    this.cells.clear();
    this.boxes.clear();
  }

  bbox(id: string): BBox | undefined {
    return this.boxes.get(id);
  }

  get size(): number {
    return this.boxes.size;
  }

  /** Ids whose box contains p (padded by `pad`). */
  queryPoint(p: Point, pad = 0): string[] {
    const s = this.cellSize;
    const out: string[] = [];
    const seen = new Set<string>();
    const cx0 = Math.floor((p[0] - pad) / s), cx1 = Math.floor((p[0] + pad) / s);
    const cy0 = Math.floor((p[1] - pad) / s), cy1 = Math.floor((p[1] + pad) / s);
    for (let cx = cx0; cx <= cx1; cx++) {
      for (let cy = cy0; cy <= cy1; cy++) {
        const cell = this.cells.get(this.key(cx, cy));
        if (!cell) continue;
        for (const id of cell) {
          if (seen.has(id)) continue;
          seen.add(id);
          const b = this.boxes.get(id)!;
          if (p[0] >= b.minX - pad && p[0] <= b.maxX + pad && p[1] >= b.minY - pad && p[1] <= b.maxY + pad) out.push(id);
        }
      }
    }
    return out;
  }

  /** Ids whose box intersects r. */
  queryRect(r: BBox): Set<string> {
    const out = new Set<string>();
    const [x0, y0, x1, y1] = this.range(r);
    // When the rect covers most of the grid, scanning the boxes directly is cheaper.
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > this.boxes.size) {
      for (const [id, b] of this.boxes) if (b.minX <= r.maxX && b.maxX >= r.minX && b.minY <= r.maxY && b.maxY >= r.minY) out.add(id);
      return out;
    }
    for (let cx = x0; cx <= x1; cx++) {
      for (let cy = y0; cy <= y1; cy++) {
        const cell = this.cells.get(this.key(cx, cy));
        if (!cell) continue;
        for (const id of cell) {
          if (out.has(id)) continue;
          const b = this.boxes.get(id)!;
          if (b.minX <= r.maxX && b.maxX >= r.minX && b.minY <= r.maxY && b.maxY >= r.minY) out.add(id);
        }
      }
    }
    return out;
  }
}
