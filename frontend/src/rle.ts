/**
 * COCO RLE codec compatible with pycocotools' compressed string format (rleToString /
 * rleFrString in maskApi.c), plus the bitmap types the mask tools and renderer use. No DOM.
 *
 * Runs are column-major (Fortran order), starting with a run of zeros. Bitmaps in the editor are
 * row-major (like canvas ImageData), so encode/decode transpose on the fly.
 */
import type { BBox, RLE } from "./geometry";

/** A full-image row-major bitmap: data[y * width + x] is 0 or 1. */
export interface Bitmap {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A bitmap cropped to its bounding box inside an image of width x height. */
export interface CroppedMask {
  width: number; // image width
  height: number; // image height
  x0: number;
  y0: number;
  w: number;
  h: number;
  data: Uint8Array; // row-major, w * h
  area: number;
}

/** pycocotools rleToString: delta-code counts[i] against counts[i-2] (i > 2), 5-bit LEB-like chars. */
export function countsToString(counts: ArrayLike<number>): string {
  const chars: number[] = [];
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f; // two's complement low bits are right for negative deltas too
      // Floor division keeps the arithmetic shift exact beyond 32 bits (huge images).
      x = Math.floor(x / 32);
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars.push(c + 48);
    }
  }
  return fromCharCodes(chars);
}

/** String.fromCharCode in chunks: spreading a huge array would overflow the call stack. */
function fromCharCodes(chars: number[]): string {
  let s = "";
  for (let i = 0; i < chars.length; i += 8192) s += String.fromCharCode(...chars.slice(i, i + 8192));
  return s;
}

/** pycocotools rleFrString. */
export function stringToCounts(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign-extend
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** Decode a COCO RLE into a full row-major bitmap. */
export function decodeRLE(rle: RLE): Bitmap {
  const [h, w] = rle.size;
  const data = new Uint8Array(w * h);
  const counts = stringToCounts(rle.counts);
  let idx = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (i % 2 === 1) {
      // Column-major run [idx, idx + n): walk it column by column.
      let pos = idx;
      const end = idx + n;
      while (pos < end) {
        const x = Math.floor(pos / h);
        let y = pos - x * h;
        const stop = Math.min(end, (x + 1) * h);
        for (; pos < stop; pos++, y++) data[y * w + x] = 1;
      }
    }
    idx += n;
  }
  return { width: w, height: h, data };
}

/** Bounding box (inclusive pixel indices) of the set pixels, or null when empty. */
export function bitmapBBox(bm: Bitmap, within?: BBox): BBox | null {
  const { width: w, data } = bm;
  const x0 = within ? Math.max(0, Math.floor(within.minX)) : 0;
  const y0 = within ? Math.max(0, Math.floor(within.minY)) : 0;
  const x1 = within ? Math.min(bm.width - 1, Math.ceil(within.maxX)) : bm.width - 1;
  const y1 = within ? Math.min(bm.height - 1, Math.ceil(within.maxY)) : bm.height - 1;
  let minX = Infinity, minY = Infinity, maxX = -1, maxY = -1;
  for (let y = y0; y <= y1; y++) {
    const row = y * w;
    for (let x = x0; x <= x1; x++) {
      if (data[row + x]) {
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        maxY = y;
      }
    }
  }
  return maxX < 0 ? null : { minX, minY, maxX, maxY };
}

export function cropBitmap(bm: Bitmap, b: BBox | null): CroppedMask {
  if (!b) return { width: bm.width, height: bm.height, x0: 0, y0: 0, w: 0, h: 0, data: new Uint8Array(0), area: 0 };
  const w = b.maxX - b.minX + 1, h = b.maxY - b.minY + 1;
  const data = new Uint8Array(w * h);
  let area = 0;
  for (let y = 0; y < h; y++) {
    const src = (y + b.minY) * bm.width + b.minX;
    for (let x = 0; x < w; x++) {
      const v = bm.data[src + x];
      data[y * w + x] = v;
      area += v;
    }
  }
  return { width: bm.width, height: bm.height, x0: b.minX, y0: b.minY, w, h, data, area };
}

/**
 * Decode straight to the cropped form the renderer and hit tester keep per mask object. The bbox
 * comes from the runs first, so a small object on a huge image never allocates a full bitmap.
 */
