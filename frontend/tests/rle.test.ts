/** RLE codec tests against strings produced by pycocotools.mask.encode (tests/fixtures). */
import { describe, expect, it } from "vitest";
import fixtures from "./fixtures/pycocotools_rle.json";
import {
  countsToString,
  decodeRLE,
  decodeRLECropped,
  encodeBitmap,
  rleArea,
  stringToCounts,
  translateMaskRLE,
  type Bitmap,
} from "../src/rle";

interface Fixture {
  name: string;
  size: [number, number];
  counts: string;
  rows?: string[];
  fill?: number[][];
  area: number;
}

function bitmapOf(f: Fixture): Bitmap {
  const [h, w] = f.size;
  const data = new Uint8Array(w * h);
  if (f.rows) f.rows.forEach((row, y) => [...row].forEach((c, x) => (data[y * w + x] = c === "1" ? 1 : 0)));
  for (const [x0, y0, fw, fh, v] of f.fill ?? []) for (let y = y0; y < y0 + fh; y++) for (let x = x0; x < x0 + fw; x++) data[y * w + x] = v;
  return { width: w, height: h, data };
}

describe("COCO compressed RLE", () => {
  for (const f of fixtures.cases as Fixture[]) {
    it(`encodes ${f.name} exactly like pycocotools`, () => {
      expect(encodeBitmap(bitmapOf(f)).counts).toBe(f.counts);
    });
    it(`decodes ${f.name} and keeps the area`, () => {
      const bm = decodeRLE({ size: f.size, counts: f.counts });
      expect([...bm.data]).toEqual([...bitmapOf(f).data]);
      expect(rleArea({ size: f.size, counts: f.counts })).toBe(f.area);
    });
  }
  it("round-trips large and negative deltas", () => {
    const counts = [5, 100000, 3, 7, 2000000, 1, 0, 4];
    expect(stringToCounts(countsToString(counts))).toEqual(counts);
  });
  it("encoding within a bbox equals encoding the full bitmap", () => {
    const f = (fixtures.cases as Fixture[]).find((c) => c.name === "big_hole")!;
    const bm = bitmapOf(f);
    expect(encodeBitmap(bm, { minX: 90, minY: 40, maxX: 390, maxY: 260 }).counts).toBe(f.counts);
  });
  it("crops to the object's bbox and translates by whole pixels", () => {
    const f = (fixtures.cases as Fixture[]).find((c) => c.name === "small_rect")!;
    const m = decodeRLECropped({ size: f.size, counts: f.counts });
    expect([m.x0, m.y0, m.w, m.h, m.area]).toEqual([1, 1, 3, 2, 6]);
    const moved = decodeRLECropped(translateMaskRLE({ size: f.size, counts: f.counts }, 1, -1));
    expect([moved.x0, moved.y0, moved.w, moved.h, moved.area]).toEqual([2, 0, 3, 2, 6]);
    const cut = decodeRLECropped(translateMaskRLE({ size: f.size, counts: f.counts }, 3, 0));
    expect(cut.area).toBe(2); // only the column still inside the 5-px-wide image survives
  });
});

describe("cropped decoding", () => {
  for (const f of fixtures.cases as Fixture[]) {
    it(`${f.name}: crop decode matches the full decode inside its bbox`, () => {
      const rle = { size: f.size, counts: f.counts };
      const full = decodeRLE(rle);
      const m = decodeRLECropped(rle);
      expect(m.area).toBe(f.area);
      let inside = 0;
      for (let y = 0; y < full.height; y++)
        for (let x = 0; x < full.width; x++) {
          const v = full.data[y * full.width + x];
          const inCrop = x >= m.x0 && y >= m.y0 && x < m.x0 + m.w && y < m.y0 + m.h;
          if (v) expect(inCrop).toBe(true);
          if (inCrop) inside += m.data[(y - m.y0) * m.w + (x - m.x0)] === v ? 1 : 0;
        }
      expect(inside).toBe(m.w * m.h);
    });
  }
});
