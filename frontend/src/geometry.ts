/**
 * Pure geometry for the editor (no DOM): the shared geometry contract, areas, bounding boxes,
 * point-in-polygon with holes, vertex/edge picking, immutable vertex/hole/part edits, and the
 * normalisation every tool's output passes before it becomes an object (normalizeGeometry).
 *
 * Coordinates are image pixels (COCO convention, origin top-left). Rings are open (the last point
 * is not a repeat of the first). Every edit returns a new geometry object so the store can keep
 * before/after snapshots for undo and the renderer can key caches on object identity.
 */

export type Point = [number, number];
export type Ring = Point[];

export interface PolygonPart {
  exterior: Ring;
  holes: Ring[];
}

export interface PolygonsGeometry {
  type: "polygons";
  polygons: PolygonPart[];
}

export interface RLE {
  size: [number, number]; // [height, width]
  counts: string;
}

export interface MaskGeometry {
  type: "mask";
  rle: RLE;
}

export type Geometry = PolygonsGeometry | MaskGeometry;

export interface BBox {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/** Addresses one vertex: ring 0 is the exterior of `part`, ring k>0 is holes[k-1]. */
export interface VertexRef {
  part: number;
  ring: number;
  index: number;
}

import { decodeRLE, encodeBitmap, stringToCounts } from "./rle";

export const EMPTY_BBOX: BBox = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };

// ---------------------------------------------------------------- measures

/** Signed shoelace area: positive for clockwise rings in y-down image coordinates. */
export function ringSignedArea(ring: Ring): number {
  let s = 0;
  for (let i = 0, n = ring.length, j = n - 1; i < n; j = i++) {
    s += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  }
  return s / 2;
}

export function ringArea(ring: Ring): number {
  return Math.abs(ringSignedArea(ring));
}

export function partArea(part: PolygonPart): number {
  let a = ringArea(part.exterior);
  for (const h of part.holes) a -= ringArea(h);
  return Math.max(0, a);
}

export function polygonsArea(geom: PolygonsGeometry): number {
  let a = 0;
  for (const p of geom.polygons) a += partArea(p);
  return a;
}

export function ringBBox(ring: Ring): BBox {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of ring) {
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return { minX, minY, maxX, maxY };
}

/** Bounding box of a polygons geometry (holes lie inside exteriors, so exteriors suffice). */
export function polygonsBBox(geom: PolygonsGeometry): BBox {
  let b = { ...EMPTY_BBOX };
  for (const p of geom.polygons) b = unionBBox(b, ringBBox(p.exterior));
  return b;
}

export function unionBBox(a: BBox, b: BBox): BBox {
  return {
    minX: Math.min(a.minX, b.minX),
    minY: Math.min(a.minY, b.minY),
    maxX: Math.max(a.maxX, b.maxX),
    maxY: Math.max(a.maxY, b.maxY),
  };
}

export function bboxIntersects(a: BBox, b: BBox): boolean {
  return a.minX <= b.maxX && a.maxX >= b.minX && a.minY <= b.maxY && a.maxY >= b.minY;
}

export function bboxContains(b: BBox, p: Point, pad = 0): boolean {
  return p[0] >= b.minX - pad && p[0] <= b.maxX + pad && p[1] >= b.minY - pad && p[1] <= b.maxY + pad;
}

export function isEmptyBBox(b: BBox): boolean {
  return !(b.maxX >= b.minX && b.maxY >= b.minY);
}

export function vertexCount(geom: PolygonsGeometry): number {
  let n = 0;
  for (const p of geom.polygons) {
    n += p.exterior.length;
    for (const h of p.holes) n += h.length;
  }
  return n;
}

// ---------------------------------------------------------------- containment

