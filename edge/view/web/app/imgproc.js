// Frame pre- and post-processing on typed arrays: the browser twin of edge/model/preprocess.py and
// edge/model/postprocess.py (same steps, same order, same constants). No per-pixel canvas calls:
// every function reads and writes flat typed arrays, and reuses buffers the caller owns.
//
//   RGBA frame -> gray (OpenCV's BGR2GRAY weights) -> ROI crop -> bilinear (INTER_LINEAR_EXACT)
//   to 2x the input -> exact 2x box average (= edge's resize_gray) -> x = pixel * scale + offset
//   probability map -> > threshold -> drop 8-connected components < min_area -> presence gate
//   -> bilinear (INTER_LINEAR_EXACT) to the ROI/frame size, re-thresholded at half -> placed
//   into the frame
// Every resize is integer arithmetic, as in edge, so the page computes the same bits as
// edge-run on x86 and arm64.

// OpenCV's fixed-point RGB->gray weights (0.299, 0.587, 0.114 in 15 bits, as OpenCV 5's
// cv2.cvtColor BGR2GRAY computes them): the same gray values as edge-run.
const GRAY_R = 9798, GRAY_G = 19235, GRAY_B = 3735, GRAY_SHIFT = 15, GRAY_HALF = 1 << 14;
export const MASK_ON = 255; // frame-size mask value for nerve pixels
const HALF = 127; // the resized 0/255 mask is nerve above this (cv2.threshold(..., 127, ...))

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

// OpenCV's INTER_LINEAR_EXACT on 8-bit images, bit for bit (its resize_bitExact, the kernel
// edge uses because it gives the same bits on every instruction set). Weights are 8-bit fixed
// point (OpenCV's ufixedpoint16): the source position f = (d + 0.5) * (1 / (dst / src)) - 0.5 in
// doubles, w1 = round-half-even((f - floor(f)) * 256), w0 = 256 - w1. A destination left of the
// first source pixel or right of the last takes that pixel alone (w0 = 256, w1 = 0). The
// horizontal pass sums a * w0 + b * w1 (8 fractional bits), the vertical pass
// (h0 * v0 + h1 * v1 + 32768) >> 16: every step an integer, no saturation needed.
const ONE = 256; // 1.0 in 8-bit fixed point
const ROUND = 1 << 15; // half of the 16 fractional bits after the vertical pass

function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Source indices and fixed-point weights of each destination column or row. */
function linearTaps(srcSize, dstSize) {
  const idx = new Int32Array(dstSize);
  const next = new Int32Array(dstSize); // the second tap (= idx where the weight is 0)
  const w0 = new Int32Array(dstSize), w1 = new Int32Array(dstSize);
  const scale = 1 / (dstSize / srcSize);
  for (let d = 0; d < dstSize; d++) {
    const f = scale * (d + 0.5) - 0.5;
    const i = Math.floor(f);
    if (i >= 0 && i < srcSize - 1) {
      idx[d] = i; next[d] = i + 1;
      w1[d] = roundHalfEven((f - i) * ONE);
      w0[d] = ONE - w1[d];
    } else {
      idx[d] = next[d] = i < 0 ? 0 : srcSize - 1;
      w0[d] = ONE; w1[d] = 0;
    }
  }
  return {idx, next, w0, w1};
}

const tapCache = new Map();
function taps(srcSize, dstSize) {
  const key = `${srcSize}>${dstSize}`;
  if (!tapCache.has(key)) tapCache.set(key, linearTaps(srcSize, dstSize));
  return tapCache.get(key);
}

/** One output pixel of the bilinear resize (see above): 0..255. */
function lerp2(src, r0, r1, tx, x, b0, b1) {
  const i = tx.idx[x], i1 = tx.next[x], a0 = tx.w0[x], a1 = tx.w1[x];
  const h0 = src[r0 + i] * a0 + src[r0 + i1] * a1;
  const h1 = src[r1 + i] * a0 + src[r1 + i1] * a1;
  return (h0 * b0 + h1 * b1 + ROUND) >>> 16;
}

