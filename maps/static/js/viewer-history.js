/* A risk site's inspection history in the map's popup: GET /sites/{key}/history (inspections, findings and
 * enforcement cases, every city, in time order). The server shows what the caller's city may read; the
 * key is the one this browser's phone page keeps (riskatlas.m.inspect.key), when there is one.
 */
(function (RA) {
  'use strict';
  var NAMES = { inspection: ['检查', 'inspection'], finding: ['问题', 'finding'], 'case-opened': ['立案', 'case opened'],
    'case-follow-up': ['复查', 'follow-up'], 'case-closed': ['结案', 'case closed'] };

  function key() { try { return JSON.parse(localStorage.getItem('riskatlas.m.inspect.key')); } catch (e) { return null; } }

  /** Fill the popup element `el` of risk source `site` with its history (newest last). */
  function fill(el, site) {
    if (!el) return;
    var k = key();
    fetch(RA.abs((RA.cfg.root || '') + '/sites/' + encodeURIComponent(site) + '/history'),
      { headers: k ? { 'X-API-Key': k, Accept: 'application/json' } : { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; }).then(function (doc) {
        if (!doc || !el.isConnected) return;
        var zh = RA.state.lang === 'zh';
        var box = document.createElement('div');
        box.className = 'history';
        box.dataset.events = doc.events.length;
        box.innerHTML = '<h4>' + (zh ? '检查与执法记录' : 'Inspections and enforcement') + '</h4>' + (doc.events.length
          ? '<ol>' + doc.events.map(function (e) {
            var n = NAMES[e.kind] || [e.kind, e.kind];
            return '<li data-kind="' + RA.esc(e.kind) + '">' + RA.esc(String(e.at).slice(0, 10)) + ' ' + RA.esc(zh ? n[0] : n[1]) +
              ' · ' + RA.esc(RA.areaName ? RA.areaName(e.city) : e.city) +
              (e.detail && e.detail.type ? ' · ' + RA.esc(e.detail.type) : '') + '</li>';
          }).join('') + '</ol>'
          : '<p class="kind">' + (zh ? '无可见记录' : 'nothing you may see') + '</p>');
        el.querySelector('.popup') ? el.querySelector('.popup').appendChild(box) : el.appendChild(box);
      }).catch(function () { /* the popup stays as it is */ });
  }

  RA.history = { fill: fill };
})(window.RA = window.RA || {});
