// The engine: loads LiteRT.js (served by the kit, never a CDN), the web model and its sidecar,
// picks the fastest backend the browser offers, and turns one RGBA frame into a mask at the
// frame's own size with exactly the steps edge-run uses (see imgproc.js). A multi-class model
// (a "classes" list in its sidecar, a 1xHxWxC output) gets one mask per class, each decided
// like the nerve with the class's own threshold / min area, as edge.model.postprocess does.
import * as litert from './runtime/litert.js';
import * as ip from './imgproc.js';

const WASM_DIR = new URL('./runtime/wasm/', import.meta.url).href;
const MAX_THREADS = 4; // XNNPACK gains little past 4 threads on a 0.13 GMAC model
export const BACKENDS = ['webgpu', 'wasm-threads', 'wasm']; // preference order
// Safety rule (edge.model.postprocess.CENTRE_BAND_FRAC): a safety structure within this fraction of
// the image width of the image's vertical centre line raises the warning. Not needle tracking.
export const CENTRE_BAND_FRAC = 0.10;
const NERVE_NAME = 'nerve'; // the class behind the nerve-only fields (detected, areaPx, mask)

/** Which backends this browser can run, in preference order. */
async function available() {
  const out = [];
  if (navigator.gpu) {
    try {
      if (await navigator.gpu.requestAdapter()) out.push('webgpu');
    } catch { /* no adapter: skip WebGPU */ }
  }
  if (self.crossOriginIsolated && await litert.supportsFeature('threads') &&
      await litert.supportsFeature('relaxedSimd')) out.push('wasm-threads');
  out.push('wasm');
  return out;
}

function threadCount(requested) {
  const cores = navigator.hardwareConcurrency || 1;
  return Math.max(1, Math.min(requested || Math.min(cores, MAX_THREADS), cores));
}

/** Load the runtime and compile the model on one backend; throws when it cannot. */
async function compileOn(backend, modelBytes, threads) {
  await litert.loadLiteRt(WASM_DIR, {threads: backend === 'wasm-threads'});
  const options = backend === 'webgpu' ? {accelerator: 'webgpu'} :
    {accelerator: 'wasm', cpuOptions: {numThreads: backend === 'wasm-threads' ? threads : 1}};
  const model = await litert.loadAndCompile(modelBytes, options);
  if (backend === 'webgpu' && !model.isFullyAccelerated) {
    model.delete();
    throw new Error('WebGPU cannot run every op of this model');
  }
  return model;
}

function label(backend, threads) {
  if (backend === 'webgpu') return 'WebGPU';
  if (backend === 'wasm-threads') return `WASM threaded (${threads} threads)`;
  return 'WASM (1 thread)';
}

/** The model's settings as edge-run resolved them (model/nerve.json, written by
 *  edge.model.settings via edge/view/web/site.py): used as they are, no defaults or rules here.
 *  Only the page's own ?roi= wins, as edge-run's --roi does. */
function settings(s, roiOverride) {
  const [h, w] = s.input_hw;
  const classes = s.classes.map((c) => ({
    id: c.id, name: c.name, color: c.color, safety: c.safety, threshold: c.threshold,
    minArea: c.min_area,
  }));
  const nerve = classes[s.nerve_index];
  return {
    h, w, scale: s.scale, offset: s.offset, threshold: nerve.threshold, minArea: nerve.minArea,
    presenceThreshold: s.presence_threshold, roi: roiOverride || s.roi, name: s.name,
    version: s.version, nerveColor: nerve.color,
    // one class: the nerve-only outputs (0/255 mask, no class map), as edge-run writes them
    classes: classes.length > 1 ? classes : null,
  };
}

/** Any mask pixel within CENTRE_BAND_FRAC of the ROI's width of its vertical centre line. */
function nearCentre(mask, fw, roi, box) {
  const [x, , w] = roi;
  const centre = x + w / 2, band = CENTRE_BAND_FRAC * w;
  const lo = Math.max(Math.floor(centre - band), box[0]);
  const hi = Math.min(Math.ceil(centre + band) - 1, box[2]);
  for (let yy = box[1]; yy <= box[3]; yy++) {
    for (let xx = lo; xx <= hi; xx++) if (mask[yy * fw + xx]) return true;
  }
  return false;
}