/** Even-odd ray casting; points exactly on an edge may go either way (irrelevant for clicks). */
export function pointInRing(p: Point, ring: Ring): boolean {
  const [x, y] = p;
  let inside = false;
  for (let i = 0, n = ring.length, j = n - 1; i < n; j = i++) {
    const xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Inside the exterior and outside every hole. */
export function pointInPart(p: Point, part: PolygonPart): boolean {
  if (!pointInRing(p, part.exterior)) return false;
  for (const h of part.holes) if (pointInRing(p, h)) return false;
  return true;
}

export function pointInPolygons(p: Point, geom: PolygonsGeometry): boolean {
  for (const part of geom.polygons) if (pointInPart(p, part)) return true;
  return false;
}

/** Index of the part whose area (exterior minus holes) contains p, or -1. */
export function partAt(p: Point, geom: PolygonsGeometry): number {
  return geom.polygons.findIndex((part) => pointInPart(p, part));
}

// ---------------------------------------------------------------- picking

export function getRing(geom: PolygonsGeometry, part: number, ring: number): Ring {
  const p = geom.polygons[part];
  return ring === 0 ? p.exterior : p.holes[ring - 1];
}

function dist2(a: Point, b: Point): number {
  const dx = a[0] - b[0], dy = a[1] - b[1];
  return dx * dx + dy * dy;
}

/** Closest point on segment ab to p, with its parameter t in [0, 1]. */
export function projectOnSegment(p: Point, a: Point, b: Point): { point: Point; t: number } {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  let t = len2 === 0 ? 0 : ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2;
  t = Math.max(0, Math.min(1, t));
  return { point: [a[0] + t * dx, a[1] + t * dy], t };
}

function forEachRing(geom: PolygonsGeometry, fn: (ring: Ring, part: number, ringIdx: number) => void): void {
  geom.polygons.forEach((p, pi) => {
    fn(p.exterior, pi, 0);
    p.holes.forEach((h, hi) => fn(h, pi, hi + 1));
  });
}

/** Nearest vertex within `tolerance` (image px), or null. */
export function nearestVertex(geom: PolygonsGeometry, p: Point, tolerance: number): VertexRef | null {
  let best: VertexRef | null = null;
  let bestD = tolerance * tolerance;
  forEachRing(geom, (ring, part, r) => {
    for (let i = 0; i < ring.length; i++) {
      const d = dist2(p, ring[i]);
      if (d <= bestD) {
        bestD = d;
        best = { part, ring: r, index: i };
      }
    }
  });
  return best;
}

/** Nearest edge within tolerance: the edge runs from vertex `index` to `index + 1` (wrapping). */
export function nearestEdge(
  geom: PolygonsGeometry,
  p: Point,
  tolerance: number,
): { ref: VertexRef; point: Point } | null {
  let best: { ref: VertexRef; point: Point } | null = null;
  let bestD = tolerance * tolerance;
  forEachRing(geom, (ring, part, r) => {
    for (let i = 0; i < ring.length; i++) {
      const proj = projectOnSegment(p, ring[i], ring[(i + 1) % ring.length]);
      const d = dist2(p, proj.point);
      if (d <= bestD) {
        bestD = d;
        best = { ref: { part, ring: r, index: i }, point: proj.point };
      }
    }
  });
  return best;
}

// ---------------------------------------------------------------- immutable edits

function mapRing(
  geom: PolygonsGeometry,
  part: number,
  ring: number,
  fn: (r: Ring) => Ring,
): PolygonsGeometry {
  return {
    type: "polygons",
    polygons: geom.polygons.map((p, pi) => {
      if (pi !== part) return p;
      if (ring === 0) return { exterior: fn(p.exterior), holes: p.holes };
      return { exterior: p.exterior, holes: p.holes.map((h, hi) => (hi === ring - 1 ? fn(h) : h)) };
    }),
  };
}

export function moveVertex(geom: PolygonsGeometry, ref: VertexRef, to: Point): PolygonsGeometry {
  return mapRing(geom, ref.part, ref.ring, (r) => r.map((v, i) => (i === ref.index ? [to[0], to[1]] : v)));
}

/** Insert `at` after vertex `ref.index` (i.e. on the edge index -> index+1). */
export function insertVertex(geom: PolygonsGeometry, ref: VertexRef, at: Point): PolygonsGeometry {
  return mapRing(geom, ref.part, ref.ring, (r) => [...r.slice(0, ref.index + 1), [at[0], at[1]], ...r.slice(ref.index + 1)]);
}

/**
 * Delete a vertex. A ring left with fewer than 3 points disappears: a hole is removed, an
 * exterior removes its part; returns null when the object would have no part left (the caller
 * then deletes the object).
 */
export function deleteVertex(geom: PolygonsGeometry, ref: VertexRef): PolygonsGeometry | null {
  const ring = getRing(geom, ref.part, ref.ring);
  if (ring.length > 3) return mapRing(geom, ref.part, ref.ring, (r) => r.filter((_, i) => i !== ref.index));
  if (ref.ring > 0) return removeHole(geom, ref.part, ref.ring - 1);
  return removePart(geom, ref.part);
}

export function removeHole(geom: PolygonsGeometry, part: number, hole: number): PolygonsGeometry {
  return {
    type: "polygons",
    polygons: geom.polygons.map((p, pi) => (pi === part ? { exterior: p.exterior, holes: p.holes.filter((_, i) => i !== hole) } : p)),
  };
}

export function removePart(geom: PolygonsGeometry, part: number): PolygonsGeometry | null {
  const polygons = geom.polygons.filter((_, i) => i !== part);
  return polygons.length ? { type: "polygons", polygons } : null;
}

export function translateGeometry(geom: PolygonsGeometry, dx: number, dy: number): PolygonsGeometry {
  const t = (r: Ring): Ring => r.map(([x, y]) => [x + dx, y + dy]);
  return { type: "polygons", polygons: geom.polygons.map((p) => ({ exterior: t(p.exterior), holes: p.holes.map(t) })) };
}

/**
 * Cut `ring` as a hole into the part that contains all of its vertices. Returns null when no part
 * contains it or it would intersect an existing hole (the server would reject such geometry).
 */
export function addHole(geom: PolygonsGeometry, ring: Ring): PolygonsGeometry | null {
  if (ring.length < 3) return null;
  const pi = geom.polygons.findIndex((p) => ring.every((pt) => pointInRing(pt, p.exterior)));
  if (pi < 0) return null;
  const part = geom.polygons[pi];
  for (const h of part.holes) {
    if (ring.some((pt) => pointInRing(pt, h)) || h.some((pt) => pointInRing(pt, ring))) return null;
    if (ringsCross(h, ring)) return null;
  }
  if (ringsCross(part.exterior, ring)) return null;
  return {
    type: "polygons",
    polygons: geom.polygons.map((p, i) => (i === pi ? { exterior: p.exterior, holes: [...p.holes, ring.map(copyPt)] } : p)),
  };
}

/** Add a new part (polygon without holes) to an object. */
export function addPart(geom: PolygonsGeometry, ring: Ring): PolygonsGeometry {
  return { type: "polygons", polygons: [...geom.polygons, { exterior: ring.map(copyPt), holes: [] }] };
}

export function newPolygons(ring: Ring): PolygonsGeometry {
  return { type: "polygons", polygons: [{ exterior: ring.map(copyPt), holes: [] }] };
}

function copyPt(p: Point): Point {
  return [p[0], p[1]];
}

function segmentsCross(a: Point, b: Point, c: Point, d: Point): boolean {
  const o = (p: Point, q: Point, r: Point) => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  const o1 = o(a, b, c), o2 = o(a, b, d), o3 = o(c, d, a), o4 = o(c, d, b);
  return o1 * o2 < 0 && o3 * o4 < 0;
}

/** Proper crossing between any edge of ring a and any edge of ring b. */
export function ringsCross(a: Ring, b: Ring): boolean {
  for (let i = 0; i < a.length; i++) {
    const a1 = a[i], a2 = a[(i + 1) % a.length];
    for (let j = 0; j < b.length; j++) if (segmentsCross(a1, a2, b[j], b[(j + 1) % b.length])) return true;
  }
  return false;
}

/** True when two non-adjacent edges of the ring cross (a self-intersecting outline). */
export function ringSelfIntersects(r: Ring): boolean {
  const n = r.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue; // adjacent through the closing edge
      if (segmentsCross(r[i], r[(i + 1) % n], r[j], r[(j + 1) % n])) return true;
    }
  }
  return false;
}

