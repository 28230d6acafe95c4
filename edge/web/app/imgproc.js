// Frame pre- and post-processing on typed arrays: the browser twin of edge/preprocess.py and
// edge/postprocess.py (same steps, same order, same constants). No per-pixel canvas calls:
// every function reads and writes flat typed arrays, and reuses buffers the caller owns.
//
//   RGBA frame -> gray (OpenCV's BGR2GRAY weights) -> ROI crop -> bilinear to 2x the input
//   -> exact 2x box average (= edge's resize_gray) -> x = pixel * scale + offset
//   probability map -> > threshold -> drop 8-connected components < min_area -> presence gate
//   -> bilinear to the ROI/frame size, re-thresholded at half -> placed into the frame

// OpenCV's fixed-point RGB->gray weights (sum 1 << 14): the same gray values as cv2.cvtColor.
const GRAY_R = 4899, GRAY_G = 9617, GRAY_B = 1868, GRAY_SHIFT = 14, GRAY_HALF = 1 << 13;
export const MASK_ON = 255; // frame-size mask value for nerve pixels
const HALF = 127.5; // re-threshold of the resized 0/255 mask (cv2 rounds, then > 127)

/** RGBA bytes of a width x height frame -> gray bytes of the ROI [x, y, w, h] (or the frame).
 *  Reads each pixel as one little-endian 32-bit word (R in the low byte): one load, not four. */
export function grayROI(rgba, width, roi, out) {
  const [x0, y0, w, h] = roi;
  const px = new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.length >> 2);
  for (let y = 0; y < h; y++) {
    let s = (y0 + y) * width + x0;
    const end = y * w + w;
    for (let d = y * w; d < end; d++, s++) {
      const p = px[s];
      out[d] = ((p & 255) * GRAY_R + ((p >>> 8) & 255) * GRAY_G + ((p >>> 16) & 255) * GRAY_B +
        GRAY_HALF) >>> GRAY_SHIFT;
    }
  }
  return out;
}

/** Source index and weight of each destination column/row, half-pixel centres (cv2 INTER_LINEAR). */
function linearTaps(srcSize, dstSize) {
  const idx = new Int32Array(dstSize);
  const next = new Int32Array(dstSize); // the second tap, clamped at the edge
  const frac = new Float32Array(dstSize);
  const scale = srcSize / dstSize;
  for (let d = 0; d < dstSize; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let i = Math.floor(f);
    f -= i;
    if (i < 0) { i = 0; f = 0; }
    if (i >= srcSize - 1) { i = srcSize - 1; f = 0; }
    idx[d] = i;
    next[d] = Math.min(i + 1, srcSize - 1);
    frac[d] = f;
  }
  return {idx, next, frac};
}

const tapCache = new Map();
function taps(srcSize, dstSize) {
  const key = `${srcSize}>${dstSize}`;
  if (!tapCache.has(key)) tapCache.set(key, linearTaps(srcSize, dstSize));
  return tapCache.get(key);
}

/** Bilinear sample between rows r0/r1 and columns i/i1 of a flat image. */
function lerp2(src, r0, r1, i, i1, fx, fy) {
  const top = src[r0 + i] + (src[r0 + i1] - src[r0 + i]) * fx;
  const bot = src[r1 + i] + (src[r1 + i1] - src[r1 + i]) * fx;
  return top + (bot - top) * fy;
}

/** Gray ROI (sw x sh) -> model-size gray (w x h): bilinear to 2w x 2h (rounded to bytes in
 *  `work`), then an exact 2x box average: edge.preprocess.resize_gray. */
export function resizeGray(src, sw, sh, w, h, work, out) {
  if (sw === w && sh === h) { out.set(src.subarray(0, w * h)); return out; }
  const dw = 2 * w, dh = 2 * h;
  const tx = taps(sw, dw), ty = taps(sh, dh);
  for (let y = 0; y < dh; y++) {
    const r0 = ty.idx[y] * sw, r1 = ty.next[y] * sw, fy = ty.frac[y];
    const row = y * dw;
    for (let x = 0; x < dw; x++) {
      const i = tx.idx[x], i1 = tx.next[x], fx = tx.frac[x];
      // + 0.5: a Uint8Array truncates, so this rounds half up, like OpenCV's fixed point
      work[row + x] = lerp2(src, r0, r1, i, i1, fx, fy) + 0.5;
    }
  }
  for (let y = 0; y < h; y++) {
    const a = 2 * y * dw, b = a + dw;
    for (let x = 0; x < w; x++) {
      const s = 2 * x;
      out[y * w + x] = (work[a + s] + work[a + s + 1] + work[b + s] + work[b + s + 1] + 2) >> 2;
    }
  }
  return out;
}

/** Model-size gray -> float input, x = pixel * scale + offset (float32, like numpy). */
export function normalize(gray, scale, offset, out) {
  const s = Math.fround(scale), o = Math.fround(offset);
  for (let i = 0; i < gray.length; i++) out[i] = Math.fround(gray[i] * s) + o;
  return out;
}

