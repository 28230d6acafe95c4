// The page: frames from a camera (getUserMedia, with a device picker), a video file or the
// built-in demo clip (phantom frames the server renders, demo/phantom.*), through the engine,
// drawn with the mask, per-stage ms and FPS. While nothing plays, an empty state says what to
// do. Exposes window.nerveEdge (see docs/tablet.md): ready, segment(imageData), stats(). A
// multi-class model is drawn one colour per class (the sidecar's), safety classes on top, with
// the centre-line warning.
//
// URL options: ?backend=webgpu|wasm-threads|wasm (default: the best available),
// ?threads=N (threaded WASM), ?roi=x,y,w,h (crop, as edge-run --roi).
import {Engine} from './nerve.js';
import {drawClasses, drawMask, rgb} from './imgproc.js';
import {Meter, median} from './meter.js';

const HUD_PERIOD_MS = 250; // the text overlay is refreshed at most this often
const FILL_ALPHA = 0.4; // as edge-run --alpha
const STAGES = ['grab', 'preprocess', 'inference', 'postprocess', 'draw'];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const video = $('source');
const view = $('view');
const ctx = view.getContext('2d', {willReadFrequently: true});

const meter = new Meter();
let engine = null;
let running = false;
let lastTime = -1; // currentTime of the last processed video frame
let lastHud = 0;
let mask = new Uint8Array(0);
let demoClip = null; // {frames: ImageBitmap[], fps, width, height}, loaded on first use
let demo = null; // while the demo plays: {t0 (ms), last (frame index shown)}
let pressed = 0; // source choices so far: a press still waiting gives way to a later one

function message(text) { $('message').textContent = text || ''; }
function cannotStart(err) { message(`cannot start: ${err.message || err}`); }

function options() {
  const roi = params.get('roi');
  return {backend: params.get('backend') || 'auto', threads: Number(params.get('threads')) || 0,
          roi: roi ? roi.split(',').map(Number) : null};
}

// One frame: grab -> segment (pre, inference, post) -> draw, once per NEW video frame
// (requestVideoFrameCallback; a camera's currentTime moves even without one). Frames that
// arrive while one is being processed are skipped: the newest one is taken next.
async function step() {
  if (!running) return;
  if (video.readyState >= 2 && video.videoWidth && video.currentTime !== lastTime) {
    lastTime = video.requestVideoFrameCallback ? -1 : video.currentTime;
    try {
      await processFrame(video, video.videoWidth, video.videoHeight);
    } catch (err) {
      message(`frame failed: ${err.message || err}`);
    }
  }
  schedule();
}

function schedule() {
  if (!running) return;
  if (demo) requestAnimationFrame(demoStep);
  else if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(step);
  else requestAnimationFrame(step);
}

// The demo clip plays like a video: the frame due at this moment (fps from demo/phantom.json),
// looping; each new one goes through processFrame once, late ones are skipped.
async function demoStep(now) {
  if (!running || !demo) return;
  const k = Math.floor((now - demo.t0) * demoClip.fps / 1000) % demoClip.frames.length;
  if (k !== demo.last) {
    demo.last = k;
    try {
      await processFrame(demoClip.frames[k], demoClip.width, demoClip.height);
    } catch (err) {
      message(`frame failed: ${err.message || err}`);
    }
  }
  schedule();
}

/** demo/phantom.json + the JPEG it names (frames stacked top to bottom) -> ImageBitmaps. */
async function loadDemo() {
  const response = await fetch('demo/phantom.json');
  if (!response.ok) throw new Error(`demo/phantom.json: HTTP ${response.status}`);
  const info = await response.json();
  const sprite = new Image();
  sprite.src = `demo/${info.sprite}`;
  await sprite.decode();
  const frames = await Promise.all(Array.from({length: info.frames}, (_, k) =>
    createImageBitmap(sprite, 0, k * info.height, info.width, info.height)));
  const scale = info.scale || 1; // stored small, drawn at the phantom's own size
  return {frames, fps: info.fps, width: info.width * scale, height: info.height * scale};
}

/** Every source (camera, video, demo) starts through this: a press while the model still
 *  loads waits for nerveEdge.ready (its control disabled, "loading the model…" shown) instead
 *  of running frames with no engine. True when the source should start now: the engine is
 *  ready and no later press replaced this one. */
async function whenReady(control) {
  const mine = ++pressed;
  control.disabled = true;
  if (!engine) message('loading the model…');
  try {
    await ready;
  } catch (err) {
    if (mine === pressed) cannotStart(err);
    return false;
  } finally {
    control.disabled = false;
  }
  return mine === pressed;
}

async function playDemo() {
  stop();
  const button = $('demo');
  if (!await whenReady(button)) return;
  button.disabled = true; // while the clip loads (once, on first use)
  try {
    demoClip = demoClip || await loadDemo();
  } catch (err) {
    showEmpty(true);
    return message(`demo clip: ${err.message || err}`);
  } finally {
    button.disabled = false;
  }
  message('');
  demo = {t0: performance.now(), last: -1};
  start();
}