/**
 * Level-of-detail decimation for drawing: drops vertices closer than `tolerance` to the last kept
 * one. Only for rendering at low zoom (sub-pixel detail is invisible), never for saving.
 */
export function decimateRing(ring: Ring, tolerance: number): Ring {
  if (ring.length <= 3 || tolerance <= 0) return ring;
  const t2 = tolerance * tolerance;
  const out: Ring = [ring[0]];
  let last = ring[0];
  for (let i = 1; i < ring.length; i++) {
    if (dist2(ring[i], last) >= t2) {
      out.push(ring[i]);
      last = ring[i];
    }
  }
  return out.length >= 3 ? out : ring.slice(0, 3);
}

/**
 * Objects stacked under a point, topmost first. `contains` is supplied by the caller so masks
 * (bitmap lookups) and polygons share the same ordering logic.
 */
export function stackAt<T extends { uid: string; z_order: number }>(
  candidates: Iterable<T>,
  contains: (item: T) => boolean,
): T[] {
  const hits: T[] = [];
  for (const c of candidates) if (contains(c)) hits.push(c);
  // Ties in z_order break by uid so the cycling order is stable between clicks.
  hits.sort((a, b) => b.z_order - a.z_order || (a.uid < b.uid ? -1 : 1));
  return hits;
}

