"""The page's pre/post-processing (edge/view/web/app/imgproc.js, run in headless Chromium) against
edge's own (edge/model/preprocess.py, edge/model/postprocess.py) on the same arrays: ROI crop, gray,
resize, component filtering by min area, and the resize back into the ROI. All bit for bit:
the page mirrors OpenCV's INTER_LINEAR_EXACT (integer) kernel, which edge uses, checked here
against cv2 on many random sizes, up and down, odd and one pixel wide."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
from web_support import app_page, needs_browser

from edge.model.postprocess import PostprocessConfig, binarize, to_frame
from edge.model.preprocess import PreprocessConfig, frame_to_gray_input

pytestmark = needs_browser
FRAME_HW = (420, 580)
ROI = (40, 30, 500, 360)  # x, y, w, h
MODEL_HW = (128, 176)
MIN_AREA = 20

RUN_JS = """
const [name, args, done] = arguments;
const dec = (b64, T) => { const b = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                          return new T(b.buffer); };
const enc = (a) => { const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength); let s = '';
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
  }
  return btoa(s); };
import('./imgproc.js').then((ip) => {
  const [fh, fw] = args.frame_hw, [mh, mw] = args.model_hw, roi = args.roi;
  if (name === 'resize') {  // many [sw, sh, dw, dh] cases, sources concatenated
    const src = dec(args.src, Uint8Array), outs = [];
    let off = 0;
    for (const [sw, sh, dw, dh] of args.cases) {
      const out = new Uint8Array(dw * dh);
      ip.resizeLinearExact(src.subarray(off, off + sw * sh), sw, sh, dw, dh, out);
      off += sw * sh;
      outs.push(enc(out));
    }
    done(outs);
  } else if (name === 'pre') {
    const rgba = dec(args.rgba, Uint8ClampedArray);
    const g = new Uint8Array(roi[2] * roi[3]), out = new Uint8Array(mh * mw);
    ip.grayROI(rgba, fw, roi, g);
    ip.resizeGray(g, roi[2], roi[3], mw, mh, new Uint8Array(4 * mh * mw), out);
    done(enc(out));
  } else {
    const m01 = ip.binarize(dec(args.prob, Float32Array), mw, mh, 0.5, args.min_area,
                            new Uint8Array(mh * mw), new Int32Array(mh * mw));
    const out = new Uint8Array(fh * fw);
    ip.toFrame(m01, mw, mh, fw, fh, roi, out);
    done([enc(m01), enc(out)]);
  }
}, (e) => done({error: String(e)}));
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with app_page(tmp_path_factory.mktemp("profile")) as driver:
        yield driver


def run_js(page, name: str, **args):
    got = page.execute_async_script(RUN_JS, name, {"frame_hw": list(FRAME_HW),
                                                   "model_hw": list(MODEL_HW),
                                                   "roi": list(ROI), **args})
    assert not isinstance(got, dict), got
    return got


