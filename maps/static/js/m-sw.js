/* The phone page's service worker. Its settings come first in the same script (self.RISKATLAS_M: the cache
 * name, which changes with the content, the URLs to keep, and the page's own URL).
 * - install: keep the page, its manifest and icons;
 * - activate: drop the caches of earlier versions and take control of open pages at once;
 * - fetch: the page from the network when it answers (and keep that copy), else from the cache; the kept
 *   manifest and icons from the cache; every other request (the API) is left to the network, and the
 *   page searches its own stored sites when that fails.
 */
'use strict';
var M = self.RISKATLAS_M;

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(M.cache).then(function (cache) { return cache.addAll(M.precache); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf('riskatlas-m-') === 0 && n !== M.cache; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === M.page) {
    event.respondWith(fetch(request).then(function (answer) {
      if (answer.ok) {
        var copy = answer.clone();
        caches.open(M.cache).then(function (cache) { cache.put(M.page, copy); });
      }
      return answer;
    }).catch(function () {
      return caches.match(M.page, { ignoreSearch: true }).then(function (kept) {
        return kept || Response.error();
      });
    }));
    return;
  }
  if (M.precache.indexOf(url.pathname) >= 0) {
    event.respondWith(caches.match(request).then(function (kept) { return kept || fetch(request); }));
  }
});