/**
 * Repeated clicks at the same spot cycle through stacked objects: the next one below the current
 * selection, wrapping to the top.
 */
export function nextInStack(stack: string[], current: string | null): string | null {
  if (!stack.length) return null;
  const i = current ? stack.indexOf(current) : -1;
  return i < 0 ? stack[0] : stack[(i + 1) % stack.length];
}

// ---------------------------------------------------------------- normalisation

/**
 * Areas at or below this are slivers from collinear points, not shapes (the server's threshold).
 */
const MIN_AREA = 1e-9;

/** The nearest point of the image [0, width] x [0, height]; `p` itself when it is inside. */
export function clampToImage(p: Point, width: number, height: number): Point {
  const x = Math.min(width, Math.max(0, p[0]));
  const y = Math.min(height, Math.max(0, p[1]));
  return x === p[0] && y === p[1] ? p : [x, y];
}

function samePoint(a: Point, b: Point): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** b is the tip of a zero-width spike: a -> b -> c run back along one line. */
function isSpike(a: Point, b: Point, c: Point): boolean {
  const ux = b[0] - a[0], uy = b[1] - a[1], vx = c[0] - b[0], vy = c[1] - b[1];
  return ux * vy - uy * vx === 0 && ux * vx + uy * vy < 0;
}

/**
 * One ring as the server accepts it, or null when nothing with an area is left: points clamped
 * into the image (non-finite ones dropped), repeated consecutive points and a closing repeat of
 * the first point dropped, zero-width spikes folded away (clamping an excursion past an edge
 * leaves one). Returns `ring` itself when nothing had to change, so callers can tell.
 */