export class Engine {
  /** options: {backend: 'auto'|name, threads, roi: [x,y,w,h]|null, modelUrl, metaUrl} */
  static async create(options = {}) {
    const base = new URL('./model/', import.meta.url);
    const [meta, modelBytes] = await Promise.all([
      fetch(options.metaUrl || new URL('nerve.json', base)).then(okJson),
      fetch(options.modelUrl || new URL('nerve.tflite', base)).then(okBytes),
    ]);
    const can = await available();
    const wanted = options.backend && options.backend !== 'auto' ? [options.backend] : can;
    const threads = threadCount(options.threads);
    const errors = [];
    for (const backend of wanted) {
      if (!can.includes(backend)) { errors.push(`${backend}: not available here`); continue; }
      try {
        const model = await compileOn(backend, modelBytes, threads);
        return new Engine(model, backend, label(backend, threads), settings(meta, options.roi),
                          meta, can);
      } catch (err) {
        errors.push(`${backend}: ${err.message || err}`);
        try { litert.unloadLiteRt(); } catch { /* nothing loaded: nothing to unload */ }
      }
    }
    throw new Error(`no backend could run the model (${errors.join('; ')})`);
  }

  constructor(model, backend, backendLabel, cfg, meta, available) {
    this.model = model;
    this.backend = backend;
    this.backendLabel = backendLabel;
    this.available = available;
    this.cfg = cfg;
    this.meta = meta;
    const n = cfg.w * cfg.h;
    this.input = new Float32Array(n);
    this.gray = new Uint8Array(n);
    this.work = new Uint8Array(4 * n);
    this.mask01 = new Uint8Array(n);
    this.stack = new Int32Array(n);
    this.roiGray = new Uint8Array(0);
    this.queue = Promise.resolve();
    this.reached = new Int32Array(4); // frame rectangle the last mask can occupy
    this.outputs = model.getOutputDetails().map((d) => Array.from(d.shape));
    this.channel = new Float32Array(n); // one class's probabilities, de-interleaved
    this.classMasks = []; // frame-size 0/255 per class (multi-class models)
  }

  roiFor(width, height) {
    const roi = this.cfg.roi || [0, 0, width, height];
    const [x, y, w, h] = roi;
    if (w <= 0 || h <= 0 || x < 0 || y < 0 || x + w > width || y + h > height) {
      throw new Error(`roi ${roi.join(',')} does not fit inside the ${width}x${height} frame`);
    }
    return roi;
  }

  /** RGBA frame -> float model input (this.input). */
  preprocess(rgba, width, height) {
    const {w, h, scale, offset} = this.cfg;
    const roi = this.roiFor(width, height);
    if (this.roiGray.length < roi[2] * roi[3]) this.roiGray = new Uint8Array(roi[2] * roi[3]);
    ip.grayROI(rgba, width, roi, this.roiGray);
    ip.resizeGray(this.roiGray, roi[2], roi[3], w, h, this.work, this.gray);
    return ip.normalize(this.gray, scale, offset, this.input);
  }

  /** Run the model on this.input -> {prob: Float32Array (h*w*C, channels interleaved),
   *  channels: C, presence: number|null, or one per class for a (1, C) presence head}. */
  async infer() {
    const {w, h} = this.cfg;
    const tensor = new litert.Tensor(this.input, [1, h, w, 1]);
    let outs;
    try {
      outs = await this.model.run(tensor);
    } finally {
      tensor.delete();
    }
    let prob = null, presence = null, channels = 1;
    const nClasses = this.cfg.classes ? this.cfg.classes.length : 1;
    for (let i = 0; i < outs.length; i++) {
      const onCpu = outs[i].accelerator === 'wasm' ? outs[i] : await outs[i].moveTo('wasm');
      const data = onCpu.toTypedArray();
      const shape = this.outputs[i] || [];
      if (shape.length === 4 && prob === null) {
        prob = Float32Array.from(data);
        channels = shape[3];
      } else if (data.length === 1 && presence === null) presence = data[0];
      else if (nClasses > 1 && data.length === nClasses && presence === null) {
        presence = Array.from(data);
      }
      onCpu.delete();
      if (onCpu !== outs[i] && !outs[i].deleted) outs[i].delete();
    }
    if (prob === null || channels !== nClasses) {
      throw new Error(`no (1,H,W,${nClasses}) mask among outputs ${this.outputs}`);
    }
    return {prob, presence, channels};
  }

