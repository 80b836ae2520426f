/* The phone page's inspection form (issue 12): pick a task's site or a nearby one, fill the site's
 * checklist, a finding and photos, save. Offline first: a saved record and its photos wait in IndexedDB
 * (database riskatlas-m, store queue) under a client id made here, and are sent to POST /inspections/sync
 * whenever the network is back (the page opening, the browser's `online` event, a save). The server keeps
 * a record once whatever how often it is sent; a record it rejects stays queued with the reason shown.
 * The API key, the tasks and the checklists are kept in localStorage so the form works without a network.
 * Loaded by /m after m.js (the service worker keeps this file too).
 */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent).inspect;
  var KEEP = 'riskatlas.m.inspect.';
  var $ = function (id) { return document.getElementById(id); };
  var syncing = false;

  function kept(name) { try { return JSON.parse(localStorage.getItem(KEEP + name)); } catch (e) { return null; } }
  function keep(name, value) { try { localStorage.setItem(KEEP + name, JSON.stringify(value)); } catch (e) { /* full */ } }
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function uuid() {
    if (self.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function headers() { var k = kept('key'); return k ? { 'X-API-Key': k } : {}; }

  // --- the queue in IndexedDB ---------------------------------------------------------------------
  function db() {
    return new Promise(function (ok, fail) {
      var open = indexedDB.open('riskatlas-m', 1);
      open.onupgradeneeded = function () { open.result.createObjectStore('queue', { keyPath: 'client_id' }); };
      open.onsuccess = function () { ok(open.result); };
      open.onerror = function () { fail(open.error); };
    });
  }
  function store(mode, work) {
    return db().then(function (d) {
      return new Promise(function (ok, fail) {
        var tx = d.transaction('queue', mode);
        var out = work(tx.objectStore('queue'));
        tx.oncomplete = function () { d.close(); ok(out && 'result' in out ? out.result : undefined); };
        tx.onerror = function () { d.close(); fail(tx.error); };
      });
    });
  }
  function queued() { return store('readonly', function (s) { return s.getAll(); }); }

  function showQueue() {
    return queued().then(function (items) {
      var el = $('inspect-queue');
      el.dataset.count = items.length;
      el.innerHTML = '待同步 Waiting to sync: ' + items.length + items.filter(function (i) { return i.rejected; })
        .map(function (i) { return '<div class="rejected">' + esc(i.record.site_key) + ': ' + esc(i.rejected) + '</div>'; }).join('');
      return items;
    });
  }

  /** Send every queued record with its photos; drop those the server saved or had already. */
  function sync() {
    if (syncing || !navigator.onLine) return Promise.resolve();
    syncing = true;
    return queued().then(function (items) {
      items = items.filter(function (i) { return !i.rejected; });
      if (!items.length || !kept('key')) return null;
      var form = new FormData();
      form.append('records', JSON.stringify(items.map(function (i) { return i.record; })));
      items.forEach(function (i) { i.photos.forEach(function (p) { form.append('photos', p.blob, p.name); }); });
      return fetch(cfg.sync, { method: 'POST', body: form, headers: headers() }).then(function (r) {
        return r.json().then(function (doc) {
          if (!doc.records) { note(doc.description || String(r.status)); return null; }
          return store('readwrite', function (s) {
            doc.records.forEach(function (res) {
              var item = items[res.index];
              if (res.status === 'rejected') { item.rejected = res.reason; s.put(item); } else { s.delete(item.client_id); }
            });
          }).then(function () { return doc; });
        });
      });
    }).then(function (doc) {
      syncing = false;
      return showQueue().then(function (left) {
        if (doc) document.dispatchEvent(new CustomEvent('riskatlas:synced', { detail: { saved: doc.saved, left: left.length } }));
      });
    }, function () { syncing = false; return showQueue(); });  // offline again: the queue waits
  }

  function note(text) { $('inspect-note').textContent = text; }

  // --- tasks, sites and checklists, kept for offline use ------------------------------------------
  function refresh() {
    if (!navigator.onLine) return Promise.resolve();
    var got = fetch(cfg.templates).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) { if (doc) keep('templates', doc); }).catch(function () { /* kept copy */ });
    var tasks = !kept('key') ? Promise.resolve() : fetch(cfg.tasks + '?status=planned', { headers: headers() })
      .then(function (r) { return r.ok ? r.json() : null; }).then(function (doc) {
        if (!doc) return;
        return Promise.all(doc.tasks.map(function (t) {
          return fetch(cfg.tasks + '/' + t.id, { headers: headers() }).then(function (r) { return r.json(); });
        })).then(function (full) { keep('tasks', full); });
      }).catch(function () { /* kept copy */ });
    return Promise.all([got, tasks]).then(fillTasks);
  }

  function sites() {
    var task = taskById($('inspect-task').value);
    if (task) return task.sites;
    var last = null;
    try { last = JSON.parse(localStorage.getItem('riskatlas.m.last')); } catch (e) { /* none */ }
    return ((last && last.sites) || []).map(function (s) { return { key: s.key, name: s.name, category: s.category }; });
  }
  function taskById(id) { return (kept('tasks') || []).filter(function (t) { return String(t.id) === String(id); })[0]; }

  function fillTasks() {
    var sel = $('inspect-task'), was = sel.value;
    sel.innerHTML = '<option value="">附近风险源 Nearby sites</option>' + (kept('tasks') || []).map(function (t) {
      return '<option value="' + t.id + '">' + esc(t.title) + (t.joint ? ' (联合 joint)' : '') + '</option>';
    }).join('');
    sel.value = was;
    fillSites();
  }
  function fillSites() {
    var sel = $('inspect-site'), was = sel.value;
    sel.innerHTML = sites().map(function (s) { return '<option value="' + esc(s.key) + '">' + esc(s.name) + '</option>'; }).join('');
    if (was) sel.value = was;
    fillChecklist();
  }
  function checklist() {
    var doc = kept('templates');
    if (!doc) return null;
    var task = taskById($('inspect-task').value);
    var site = sites().filter(function (s) { return s.key === $('inspect-site').value; })[0];
    var name = task ? task.template : site && doc.templates[site.category] ? site.category : 'chemical';
    var versions = doc.templates[name] || [];
    var want = task ? task.template_version : null;
    return versions.filter(function (v) { return want === null || v.version === want; }).pop() || null;
  }
  function fillChecklist() {
    var v = checklist(), doc = kept('templates');
    if (!v || !doc) { $('inspect-items').innerHTML = ''; return; }
    $('inspect-items').dataset.template = v.template + '@' + v.version;
    $('inspect-items').innerHTML = '<h3>' + esc(v.title_zh) + ' <small>' + esc(v.title_en) + ' · v' + v.version + '</small></h3>' +
      v.items.map(function (i) {
        var input = i.answer === 'yes-no'
          ? '<select data-q="' + esc(i.id) + '" data-kind="yes-no"><option value="">—</option><option value="1">是 yes</option><option value="0">否 no</option></select>'
          : '<input data-q="' + esc(i.id) + '" data-kind="' + i.answer + '"' + (i.answer === 'number' ? ' inputmode="decimal"' : '') + '>';
        return '<label class="q">' + esc(i.zh) + ' <small>' + esc(i.en) + '</small>' + input + '</label>';
      }).join('');
    $('inspect-kind').innerHTML = '<option value="">无问题 No finding</option>' + Object.keys(doc.finding_types).map(function (k) {
      return '<option value="' + k + '">' + esc(doc.finding_types[k].zh) + ' ' + esc(doc.finding_types[k].en) + '</option>';
    }).join('');
  }

  // --- saving a record --------------------------------------------------------------------------
  function position() {
    return new Promise(function (ok) {
      var typed = function () {
        var lon = parseFloat($('lon').value), lat = parseFloat($('lat').value);
        if (!isFinite(lon) || !isFinite(lat)) return ok(null);
        ok($('crs').value === 'gcj02' ? { lon: RiskatlasGeo.gcjToWgs(lon, lat)[0], lat: RiskatlasGeo.gcjToWgs(lon, lat)[1], accuracy: null }
          : { lon: lon, lat: lat, accuracy: null });
      };
      if (!navigator.geolocation) return typed();
      navigator.geolocation.getCurrentPosition(function (p) {
        ok({ lon: p.coords.longitude, lat: p.coords.latitude, accuracy: p.coords.accuracy });
      }, typed, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
  }

  function save(e) {
    e.preventDefault();
    var v = checklist(), site = $('inspect-site').value;
    if (!v || !site) { note('先选择风险源 Pick a site first'); return; }
    var answers = {};
    document.querySelectorAll('#inspect-items [data-q]').forEach(function (el) {
      if (el.value === '') return;
      answers[el.dataset.q] = el.dataset.kind === 'yes-no' ? el.value === '1' : el.dataset.kind === 'number' ? Number(el.value) : el.value;
    });
    var cid = uuid();
    var files = Array.prototype.slice.call($('inspect-photos').files || []);
    var photos = files.map(function (f, n) {
      var ext = /png$/i.test(f.type) ? '.png' : '.jpg';
      return { name: cid + '-' + (n + 1) + ext, blob: f };
    });
    position().then(function (pos) {
      if (!pos) { note('没有位置 No position: allow location or type it above'); return; }
      var task = $('inspect-task').value;
      var record = { client_id: cid, task_id: task ? Number(task) : null, site_key: site, template: v.template,
        template_version: v.version, answers: answers, note: $('inspect-text').value || null,
        position: { lon: pos.lon, lat: pos.lat }, accuracy_m: pos.accuracy, device_time: new Date().toISOString(),
        findings: $('inspect-kind').value ? [{ kind: $('inspect-kind').value, severity: $('inspect-severity').value,
          note: $('inspect-finding').value || null }] : [],
        photos: photos.map(function (p) { return p.name; }) };
      return store('readwrite', function (s) { s.put({ client_id: cid, record: record, photos: photos }); }).then(function () {
        $('inspect-form').reset();
        fillChecklist();
        note('已保存 Saved on this phone');
        return showQueue();
      }).then(function () {
        document.dispatchEvent(new CustomEvent('riskatlas:queued', { detail: { client_id: cid } }));
        return sync();
      });
    });
  }

  // --- a site's history ----------------------------------------------------------------------------
  function history() {
    var site = $('inspect-site').value;
    if (!site) return;
    fetch(cfg.history.replace('{key}', encodeURIComponent(site)), { headers: headers() }).then(function (r) { return r.json(); })
      .then(function (doc) {
        var names = { inspection: '检查 inspection', finding: '问题 finding', 'case-opened': '立案 case opened',
          'case-follow-up': '复查 follow-up', 'case-closed': '结案 closed' };
        $('inspect-history').innerHTML = (doc.events || []).map(function (ev) {
          return '<li data-kind="' + esc(ev.kind) + '">' + esc(String(ev.at).slice(0, 16).replace('T', ' ')) + ' ' +
            esc(names[ev.kind] || ev.kind) + ' · ' + esc(ev.city) + ' · ' + esc(ev.by) +
            (ev.detail && ev.detail.type ? ' · ' + esc(ev.detail.type) + ' (' + esc(ev.detail.severity) + ')' : '') + '</li>';
        }).join('') || '<li>无记录 No history</li>';
      }).catch(function () { $('inspect-history').innerHTML = '<li>离线 Offline</li>'; });
  }

  // --- the section ---------------------------------------------------------------------------------
  var section = document.createElement('section');
  section.id = 'inspect';
  section.innerHTML = '<h2>现场检查 Inspection</h2>' +
    '<form id="inspect-form"><label>API key <input id="inspect-key" type="password" autocomplete="off"></label>' +
    '<label>任务 Task <select id="inspect-task"></select></label>' +
    '<label>风险源 Site <select id="inspect-site"></select></label>' +
    '<button type="button" id="inspect-history-btn">历史 History</button><ol id="inspect-history"></ol>' +
    '<div id="inspect-items"></div>' +
    '<fieldset><legend>问题 Finding</legend><select id="inspect-kind"></select>' +
    '<select id="inspect-severity"><option value="low">轻 low</option><option value="medium">中 medium</option>' +
    '<option value="high">重 high</option></select><input id="inspect-finding" placeholder="说明 note"></fieldset>' +
    '<label>照片 Photos <input id="inspect-photos" type="file" accept="image/jpeg,image/png" capture="environment" multiple></label>' +
    '<label>备注 Note <input id="inspect-text"></label>' +
    '<button type="submit" id="inspect-save">保存 Save</button></form>' +
    '<p id="inspect-note" role="status"></p><div id="inspect-queue" data-count="0"></div>';
  document.body.insertBefore(section, document.querySelector('footer'));
  $('inspect-key').value = kept('key') || '';
  $('inspect-key').addEventListener('change', function () { keep('key', $('inspect-key').value.trim()); refresh().then(sync); });
  $('inspect-task').addEventListener('change', fillSites);
  $('inspect-site').addEventListener('change', fillChecklist);
  $('inspect-form').addEventListener('submit', save);
  $('inspect-history-btn').addEventListener('click', history);
  window.addEventListener('online', function () { refresh().then(sync); });
  fillTasks();
  showQueue().then(function () { return refresh(); }).then(sync).then(function () {
    document.documentElement.dataset.inspect = 'ready';
  });
})();
