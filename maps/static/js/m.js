/* The inspector's phone page: the phone's position (or a typed one) -> GET /nearby -> the nearest risk
 * sites, each with a bearing arrow, distance, level and category, a small map around the position, and
 * the details on tap. Phones in China report GCJ-02, so positions are sent with crs=gcj02 unless the
 * inspector picks WGS84; the page says which. Inlined into /m, with no library, to stay small.
 */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent);
  var lang = 'zh';
  var last = null;
  var $ = function (id) { return document.getElementById(id); };

  function t(key) { return cfg.ui[key] ? cfg.ui[key][lang] : key; }
  function v(field, value) {
    var names = cfg.values[field];
    return names && names[value] ? names[value][lang] : value;
  }
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function metres(d) { return d < 1000 ? Math.round(d) + ' m' : (d / 1000).toFixed(d < 10000 ? 2 : 1) + ' km'; }
  function colour(level) { return cfg.palette[level] || cfg.missing_color; }
  function shape(category, fill, size) {
    return '<svg width="' + size + '" height="' + size + '" viewBox="0 0 24 24"><path d="' +
      (cfg.shapes[category] || cfg.shapes.other) + '" fill="' + fill + '" stroke="#fff" stroke-width="1.5"/></svg>';
  }

  function words() {
    document.querySelectorAll('[data-t]').forEach(function (el) { el.textContent = t(el.dataset.t); });
    $('lang').textContent = t('language');
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    $('full').href = cfg.map;
  }

  /** Say where the page stands; `state` (data-state) is one of locating, no_position, loading, done, error. */
  function status(text, state) {
    $('status').textContent = text;
    $('status').dataset.state = state;
  }

  function crsName(crs) { return t(crs === 'gcj02' ? 'crs_gcj02' : 'crs_wgs84'); }

  function row(s) {
    var light = !s.level || s.level === 'general';
    var level = s.level ? v('risk_level', s.level) : cfg.missing_label[lang];
    var facts = [['category', v('category', s.category)], ['address', s.address], ['industry', s.industry],
      ['status', v('status', s.status)], ['county_code', [s.city, s.county].filter(Boolean).join(' ')],
      ['contact', s.contact], ['lonlat', s.x.toFixed(6) + ', ' + s.y.toFixed(6) + ' (' + ($('crs').value === 'gcj02' ? 'GCJ-02' : 'WGS84') + ')']];
    return '<li data-key="' + esc(s.key) + '" data-distance="' + s.distance_m + '">' +
      '<div class="top"><span class="arrow" title="' + Math.round(s.bearing_deg) + '°"><span style="transform:rotate(' +
      s.bearing_deg + 'deg)">↑</span></span><span class="name">' + esc(s.name) + '</span>' +
      '<span class="dist">' + metres(s.distance_m) + '</span></div>' +
      '<div class="meta"><span class="lvl' + (light ? ' light' : '') + '" style="background:' + colour(s.level) + '">' +
      esc(level) + '</span>' + shape(s.category, '#555', 14) + '<span>' + esc(v('category', s.category)) + '</span>' +
      '<span>' + esc(s.county || s.city || '') + '</span></div>' +
      '<div class="more"><table>' + facts.filter(function (f) { return f[1]; }).map(function (f) {
        var title = cfg.titles[f[0]] ? cfg.titles[f[0]][lang] : t('lon') + ', ' + t('lat');
        return '<tr><td>' + esc(title) + '</td><td>' + esc(f[1]) + '</td></tr>';
      }).join('') + '</table></div></li>';
  }

  /** A small map: you in the middle, rings at half and full radius, each site at its distance and bearing. */
  function mini(doc) {
    var r = doc.radius_m;
    var parts = ['<circle class="ring" r="50"/><circle class="ring" r="100"/>',
      '<text x="3" y="-40">' + metres(r / 2) + '</text><text x="3" y="-90">' + metres(r) + '</text>',
      '<text x="-4" y="-102" style="font-weight:700;fill:#333">N</text>'];
    doc.sites.slice().reverse().forEach(function (s) {
      var k = 100 * Math.min(s.distance_m / r, 1);
      var a = s.bearing_deg * Math.PI / 180;
      var x = (k * Math.sin(a)).toFixed(1), y = (-k * Math.cos(a)).toFixed(1);
      parts.push('<path transform="translate(' + x + ',' + y + ') scale(0.45) translate(-12,-12)" d="' +
        (cfg.shapes[s.category] || cfg.shapes.other) + '" fill="' + colour(s.level) + '" stroke="#fff" stroke-width="2"' +
        ' data-key="' + esc(s.key) + '"/>');
    });
    parts.push('<circle r="4" fill="#1565c0" stroke="#fff" stroke-width="2"/>');
    $('mini').innerHTML = parts.join('');
    $('mini').hidden = false;
  }

  function render() {
    if (!last) return;
    var doc = last;
    status(t('crs_note') + ' ' + crsName($('crs').value) + ' · ' + doc.count + ' / ' + metres(doc.radius_m), 'done');
    $('sites').innerHTML = doc.count ? doc.sites.map(row).join('') : '<li>' + esc(t('none_near')) + '</li>';
    mini(doc);
  }

  function lookup() {
    var lon = parseFloat($('lon').value), lat = parseFloat($('lat').value);
    if (!isFinite(lon) || !isFinite(lat)) { status(t('geo_failed'), 'no_position'); return; }
    status(t('loading'), 'loading');
    var q = '?x=' + lon + '&y=' + lat + '&radius=' + $('radius').value + '&limit=30&crs=' + $('crs').value;
    fetch(cfg.nearby + q).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.description || r.status);
        return body;
      });
    }).then(function (doc) { last = doc; render(); })
      .catch(function (e) { status(String(e.message || e), 'error'); });
  }

  function locate() {
    if (!navigator.geolocation) { status(t('geo_failed'), 'no_position'); return; }
    status(t('locating'), 'locating');
    navigator.geolocation.getCurrentPosition(function (pos) {
      $('lon').value = pos.coords.longitude.toFixed(6);
      $('lat').value = pos.coords.latitude.toFixed(6);
      $('crs').value = 'gcj02';  // what phones in China report; the page says so next to the results
      lookup();
    }, function () { status(t('geo_failed'), 'no_position'); }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  }

  $('where').addEventListener('submit', function (e) { e.preventDefault(); lookup(); });
  $('locate').addEventListener('click', locate);
  $('lang').addEventListener('click', function () { lang = lang === 'zh' ? 'en' : 'zh'; words(); render(); });
  $('sites').addEventListener('click', function (e) {
    var li = e.target.closest('li[data-key]');
    if (li) li.classList.toggle('open');
  });
  words();
  locate();
})();