/** The empty state (what to do: camera, video or the demo) shows while nothing plays. */
function showEmpty(show) { $('empty').hidden = !show; }

/** The per-frame work, from any drawable source (video element, ImageBitmap). */
async function processFrame(source, w, h) {
  const t0 = performance.now();
  if (view.width !== w || view.height !== h) { view.width = w; view.height = h; }
  ctx.drawImage(source, 0, 0, w, h);
  const frame = ctx.getImageData(0, 0, w, h);
  const t1 = performance.now();
  if (mask.length !== w * h) mask = new Uint8Array(w * h);
  const result = await engine.segment(frame, mask);
  const t2 = performance.now();
  if (result.classes) drawClasses(frame.data, result, w, h, FILL_ALPHA);
  else drawMask(frame.data, result.mask, w, h, FILL_ALPHA, rgb(engine.cfg.nerveColor), result.box);
  ctx.putImageData(frame, 0, 0);
  const t3 = performance.now();
  const stages = {grab: t1 - t0, ...result.stageMs, draw: t3 - t2, total: t3 - t0};
  meter.add(stages);
  if (t3 - lastHud > HUD_PERIOD_MS) { lastHud = t3; hud(result); }
  return stages;
}

function hud(result) {
  const d = $('detect');
  d.textContent = result.detected ? `NERVE ${result.areaPx} px` : 'no nerve';
  d.className = result.detected ? 'yes' : 'no';
  d.style.color = result.detected && !result.classes ? engine.cfg.nerveColor : ''; // as drawn
  if (result.classes) {
    d.textContent = result.classes.map((c) => `${c.name}${c.safety ? ' (avoid)' : ''}: ` +
      (c.detected ? `${c.areaPx} px` : 'no')).join('\n');
  }
  const near = (result.classes || []).filter((c) => c.nearCentre).map((c) => c.name);
  $('safety').textContent = near.length ? `${near.join(', ').toUpperCase()} NEAR CENTRE LINE` : '';
  const ms = meter.stageMs();
  $('fps').textContent = `FPS ${meter.fps().toFixed(1)}  frame ${ms.total.toFixed(1)} ms`;
  $('stages').textContent = STAGES.map((s) => `${s.padEnd(11)} ${ms[s].toFixed(2)} ms`).join('\n');
}

function start() {
  meter.reset();
  lastTime = -1;
  running = true;
  showEmpty(false);
  $('stop').disabled = false;
  schedule();
}

function stop() {
  running = false;
  demo = null;
  showEmpty(true);
  const stream = video.srcObject;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
  if (video.src) { URL.revokeObjectURL(video.src); video.removeAttribute('src'); video.load(); }
  $('stop').disabled = true;
}

async function listCameras() {
  const select = $('devices');
  const chosen = select.value;
  const cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  select.replaceChildren(...cams.map((d, i) => new Option(d.label || `camera ${i + 1}`, d.deviceId)));
  if (chosen) select.value = chosen;
  select.disabled = cams.length === 0;
}

async function startCamera() {
  stop();
  if (!await whenReady($('camera'))) return;
  const deviceId = $('devices').value;
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia(
      {video: deviceId ? {deviceId: {exact: deviceId}} : true, audio: false});
  } catch (err) {
    return message(`camera: ${err.name}: ${err.message} (allow the camera for this site)`);
  }
  await video.play();
  message('');
  await listCameras();
  start();
}

async function openVideo(file) {
  stop();
  if (!await whenReady($('file'))) return;
  video.src = URL.createObjectURL(file);
  video.loop = true;
  try {
    await video.play();
  } catch (err) {
    return message(`${file.name}: cannot play this video here (${err.message})`);
  }
  message('');
  start();
}

function wireUi() {
  const cameraOk = !!navigator.mediaDevices?.getUserMedia;
  if (!cameraOk) {
    message('The camera needs a secure page (https:// or localhost); a video file still works. ' +
            'See docs/tablet.md.');
  } else {
    listCameras().catch(() => {});
  }
  // The controls (disabled in index.html) work once the page knows it stays: on a static
  // host's first visit the page reloads under its service worker (see registerWorker) and a
  // video picked before that would be lost with it. A press while the model loads waits.
  reloading.then((reload) => {
    if (reload) return;
    $('camera').disabled = !cameraOk;
    $('file').disabled = false;
    $('demo').disabled = false;
  });
  $('camera').addEventListener('click', startCamera);
  $('devices').addEventListener('change', () => { if (video.srcObject) startCamera(); });
  $('file').addEventListener('change', (e) => { if (e.target.files[0]) openVideo(e.target.files[0]); });
  $('stop').addEventListener('click', stop);
  $('demo').addEventListener('click', playDemo);
}

