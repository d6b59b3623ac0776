// The static site's service worker: after one visit the whole site (the page, the model, the
// runtime's WebAssembly, the piano) is kept in this browser, and the page loads and plays with
// the network off.
//
// The files are site.json's list, each with a hash of its content. The build (web/build.py)
// writes the site's version below, so a new build is a new service worker: it installs beside
// the one in use, copying every file whose hash is unchanged from the cache in use and
// downloading only the others, then waits; the page offers a reload, which takes it into use
// (the old cache goes then, not while a page still plays from it).

const VERSION = "dev"; // the build's: a hash of every file
const PREFIX = "amadeus-";
const CACHE = PREFIX + VERSION;
const LIST = "site.json"; // kept in each cache: what it holds

const at = (path) => new URL(path, self.registration.scope).href;

self.addEventListener("install", (e) => e.waitUntil(keep()));

self.addEventListener("activate", (e) =>
  e.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim(); // the first visit's page plays from the cache at once
    })(),
  ),
);

self.addEventListener("message", (e) => {
  if (e.data?.type === "update") self.skipWaiting(); // the page's reload button
});

self.addEventListener("fetch", (e) => {
  const request = e.request;
  if (request.method !== "GET" || !request.url.startsWith(self.registration.scope)) return;
  e.respondWith(answer(request));
});

// From the cache, else the network. A page address (the site's folder, with any query) is the
// page itself.
async function answer(request) {
  const cache = await caches.open(CACHE);
  const key = request.mode === "navigate" ? at("index.html") : request;
  return (await cache.match(key, { ignoreSearch: request.mode === "navigate" })) ?? fetch(request);
}

async function keep() {
  const listed = await fetch(at(LIST), { cache: "no-cache" });
  if (!listed.ok) throw new Error(`${LIST}: ${listed.status}`);
  const site = await listed.clone().json();
  const cache = await caches.open(CACHE);
  const before = await kept();
  const wanted = Object.entries(site.files).filter(([path]) => path !== LIST);
  await Promise.all(
    wanted.map(async ([path, hash]) => {
      const old = before.get(path);
      const response = old?.hash === hash ? await old.cache.match(at(path)) : null;
      if (response) await cache.put(at(path), response);
      else await cache.add(new Request(at(path), { cache: "no-cache" }));
    }),
  );
  await cache.put(at(LIST), listed); // last: a cache with its list is complete
}

// path -> {hash, cache}: what the caches of earlier versions hold.
async function kept() {
  const files = new Map();
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const cache = await caches.open(name);
    const list = await cache.match(at(LIST));
    if (!list) continue;
    const { files: listed } = await list.json();
    for (const [path, hash] of Object.entries(listed)) files.set(path, { hash, cache });
  }
  return files;
}