/** prob > threshold, then components (8-connected) under minArea pixels dropped. 0/1 bytes. */
export function binarize(prob, w, h, threshold, minArea, out, stack) {
  const n = w * h;
  let any = false;
  for (let i = 0; i < n; i++) { out[i] = prob[i] > threshold ? 1 : 0; any ||= out[i] === 1; }
  if (minArea > 0 && any) dropSmall(out, w, h, minArea, stack);
  return out;
}

// Flood-fills each component (marking it 2), then clears it (0) or keeps it (1) by its area.
function dropSmall(mask, w, h, minArea, stack) {
  const n = w * h;
  const members = new Int32Array(n);
  for (let start = 0; start < n; start++) {
    if (mask[start] !== 1) continue;
    let top = 0, count = 0;
    stack[top++] = start;
    mask[start] = 2;
    while (top > 0) {
      const p = stack[--top];
      members[count++] = p;
      const px = p % w, py = (p - px) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const y = py + dy;
        if (y < 0 || y >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const x = px + dx;
          if (x < 0 || x >= w) continue;
          const q = y * w + x;
          if (mask[q] === 1) { mask[q] = 2; stack[top++] = q; }
        }
      }
    }
    const keep = count >= minArea ? 3 : 0; // 3 = kept, done; restored to 1 below
    for (let k = 0; k < count; k++) mask[members[k]] = keep;
  }
  for (let i = 0; i < n; i++) if (mask[i] === 3) mask[i] = 1;
}

/** Bounding box [x0, y0, x1, y1] (inclusive) of the nonzero pixels, or null when none. */
function bbox(mask, w, h) {
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (!mask[row + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? null : [x0, y0, x1, y1];
}

/** Destination indices [first, last] whose bilinear taps can touch source [s0, s1]. */
function reach(t, s0, s1) {
  let first = 0, last = t.idx.length - 1;
  while (first <= last && t.idx[first] + 1 < s0) first++;
  while (last >= first && t.idx[last] > s1) last--;
  return [first, last];
}

/** Model-size 0/1 mask -> frame-size 0/255 mask in `out` (placed into the ROI); nerve pixels.
 *  Only the rectangle the mask can reach is resized: the cost follows the nerve, not the frame.
 *  `reached` (4 ints) gets that rectangle in frame pixels [x0, y0, x1, y1] (empty: x1 < x0). */
export function toFrame(mask01, mw, mh, fw, fh, roi, out, reached = new Int32Array(4)) {
  out.fill(0);
  reached.set([0, 0, -1, -1]);
  const box = bbox(mask01, mw, mh);
  if (box === null) return 0;
  const [x0, y0, w, h] = roi;
  const tx = taps(mw, w), ty = taps(mh, h);
  const [dx0, dx1] = reach(tx, box[0], box[2]);
  const [dy0, dy1] = reach(ty, box[1], box[3]);
  reached.set([x0 + dx0, y0 + dy0, x0 + dx1, y0 + dy1]);
  let area = 0;
  for (let y = dy0; y <= dy1; y++) {
    const r0 = ty.idx[y] * mw, r1 = ty.next[y] * mw, fy = ty.frac[y];
    const row = (y0 + y) * fw + x0;
    for (let x = dx0; x <= dx1; x++) {
      const i = tx.idx[x], i1 = tx.next[x], fx = tx.frac[x];
      if (lerp2(mask01, r0, r1, i, i1, fx, fy) * MASK_ON >= HALF) {
        out[row + x] = MASK_ON;
        area++;
      }
    }
  }
  return area;
}

/** Blend the mask into the RGBA frame in place: translucent fill and a solid outline. Only
 *  the rectangle `box` [x0, y0, x1, y1] that holds every mask pixel is visited. */
export function drawMask(rgba, mask, fw, fh, alpha, color, box = [0, 0, fw - 1, fh - 1]) {
  const [cr, cg, cb] = color;
  const keep = 1 - alpha;
  for (let y = box[1]; y <= box[3]; y++) {
    for (let x = box[0]; x <= box[2]; x++) {
      const i = y * fw + x;
      if (!mask[i]) continue;
      const s = i * 4;
      const edge = x === 0 || x === fw - 1 || y === 0 || y === fh - 1 || !mask[i - 1] ||
        !mask[i + 1] || !mask[i - fw] || !mask[i + fw];
      if (edge) {
        rgba[s] = cr; rgba[s + 1] = cg; rgba[s + 2] = cb;
      } else {
        rgba[s] = rgba[s] * keep + cr * alpha;
        rgba[s + 1] = rgba[s + 1] * keep + cg * alpha;
        rgba[s + 2] = rgba[s + 2] * keep + cb * alpha;
      }
    }
  }
}