// Offline: the service worker caches the page, runtime and model. On a host that cannot send
// the isolation headers, the worker adds them, and the first visit reloads once under it to get
// threads. That reload comes BEFORE the engine starts: a page that is about to reload never
// resolves nerveEdge.ready, so no engine is built for nothing and nothing that waits for ready
// (the demo, a caller's segment/benchmark and its frames on the canvas) runs on a page that
// then goes away. Resolves true when the page reloads.
async function registerWorker() {
  if (!('serviceWorker' in navigator) || !self.isSecureContext) return false;
  const sw = navigator.serviceWorker;
  const reload = !self.crossOriginIsolated && !sw.controller &&
    !sessionStorage.getItem('nerve-coi-reload'); // once per tab: never a reload loop
  if (!reload) {
    sw.register('sw.js', {scope: './'}).catch((err) => console.warn('service worker:', err));
    return false;
  }
  // sw.js claims the page once active (skipWaiting + clients.claim); listen before registering.
  const claimed = new Promise((resolve) => sw.addEventListener('controllerchange',
                                                               () => resolve(true), {once: true}));
  const reg = await sw.register('sw.js', {scope: './'});
  const worker = reg.installing || reg.waiting;
  // Settled when it claims the page, or when it fails to install (redundant) or activates
  // without claiming it: then the page runs as it is (no threads) instead of waiting forever.
  const settled = !worker ? Promise.resolve(sw.controller !== null) : Promise.race([
    claimed, new Promise((resolve) => worker.addEventListener('statechange', () => {
      if (worker.state === 'redundant') resolve(false);
      if (worker.state === 'activated') resolve(sw.controller !== null);
    }))]);
  if (!await settled) return false;
  sessionStorage.setItem('nerve-coi-reload', '1');
  location.reload();
  return true;
}

/** Ask the service worker to keep every file this page loaded (runtime wasm included). */
async function cacheLoadedFiles() {
  if (!('serviceWorker' in navigator) || !self.isSecureContext) return;
  const reg = await navigator.serviceWorker.ready;
  const here = new URL('./', location.href).href;
  const urls = performance.getEntriesByType('resource').map((e) => e.name.split('#')[0])
    .filter((u) => u.startsWith(here));
  reg.active?.postMessage({type: 'cache', urls: [...new Set([location.href.split('?')[0], ...urls])]});
}

const reloading = registerWorker().catch((err) => {
  console.warn('service worker:', err);
  return false;
});

// The engine starts once the page knows it stays (see registerWorker).
const ready = reloading.then((reload) => (reload ? new Promise(() => {}) : Engine.create(options())))
  .then((e) => {
    engine = e;
    $('backend').textContent = e.backendLabel;
    $('backend').title = `available here: ${e.available.join(', ')}; model ${e.cfg.name} ` +
      `${e.cfg.version}`;
    cacheLoadedFiles().catch(() => {});
    return {backend: e.backendLabel, backendId: e.backend, available: e.available, model: e.meta};
  }, (err) => {
    $('backend').textContent = 'no backend';
    cannotStart(err);
    throw err;
  });

window.nerveEdge = {
  ready,
  /** One frame (ImageData, any size) -> {mask 0/255 at its size, width, height, detected,
   *  areaPx, ms, stageMs, presence}; a multi-class model adds classes: [{id, name, color,
   *  safety, detected, areaPx, nearCentre, mask, box}], classMap (ids, 0 = background,
   *  safety last) and safetyWarning. The nerve fields come from the class named "nerve". */
  async segment(imageData) {
    await ready;
    return engine.segment(imageData);
  },
  /** Measurement: the live per-frame work (grab, segment, draw) back to back on in-memory
   *  frames (ImageData list): `count` timed frames after `warmup`. Returns {fps, frames,
   *  backend, stageMs (mean), stageMsMedian}. */
  async benchmark(images, count, warmup = 10) {
    await ready;
    const bitmaps = await Promise.all(images.map((im) => createImageBitmap(im)));
    stop();
    showEmpty(false);
    const runs = [];
    let start = 0;
    for (let k = 0; k < warmup + count; k++) {
      if (k === warmup) start = performance.now();
      const b = bitmaps[k % bitmaps.length];
      const stages = await processFrame(b, b.width, b.height);
      if (k >= warmup) runs.push(stages);
    }
    const wall = performance.now() - start;
    const mean = {}, med = {};
    for (const key of Object.keys(runs[0])) {
      const v = runs.map((r) => r[key]);
      mean[key] = v.reduce((a, b) => a + b, 0) / v.length;
      med[key] = median(v);
    }
    return {fps: count * 1000 / wall, frames: count, backend: engine.backendLabel,
            backendId: engine.backend, stageMs: mean, stageMsMedian: med};
  },
  stats() {
    return {fps: meter.fps(), stageMs: meter.stageMs(), backend: engine ? engine.backendLabel : null,
            backendId: engine ? engine.backend : null, frames: meter.frames};
  },
};

wireUi();