def unpack(b64: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(shape)


def color_frame() -> np.ndarray:
    """A BGR frame with texture in every channel (so the gray weights matter)."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (*FRAME_HW, 3), dtype=np.uint8), (0, 0), 3)
    yy, xx = np.mgrid[: FRAME_HW[0], : FRAME_HW[1]]
    base[..., 1] = np.clip(base[..., 1].astype(int) + (xx // 3) % 120, 0, 255)
    return base


def page_gray_input(page, bgr: np.ndarray) -> np.ndarray:
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    return unpack(run_js(page, "pre", rgba=base64.b64encode(rgba.tobytes()).decode()), MODEL_HW)


def test_roi_and_resize_match_edge_bit_for_bit(page):
    gray = cv2.cvtColor(color_frame(), cv2.COLOR_BGR2GRAY)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)  # R = G = B: gray weights play no part
    want = frame_to_gray_input(bgr, PreprocessConfig(input_hw=MODEL_HW, roi=ROI))
    np.testing.assert_array_equal(page_gray_input(page, bgr), want)


RANDOM_CASES = 400
EDGE_CASES = [(1, 1, 7, 5), (1, 9, 4, 1), (9, 1, 1, 4), (2, 2, 1, 1), (3, 3, 6, 6), (7, 5, 7, 5),
              (580, 420, 352, 256), (500, 360, 352, 256), (176, 128, 580, 420),
              (176, 128, 500, 360), (176, 128, 88, 64), (129, 97, 31, 17)]


def resize_cases(rng) -> list[tuple[int, int, int, int]]:
    """(sw, sh, dw, dh): small and large, up and down, odd sizes and 1-pixel edges."""
    cases = list(EDGE_CASES)
    for i in range(RANDOM_CASES):
        sw, sh, dw, dh = (int(v) for v in rng.integers(1, 64, 4))
        if i % 4 == 0:
            sw, sh = (int(v) for v in rng.integers(1, 600, 2))
        if i % 7 == 0:
            dw, dh = (int(v) for v in rng.integers(1, 600, 2))
        cases.append((sw, sh, dw, dh))
    return cases


def test_resize_matches_cv2_linear_exact_on_random_sizes(page):
    rng = np.random.default_rng(24)
    cases = resize_cases(rng)
    sources = []
    for k, (sw, sh, _, _) in enumerate(cases):
        src = rng.integers(0, 256, (sh, sw), dtype=np.uint8)
        sources.append(src if k % 3 else (src > 127).astype(np.uint8) * 255)  # masks too
    blob = base64.b64encode(b"".join(s.tobytes() for s in sources)).decode()
    got = run_js(page, "resize", src=blob, cases=[list(c) for c in cases])
    for (sw, sh, dw, dh), src, out in zip(cases, sources, got, strict=True):
        want = cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR_EXACT)
        np.testing.assert_array_equal(unpack(out, (dh, dw)), want,
                                      err_msg=f"{sw}x{sh} -> {dw}x{dh}")


@pytest.mark.parametrize("frame_hw, roi", [((420, 580), None), ((421, 579), (3, 5, 501, 363)),
                                           ((97, 133), (0, 1, 133, 96)), ((40, 50), None)])
def test_preprocess_matches_edge_at_other_sizes(page, frame_hw, roi):
    """Odd frame and ROI sizes, and frames smaller than the model input (bilinear up)."""
    rng = np.random.default_rng(sum(frame_hw))
    gray = cv2.GaussianBlur(rng.integers(0, 256, frame_hw, dtype=np.uint8), (0, 0), 1.5)
    roi = roi or (0, 0, frame_hw[1], frame_hw[0])
    want = frame_to_gray_input(gray, PreprocessConfig(input_hw=MODEL_HW, roi=roi))
    rgba = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGBA)
    got = run_js(page, "pre", rgba=base64.b64encode(rgba.tobytes()).decode(),
                 frame_hw=list(frame_hw), roi=list(roi))
    np.testing.assert_array_equal(unpack(got, MODEL_HW), want)


def test_color_to_gray_matches_edge(page):
    """OpenCV 5's 15-bit weights: exact here; an older OpenCV rounds a level differently."""
    bgr = color_frame()
    want = frame_to_gray_input(bgr, PreprocessConfig(input_hw=MODEL_HW, roi=ROI))
    diff = np.abs(page_gray_input(page, bgr).astype(int) - want)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99


def prob_map() -> np.ndarray:
    """Components of 1, 12, 19, 20 and ~300 pixels (min area 20 keeps the last two)."""
    prob = np.zeros(MODEL_HW, np.float32)
    prob[5, 5] = 0.9
    prob[10:13, 10:14] = 0.8
    prob[30:49, 30] = 0.7
    prob[30:50, 60] = 0.7
    cv2.ellipse(prob, (120, 80), (14, 7), 20, 0, 360, 0.95, -1)
    prob[80:82, 120:122] = 0.5  # at the threshold: off (edge uses p > threshold)
    return prob


@pytest.mark.parametrize("frame_hw, roi", [(FRAME_HW, ROI), ((421, 579), (3, 5, 501, 363)),
                                           ((97, 133), (0, 0, 133, 97))])
@pytest.mark.parametrize("min_area", [0, MIN_AREA])
def test_min_area_and_resize_into_roi_match_edge(page, min_area, frame_hw, roi):
    prob = prob_map()
    m01, frame = run_js(page, "post", prob=base64.b64encode(prob.tobytes()).decode(),
                        min_area=min_area, frame_hw=list(frame_hw), roi=list(roi))
    want01 = binarize(prob, PostprocessConfig(min_area=min_area))
    np.testing.assert_array_equal(unpack(m01, MODEL_HW), want01)
    got = unpack(frame, frame_hw)
    want = to_frame(want01, frame_hw, roi)
    assert not got[: roi[1]].any() and not got[:, : roi[0]].any(), "mask outside the ROI"
    np.testing.assert_array_equal(got, want)