export function decodeRLECropped(rle: RLE): CroppedMask {
  const [h, w] = rle.size;
  const counts = stringToCounts(rle.counts);
  let minX = Infinity, minY = Infinity, maxX = -1, maxY = -1;
  let idx = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (i % 2 === 1 && n > 0) {
      const c0 = Math.floor(idx / h), c1 = Math.floor((idx + n - 1) / h);
      minX = Math.min(minX, c0);
      maxX = Math.max(maxX, c1);
      if (c0 !== c1) {
        minY = 0; // the run wraps through a column boundary, covering the top and bottom rows
        maxY = h - 1;
      } else {
        minY = Math.min(minY, idx - c0 * h);
        maxY = Math.max(maxY, idx + n - 1 - c0 * h);
      }
    }
    idx += n;
  }
  if (maxX < 0) return { width: w, height: h, x0: 0, y0: 0, w: 0, h: 0, data: new Uint8Array(0), area: 0 };
  const cw = maxX - minX + 1, ch = maxY - minY + 1;
  const data = new Uint8Array(cw * ch);
  let area = 0;
  idx = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (i % 2 === 1) {
      area += n;
      for (let pos = idx; pos < idx + n; pos++) {
        const x = Math.floor(pos / h);
        data[(pos - x * h - minY) * cw + (x - minX)] = 1;
      }
    }
    idx += n;
  }
  return { width: w, height: h, x0: minX, y0: minY, w: cw, h: ch, data, area };
}

/**
 * Encode a row-major mask given as a crop (x0, y0, w, h) of a width x height image. Only the crop
 * is scanned; the zero columns/rows around it are added arithmetically, so committing a brush
 * stroke on a 4000x3000 image costs O(object bbox), not O(image).
 */
export function encodeCrop(
  width: number,
  height: number,
  x0: number,
  y0: number,
  w: number,
  h: number,
  pixel: (x: number, y: number) => number,
): RLE {
  const counts: number[] = [];
  let cur = 0;
  let run = 0;
  const zeros = (n: number) => {
    if (n <= 0) return;
    if (cur === 0) run += n;
    else {
      counts.push(run);
      cur = 0;
      run = n;
    }
  };
  zeros(x0 * height);
  for (let x = x0; x < x0 + w; x++) {
    zeros(y0);
    for (let y = y0; y < y0 + h; y++) {
      const v = pixel(x, y) ? 1 : 0;
      if (v === cur) run++;
      else {
        counts.push(run);
        cur = v;
        run = 1;
      }
    }
    zeros(height - y0 - h);
  }
  zeros((width - x0 - w) * height);
  counts.push(run);
  return { size: [height, width], counts: countsToString(counts) };
}

export function encodeBitmap(bm: Bitmap, within?: BBox): RLE {
  const b = within ?? { minX: 0, minY: 0, maxX: bm.width - 1, maxY: bm.height - 1 };
  const x0 = Math.max(0, b.minX), y0 = Math.max(0, b.minY);
  const x1 = Math.min(bm.width - 1, b.maxX), y1 = Math.min(bm.height - 1, b.maxY);
  if (x1 < x0 || y1 < y0) return encodeCrop(bm.width, bm.height, 0, 0, 0, 0, () => 0);
  const { data, width } = bm;
  return encodeCrop(bm.width, bm.height, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (x, y) => data[y * width + x]);
}

export function rleArea(rle: RLE): number {
  const counts = stringToCounts(rle.counts);
  let a = 0;
  for (let i = 1; i < counts.length; i += 2) a += counts[i];
  return a;
}

export function maskContains(m: CroppedMask, x: number, y: number): boolean {
  const px = Math.floor(x) - m.x0, py = Math.floor(y) - m.y0;
  if (px < 0 || py < 0 || px >= m.w || py >= m.h) return false;
  return m.data[py * m.w + px] === 1;
}

/** Shift a cropped mask by whole pixels (moving a mask object); pixels leaving the image are cut. */
export function translateMaskRLE(rle: RLE, dx: number, dy: number): RLE {
  const m = decodeRLECropped(rle);
  const ix = Math.round(dx), iy = Math.round(dy);
  const x0 = Math.max(0, m.x0 + ix), y0 = Math.max(0, m.y0 + iy);
  const x1 = Math.min(m.width, m.x0 + ix + m.w), y1 = Math.min(m.height, m.y0 + iy + m.h);
  if (x1 <= x0 || y1 <= y0) return encodeCrop(m.width, m.height, 0, 0, 0, 0, () => 0);
  return encodeCrop(m.width, m.height, x0, y0, x1 - x0, y1 - y0, (x, y) => m.data[(y - iy - m.y0) * m.w + (x - ix - m.x0)]);
}