/** Bilinear resize (INTER_LINEAR_EXACT) of a whole sw x sh image to dw x dh: the browser twin
 *  of cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR_EXACT). */
export function resizeLinearExact(src, sw, sh, dw, dh, out) {
  const tx = taps(sw, dw), ty = taps(sh, dh);
  for (let y = 0; y < dh; y++) {
    const r0 = ty.idx[y] * sw, r1 = ty.next[y] * sw, b0 = ty.w0[y], b1 = ty.w1[y];
    const row = y * dw;
    for (let x = 0; x < dw; x++) out[row + x] = lerp2(src, r0, r1, tx, x, b0, b1);
  }
  return out;
}

/** Gray ROI (sw x sh) -> model-size gray (w x h): bilinear (INTER_LINEAR_EXACT) to 2w x 2h,
 *  then an exact 2x box average: edge.model.preprocess.resize_gray, bit for bit. */
export function resizeGray(src, sw, sh, w, h, work, out) {
  if (sw === w && sh === h) { out.set(src.subarray(0, w * h)); return out; }
  const dw = 2 * w;
  resizeLinearExact(src, sw, sh, dw, 2 * h, work);
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
  while (first <= last && t.next[first] < s0) first++;
  while (last >= first && t.idx[last] > s1) last--;
  return [first, last];
}

let mask255 = new Uint8Array(0); // the model-size mask as 0/255, what edge resizes

/** Model-size 0/1 mask -> frame-size 0/255 mask in `out` (placed into the ROI); nerve pixels.
 *  Only the rectangle the mask can reach is resized: the cost follows the nerve, not the frame.
 *  `reached` (4 ints) gets that rectangle in frame pixels [x0, y0, x1, y1] (empty: x1 < x0). */
export function toFrame(mask01, mw, mh, fw, fh, roi, out, reached = new Int32Array(4)) {
  out.fill(0);
  reached.set([0, 0, -1, -1]);
  const box = bbox(mask01, mw, mh);
  if (box === null) return 0;
  const [x0, y0, w, h] = roi;
  if (mask255.length !== mw * mh) mask255 = new Uint8Array(mw * mh);
  for (let i = 0; i < mask255.length; i++) mask255[i] = mask01[i] * MASK_ON;
  const tx = taps(mw, w), ty = taps(mh, h);
  const [dx0, dx1] = reach(tx, box[0], box[2]);
  const [dy0, dy1] = reach(ty, box[1], box[3]);
  reached.set([x0 + dx0, y0 + dy0, x0 + dx1, y0 + dy1]);
  let area = 0;
  for (let y = dy0; y <= dy1; y++) {
    const r0 = ty.idx[y] * mw, r1 = ty.next[y] * mw, b0 = ty.w0[y], b1 = ty.w1[y];
    const row = (y0 + y) * fw + x0;
    for (let x = dx0; x <= dx1; x++) {
      if (lerp2(mask255, r0, r1, tx, x, b0, b1) > HALF) {
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

/** "#rrggbb" -> [r, g, b]. */
export function rgb(color) {
  return [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
}

let shown = new Uint8Array(0); // one class's pixels in the class-id map (zero between uses)

/** Each detected class in its colour where the class-id map shows it (safety classes win
 *  where structures overlap, as in edge-run's overlay): every pixel is blended once, with
 *  opacity ``alpha``. */
export function drawClasses(rgba, result, w, h, alpha) {
  if (shown.length !== w * h) shown = new Uint8Array(w * h);
  for (const c of result.classes) {
    if (!c.detected) continue;
    const [x0, y0, x1, y1] = c.box;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) shown[y * w + x] = result.classMap[y * w + x] === c.id;
    }
    drawMask(rgba, shown, w, h, alpha, rgb(c.color), c.box);
    for (let y = y0; y <= y1; y++) shown.fill(0, y * w + x0, y * w + x1 + 1);
  }
}