export function normalizeRing(ring: Ring, width: number, height: number): Ring | null {
  const out: Point[] = [];
  let changed = false;
  for (const raw of ring) {
    if (!Number.isFinite(raw[0]) || !Number.isFinite(raw[1])) {
      changed = true;
      continue;
    }
    const p = clampToImage(raw, width, height);
    if (p !== raw) changed = true;
    if (out.length && samePoint(out[out.length - 1], p)) {
      changed = true;
      continue;
    }
    out.push(p);
    // Folding a spike can expose another one (or a repeat) just before it.
    while (out.length >= 3 && isSpike(out[out.length - 3], out[out.length - 2], out[out.length - 1])) {
      out.splice(out.length - 2, 1);
      changed = true;
    }
    while (out.length >= 2 && samePoint(out[out.length - 2], out[out.length - 1])) {
      out.pop();
      changed = true;
    }
  }
  // The same clean-up across the seam between the last point and the first.
  for (let again = true; again && out.length >= 3; ) {
    again = false;
    const n = out.length;
    if (samePoint(out[n - 1], out[0])) {
      out.pop();
      again = true;
    } else if (isSpike(out[n - 2], out[n - 1], out[0])) {
      out.pop();
      again = true;
    } else if (isSpike(out[n - 1], out[0], out[1])) {
      out.shift();
      again = true;
    }
    if (again) changed = true;
  }
  // A bow-tie's lobes cancel out to no area too, but it is a shape: the server untangles it.
  if (out.length < 3 || (ringArea(out) <= MIN_AREA && collinear(out))) return null;
  return changed ? out : ring;
}

/** All points on one line (no area whatever the order). */
function collinear(ring: Ring): boolean {
  const o = ring[0];
  let far = o, d = 0;
  for (const p of ring) {
    const dp = dist2(o, p);
    if (dp > d) (d = dp), (far = p);
  }
  const ux = far[0] - o[0], uy = far[1] - o[1];
  // Distance from the line through o and far, relative to its length.
  return ring.every((p) => Math.abs(ux * (p[1] - o[1]) - uy * (p[0] - o[0])) <= 1e-9 * d);
}

/**
 * Polygons as the server accepts them (see normalizeRing): a part whose exterior collapses is
 * dropped, so is a hole that collapses; null when no part is left. Self-crossing outlines are
 * left to the server, which repairs them. Returns `geom` itself when nothing had to change.
 */
export function normalizePolygons(geom: PolygonsGeometry, width: number, height: number): PolygonsGeometry | null {
  let changed = false;
  const polygons: PolygonPart[] = [];
  for (const part of geom.polygons) {
    const exterior = normalizeRing(part.exterior, width, height);
    if (!exterior) {
      changed = true;
      continue;
    }
    const holes: Ring[] = [];
    for (const h of part.holes) {
      const hole = normalizeRing(h, width, height);
      if (hole) holes.push(hole);
      if (hole !== h) changed = true;
    }
    if (exterior !== part.exterior || holes.length !== part.holes.length || holes.some((r, i) => r !== part.holes[i])) {
      changed = true;
      polygons.push({ exterior, holes });
    } else polygons.push(part);
  }
  if (!polygons.length) return null;
  return changed ? { type: "polygons", polygons } : geom;
}

/**
 * A mask as the server accepts it: sized like the image (a mask of another size is cropped or
 * padded at the bottom and right) and not empty; null when empty. Returns `geom` itself when
 * nothing had to change.
 */
export function normalizeMask(geom: MaskGeometry, width: number, height: number): MaskGeometry | null {
  const [h, w] = geom.rle.size;
  if (h === height && w === width) {
    const counts = stringToCounts(geom.rle.counts);
    for (let i = 1; i < counts.length; i += 2) if (counts[i] > 0) return geom;
    return null;
  }
  const src = decodeRLE(geom.rle);
  const data = new Uint8Array(width * height);
  let any = false;
  for (let y = 0; y < Math.min(h, height); y++) {
    for (let x = 0; x < Math.min(w, width); x++) {
      if (src.data[y * w + x]) {
        data[y * width + x] = 1;
        any = true;
      }
    }
  }
  return any ? { type: "mask", rle: encodeBitmap({ width, height, data }) } : null;
}

/**
 * The one normalisation every tool's output passes before it becomes (part of) an object, so
 * that a vertex a few pixels into the margin, a click on the very edge or a degenerate outline
 * never reaches the server as something it refuses. null: nothing with an area is left.
 */
export function normalizeGeometry(geom: Geometry, width: number, height: number): Geometry | null {
  return geom.type === "mask" ? normalizeMask(geom, width, height) : normalizePolygons(geom, width, height);
}
