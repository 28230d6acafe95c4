// Service worker of the /app/ runner: offline after one visit, and cross-origin isolation on
// static hosts that cannot send the headers themselves.
//   * install: caches the page, its code, the runtime loader and the model;
//   * the page then sends every file it loaded (the runtime wasm variant this browser picked)
//     and they are cached too;
//   * fetch: answers from the cache at once and refreshes the copy in the background (the
//     server's ETag makes that cheap); the network only when a file is not cached yet;
//   * every answer gets COOP/COEP/CORP, so threaded WASM works wherever the page is hosted.
const CACHE = 'nerve-edge-app-v2';
const CORE = ['./', 'index.html', 'app.js', 'nerve.js', 'imgproc.js', 'meter.js', 'manifest.webmanifest',
  'icon-192.png', 'icon-512.png', 'runtime/litert.js', 'runtime/wasm-utils.js',
  'model/nerve.tflite', 'model/nerve.json'];
const ISOLATION = {'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin'};

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(CORE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('message', (event) => {
  if (event.data?.type !== 'cache') return;
  const scope = self.registration.scope;
  const urls = (event.data.urls || []).filter((u) => typeof u === 'string' && u.startsWith(scope));
  event.waitUntil(caches.open(CACHE).then(async (cache) => {
    for (const url of urls) if (!(await cache.match(url))) await cache.add(url).catch(() => {});
  }));
});

function isolated(response) {
  if (!response || response.type === 'opaque' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  for (const [k, v] of Object.entries(ISOLATION)) headers.set(k, v);
  return new Response(response.body, {status: response.status, statusText: response.statusText,
                                      headers});
}

async function refresh(request, cache) {
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || !request.url.startsWith(self.registration.scope)) return;
  const key = request.url.split('?')[0].split('#')[0];
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const cached = await cache.match(key);
    if (cached) {
      event.waitUntil(refresh(key, cache).catch(() => {})); // offline: keep the cached copy
      return isolated(cached);
    }
    return isolated(await refresh(key, cache));
  }));
});
