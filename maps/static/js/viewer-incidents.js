/* Live incident notices (issue 11) on the map and the phone page.
 *
 * A duty officer enters an API key (kept for this tab only, sessionStorage); the page then listens to
 * GET /incidents/stream (server-sent events, read with fetch so the key travels in a header, not in the
 * URL) and shows each new notice for the city as a visible alert with an acknowledge button.  Sound is
 * off by default; a checkbox turns a short tone on.  window.riskatlasIncidents(options) mounts it; the
 * map mounts it itself (this script's own address gives the root), the phone page from m-incidents.js.
 */
(function () {
  'use strict';
  var T = {
    title: ['突发事件通报', 'Incident notices'],
    key: ['值班密钥', 'Duty key'],
    connect: ['接收', 'Receive'],
    sound: ['声音', 'Sound'],
    listening: ['正在接收通报', 'Receiving notices'],
    ack: ['确认收到', 'Acknowledge'],
    acked: ['已确认', 'Acknowledged'],
    failed: ['连接中断，重试中', 'Connection lost, retrying'],
    refused: ['密钥无效', 'Key refused'],
    overdue: ['逾期未确认，已重发', 'Overdue: sent again'],
  };
  var STORE = 'riskatlas.incidents.key';

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function both(k) { return T[k][0] + ' / ' + T[k][1]; }

  function mount(opts) {
    var root = (opts && opts.root) || '';
    var host = (opts && opts.container) || document.body;
    var box = document.createElement('section');
    box.id = 'incident-alerts';
    box.setAttribute('aria-label', T.title[1]);
    // folded to one line until opened or until a notice arrives, so that it covers nothing of the page
    box.style.cssText = 'position:fixed;right:8px;bottom:28px;z-index:1000;max-width:22em;background:#fff;' +
      'border:2px solid #c62828;border-radius:6px;padding:2px 8px;font:13px sans-serif;box-shadow:0 2px 8px #0004';
    box.innerHTML = '<details id="incident-fold"><summary><strong>' + both('title') + '</strong></summary>' +
      '<form id="incident-key-form" style="margin:4px 0"><input id="incident-key" type="password" autocomplete="off" ' +
      'placeholder="' + both('key') + '" style="width:11em"> <button type="submit">' + both('connect') + '</button></form>' +
      '<label><input id="incident-sound" type="checkbox"> ' + both('sound') + '</label>' +
      '<p id="incident-status" role="status" style="margin:2px 0;color:#555"></p>' +
      '<ol id="incident-list" style="margin:0;padding-left:1.2em;max-height:40vh;overflow:auto"></ol></details>';
    host.appendChild(box);
    var $ = function (id) { return box.querySelector('#' + id); };
    var key = null;
    var seen = {};
    var stop = null;

    function status(text) { $('incident-status').textContent = text; }
    function headers() { return { 'X-API-Key': key, 'Accept': 'application/json' }; }

    function beep() {
      if (!$('incident-sound').checked) return;
      try {
        var ctx = new (window.AudioContext || window.webkitAudioContext)();
        var o = ctx.createOscillator();
        o.frequency.value = 880; o.connect(ctx.destination); o.start(); o.stop(ctx.currentTime + 0.4);
      } catch (e) { /* no audio: the alert is still shown */ }
    }

    function show(ev) {
      fetch(root + '/incidents/' + ev.incident, { headers: headers() }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (doc) {
        if (!doc) return;
        var n = null;
        doc.notices.forEach(function (x) { if (x.id === ev.notice) n = x; });
        if (!n) return;
        var id = 'incident-notice-' + n.id + (ev.msg_type === 'Overdue' ? '-o' : '');
        if (seen[id]) return;
        seen[id] = true;
        var li = document.createElement('li');
        li.id = id;
        li.setAttribute('role', 'alert');
        li.className = 'incident-alert';
        li.style.cssText = 'margin:4px 0;padding:4px;background:#ffebee';
        var head = ev.msg_type === 'Overdue' ? both('overdue') + ' — ' : '';
        li.innerHTML = '<div><b>' + esc(head + n.msg_type) + '</b> #' + esc(doc.id) + ' ' + esc(doc.title) + '</div>' +
          '<div>' + esc(n.jurisdiction_name) + ' · ' + esc(n.expected_arrival || '-') + '</div>';
        if (n.msg_type !== 'Cancel' && !n.acknowledged_at && key) {
          var b = document.createElement('button');
          b.type = 'button'; b.className = 'incident-ack'; b.textContent = both('ack');
          b.onclick = function () {
            b.disabled = true;
            fetch(root + '/incidents/' + doc.id + '/acknowledge', {
              method: 'POST', headers: Object.assign({ 'Content-Type': 'application/json' }, headers()),
              body: JSON.stringify({ notice_id: n.id })
            }).then(function (r) {
              b.textContent = r.ok ? both('acked') : (r.status + ' ' + both('ack'));
              if (r.ok) li.style.background = '#e8f5e9'; else b.disabled = false;
            });
          };
          li.appendChild(b);
        }
        $('incident-list').insertBefore(li, $('incident-list').firstChild);
        $('incident-fold').open = true;
        beep();
      });
    }

    function listen() {
      if (stop) stop();
      var controller = new AbortController();
      var closed = false;
      stop = function () { closed = true; controller.abort(); };
      fetch(root + '/incidents/stream', { headers: headers(), signal: controller.signal }).then(function (r) {
        if (r.status === 401 || r.status === 403) { status(both('refused')); closed = true; return; }
        if (!r.ok || !r.body) throw new Error(String(r.status));
        status(both('listening'));
        var reader = r.body.getReader();
        var dec = new TextDecoder();
        var buf = '';
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error('closed');
            buf += dec.decode(chunk.value, { stream: true });
            var i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              var block = buf.slice(0, i); buf = buf.slice(i + 2);
              var event = null, data = '';
              block.split('\n').forEach(function (line) {
                if (line.indexOf('event:') === 0) event = line.slice(6).trim();
                else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
              });
              if (event === 'notice' && data) show(JSON.parse(data));
            }
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        if (closed) return;
        status(both('failed'));
        setTimeout(listen, 3000);
      });
    }

    $('incident-key-form').addEventListener('submit', function (e) {
      e.preventDefault();
      key = $('incident-key').value.trim();
      if (!key) return;
      try { sessionStorage.setItem(STORE, key); } catch (err) { /* private mode: keep it in memory */ }
      listen();
    });
    try { key = sessionStorage.getItem(STORE); } catch (err) { key = null; }
    if (key) { $('incident-key').value = key; listen(); }
    return { show: show, stop: function () { if (stop) stop(); } };
  }

  window.riskatlasIncidents = mount;
  var me = document.currentScript;
  if (me && me.src && !me.hasAttribute('data-manual') && me.src.indexOf('/static/js/viewer-incidents.js') > 0) {
    var base = me.src.slice(0, me.src.indexOf('/static/js/viewer-incidents.js'));
    var start = function () { mount({ root: base.replace(/^https?:\/\/[^/]+/, '') }); };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
  }
})();