  /** Probabilities -> frame-size 0/255 mask (into `out`), as edge's Postprocessor. */
  postprocess(prob, presence, width, height, out) {
    const {w, h, threshold, minArea, presenceThreshold} = this.cfg;
    ip.binarize(prob, w, h, threshold, minArea, this.mask01, this.stack);
    if (presence !== null && presence < presenceThreshold) this.mask01.fill(0);
    return ip.toFrame(this.mask01, w, h, width, height, this.roiFor(width, height), out,
                      this.reached);
  }

  /** Multi-class: per class, channel k -> threshold + min area (+ presence) -> frame-size
   *  0/255 mask; the nerve's mask goes to `out`. Returns the per-class results. */
  postprocessClasses(prob, presence, width, height, out) {
    const {w, h, presenceThreshold, classes} = this.cfg;
    const roi = this.roiFor(width, height), C = classes.length, n = w * h;
    const results = classes.map((c, k) => {
      for (let i = 0; i < n; i++) this.channel[i] = prob[i * C + k];
      ip.binarize(this.channel, w, h, c.threshold, c.minArea, this.mask01, this.stack);
      const p = Array.isArray(presence) ? presence[k] : (k === 0 ? presence : null);
      if (p !== null && p !== undefined && p < presenceThreshold) this.mask01.fill(0);
      if (!this.classMasks[k] || this.classMasks[k].length !== width * height) {
        this.classMasks[k] = new Uint8Array(width * height);
      }
      const box = new Int32Array(4);
      const areaPx = ip.toFrame(this.mask01, w, h, width, height, roi, this.classMasks[k], box);
      const near = c.safety && areaPx > 0 && nearCentre(this.classMasks[k], width, roi, box);
      return {id: c.id, name: c.name, color: c.color, safety: c.safety, detected: areaPx > 0,
              areaPx, nearCentre: near, mask: this.classMasks[k], box: Array.from(box)};
    });
    const names = classes.map((c) => c.name);
    const nerve = results[Math.max(names.indexOf(NERVE_NAME), 0)];
    out.set(nerve.mask);
    this.reached.set(nerve.box);
    return results;
  }

  /** Class ids at frame size (0 = background), safety classes written last: a vessel
   *  overrides a nerve where both fire (edge.model.postprocess.class_id_map). */
  static classMap(results, width, height) {
    const map = new Uint8Array(width * height);
    for (const r of [...results.filter((c) => !c.safety), ...results.filter((c) => c.safety)]) {
      const [x0, y0, x1, y1] = r.box;
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) if (r.mask[y * width + x]) map[y * width + x] = r.id;
      }
    }
    return map;
  }

  /** One frame end to end; stage times in ms. Calls run one at a time (shared buffers). */
  segment(imageData, out) {
    const run = this.queue.then(() => this.segmentNow(imageData, out));
    this.queue = run.catch(() => {});
    return run;
  }

  async segmentNow(imageData, out) {
    const {width, height, data} = imageData;
    const mask = out && out.length === width * height ? out : new Uint8Array(width * height);
    const t0 = performance.now();
    this.preprocess(data, width, height);
    const t1 = performance.now();
    const {prob, presence} = await this.infer();
    const t2 = performance.now();
    let areaPx, classes = null;
    if (this.cfg.classes) {
      classes = this.postprocessClasses(prob, presence, width, height, mask);
      areaPx = classes[Math.max(classes.findIndex((c) => c.name === NERVE_NAME), 0)].areaPx;
    } else {
      areaPx = this.postprocess(prob, presence, width, height, mask);
    }
    const t3 = performance.now();
    const result = {mask, width, height, detected: areaPx > 0, areaPx,
                    presence: Array.isArray(presence) ? presence[0] : presence, ms: t3 - t0,
                    box: Array.from(this.reached),
                    stageMs: {preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2}};
    if (classes) {
      result.classes = classes;  // [{id, name, color, safety, detected, areaPx, nearCentre, ...}]
      result.safetyWarning = classes.some((c) => c.nearCentre);
      result.classMap = Engine.classMap(classes, width, height);
    }
    return result;
  }
}

async function okJson(r) {
  if (!r.ok) throw new Error(`${r.url}: HTTP ${r.status}`);
  return r.json();
}

async function okBytes(r) {
  if (!r.ok) throw new Error(`${r.url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
