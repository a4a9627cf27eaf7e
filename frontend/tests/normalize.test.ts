/** The one normalisation every tool's output passes: clamped to the image, no repeats, no empty parts. */
import { describe, expect, it } from "vitest";
import {
  clampToImage,
  normalizeGeometry,
  normalizeRing,
  polygonsArea,
  type MaskGeometry,
  type PolygonsGeometry,
  type Ring,
} from "../src/geometry";
import { decodeRLE, encodeBitmap, rleArea } from "../src/rle";

const W = 640, H = 480;
const poly = (...rings: Ring[][]): PolygonsGeometry => ({ type: "polygons", polygons: rings.map(([exterior, ...holes]) => ({ exterior, holes })) });
const square = (x: number, y: number, s: number): Ring => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];

/** A mask of the given size with the rectangle [x0, x1) x [y0, y1) set. */
function rectMask(width: number, height: number, x0: number, y0: number, x1: number, y1: number): MaskGeometry {
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * width + x] = 1;
  return { type: "mask", rle: encodeBitmap({ width, height, data }) };
}

describe("clampToImage", () => {
  it("moves a point in the margin onto the nearest edge and leaves inside points alone", () => {
    expect(clampToImage([470, 484], W, H)).toEqual([470, 480]);
    expect(clampToImage([-3, -0.5], W, H)).toEqual([0, 0]);
    expect(clampToImage([700, 200], W, H)).toEqual([640, 200]);
    const inside: [number, number] = [10, 20];
    expect(clampToImage(inside, W, H)).toBe(inside);
  });

  it("puts a click on the bottom edge, a hair outside after the screen transform, exactly on it", () => {
    expect(clampToImage([320, 480.0000148], W, H)).toEqual([320, 480]);
  });
});

describe("normalizeGeometry for polygons", () => {
  it("returns the very same geometry when nothing needs fixing", () => {
    const g = poly([square(10, 10, 50), square(20, 20, 10)]);
    expect(normalizeGeometry(g, W, H)).toBe(g);
  });

  it("clamps a vertex placed in the margin onto the image edge", () => {
    const g = poly([[[400, 400], [500, 400], [470, 484]]]);
    const out = normalizeGeometry(g, W, H) as PolygonsGeometry;
    expect(out.polygons[0].exterior).toEqual([[400, 400], [500, 400], [470, 480]]);
    // The input is not modified (the store keeps it for undo).
    expect(g.polygons[0].exterior[2]).toEqual([470, 484]);
  });

  it("drops repeated consecutive points and a closing repeat of the first point", () => {
    const out = normalizeGeometry(poly([[[0, 0], [10, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]), W, H) as PolygonsGeometry;
    expect(out.polygons[0].exterior).toEqual([[0, 0], [10, 0], [10, 10], [0, 10]]);
  });

  it("folds the zero-width spike that clamping an excursion past an edge leaves", () => {
    // Out past the bottom and back along it: clamped, (30, 480) is the tip of a spike.
    const g = poly([[[10, 400], [20, 490], [30, 495], [25, 499], [40, 400]]]);
    const out = normalizeGeometry(g, W, H) as PolygonsGeometry;
    expect(out.polygons[0].exterior).toEqual([[10, 400], [20, 480], [25, 480], [40, 400]]);
  });

  it("drops a part wholly in the margin, a part with fewer than 3 distinct points and a flat part", () => {
    const kept = square(100, 100, 20);
    const g = poly([kept], [[[700, 10], [710, 10], [705, 30]]], [[[5, 5], [6, 6], [5, 5]]], [[[0, 0], [10, 10], [20, 20]]]);
    const out = normalizeGeometry(g, W, H) as PolygonsGeometry;
    expect(out.polygons).toHaveLength(1);
    expect(out.polygons[0].exterior).toBe(kept);
  });

  it("drops a hole with no area but keeps the part", () => {
    const out = normalizeGeometry(poly([square(0, 0, 100), [[10, 10], [20, 20], [30, 30]]]), W, H) as PolygonsGeometry;
    expect(out.polygons[0].holes).toEqual([]);
    expect(polygonsArea(out)).toBe(10000);
  });

  it("drops points that are not finite numbers", () => {
    const out = normalizeGeometry(poly([[[0, 0], [NaN, 5], [10, 0], [10, 10], [0, 10]]]), W, H) as PolygonsGeometry;
    expect(out.polygons[0].exterior).toEqual([[0, 0], [10, 0], [10, 10], [0, 10]]);
  });

  it("is null when nothing with an area is left", () => {
    expect(normalizeGeometry(poly([[[650, 10], [700, 10], [690, 50]]]), W, H)).toBeNull();
    expect(normalizeGeometry(poly([[[1, 1], [1, 1], [1, 1]]]), W, H)).toBeNull();
  });

  it("leaves a self-crossing outline to the server, which repairs it", () => {
    const bowtie = poly([[[0, 0], [10, 10], [10, 0], [0, 10]]]);
    expect(normalizeGeometry(bowtie, W, H)).toBe(bowtie);
  });

  it("never leaves a point outside the image or a repeated point (random outlines)", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let k = 0; k < 300; k++) {
      const ring: Ring = Array.from({ length: 3 + Math.floor(rnd() * 8) }, () => [Math.round(rnd() * 800 - 80), Math.round(rnd() * 640 - 80)]);
      const out = normalizeRing(ring, W, H);
      if (!out) continue;
      expect(out.length).toBeGreaterThanOrEqual(3);
      out.forEach((p, i) => {
        expect(p[0] >= 0 && p[0] <= W && p[1] >= 0 && p[1] <= H).toBe(true);
        const q = out[(i + 1) % out.length];
        expect(p[0] === q[0] && p[1] === q[1]).toBe(false);
      });
      // Idempotent: a normalised ring comes back as it is.
      expect(normalizeRing(out, W, H)).toBe(out);
    }
  });
});

describe("normalizeGeometry for masks", () => {
  it("returns the very same mask when it has the image's size and is not empty", () => {
    const m = rectMask(W, H, 10, 10, 20, 20);
    expect(normalizeGeometry(m, W, H)).toBe(m);
  });

  it("is null for an empty mask", () => {
    expect(normalizeGeometry(rectMask(W, H, 0, 0, 0, 0), W, H)).toBeNull();
  });

  it("crops a mask larger than the image to it", () => {
    const out = normalizeGeometry(rectMask(W + 20, H + 10, 630, 470, 650, 490), W, H) as MaskGeometry;
    expect(out.rle.size).toEqual([H, W]);
    expect(rleArea(out.rle)).toBe(100);
    expect(decodeRLE(out.rle).data[479 * W + 639]).toBe(1);
  });
});
