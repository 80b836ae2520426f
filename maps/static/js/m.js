/* The inspector's phone page: the phone's position (or a typed one) -> GET /nearby -> the nearest risk
 * sites, active ones first, each with a bearing arrow, distance, level, status and category, a small map
 * around the position, and on tap the details, navigation in AMap or Baidu and the duty contact's phone
 * (for roles that may see it). The browser's own position is WGS84 (the Geolocation API); coordinates
 * typed from AMap or Tencent are GCJ-02; the page says which it used. It keeps the last results and the
 * sites of the cities it has seen (localStorage) and, with no network, searches those on this phone.
 * Inlined into /m after m-geo.js (RiskatlasGeo), with no library, to stay small.
 */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent);
  var G = RiskatlasGeo;
  var lang = 'zh';
  var last = null;
  var origin = 'typed';  // 'device' (the browser's position, WGS84) or 'typed'
  var KEEP = 'riskatlas.m.';
  var DAY_MS = 12 * 3600 * 1000;  // a city's kept sites are refreshed after this long
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
  function kept(name) { try { return JSON.parse(localStorage.getItem(KEEP + name)); } catch (e) { return null; } }
  function keep(name, value) { try { localStorage.setItem(KEEP + name, JSON.stringify(value)); } catch (e) { /* full: keep going */ } }

  function words() {
    document.querySelectorAll('[data-t]').forEach(function (el) { el.textContent = t(el.dataset.t); });
    $('lang').textContent = t('language');
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    $('full').href = cfg.map;
  }

  /** Say where the page stands; `state` (data-state) is one of locating, no_position, loading, done, offline, error. */
  function status(text, state) {
    $('status').textContent = text;
    $('status').dataset.state = state;
  }

  function active(s) { return !s.status || s.status === 'active'; }
  /** Active sites first, each group nearest first (the server answers nearest first). */
  function ordered(sites) {
    return sites.filter(active).concat(sites.filter(function (s) { return !active(s); }));
  }
  /** The site's position in GCJ-02, whatever the answer's CRS. */
  function gcj(s, crs) { return crs === 'gcj02' ? [s.x, s.y] : G.wgsToGcj(s.x, s.y); }

  function actions(s, crs) {
    var g = gcj(s, crs), b = G.gcjToBd(g[0], g[1]);
    var name = encodeURIComponent(s.name);
    var amap = 'https://uri.amap.com/navigation?to=' + g[0].toFixed(6) + ',' + g[1].toFixed(6) + ',' + name +
      '&mode=car&coordinate=gaode&callnative=1&src=riskatlas';
    var baidu = 'https://api.map.baidu.com/direction?destination=latlng:' + b[1].toFixed(6) + ',' + b[0].toFixed(6) +
      '|name:' + name + '&coord_type=bd09ll&mode=driving&output=html&src=riskatlas';
    var out = '<a class="go amap" href="' + esc(amap) + '" target="_blank" rel="noopener">' + esc(t('navigate_amap')) + '</a>' +
      '<a class="go baidu" href="' + esc(baidu) + '" target="_blank" rel="noopener">' + esc(t('navigate_baidu')) + '</a>';
    var phone = s.contact && String(s.contact).match(/\+?\d[\d -]{5,}\d/);
    if (phone) out += '<a class="go call" href="tel:' + esc(phone[0].replace(/[ -]/g, '')) + '">' + esc(t('call')) + ' ' + esc(phone[0]) + '</a>';
    return '<div class="actions">' + out + '</div>';
  }

  function row(s, crs) {
    var light = !s.level || s.level === 'general';
    var level = s.level ? v('risk_level', s.level) : cfg.missing_label[lang];
    var facts = [['category', v('category', s.category)], ['address', s.address], ['industry', s.industry],
      ['status', v('status', s.status)], ['county_code', [s.city, s.county].filter(Boolean).join(' ')],
      ['contact', s.contact], ['lonlat', s.x.toFixed(6) + ', ' + s.y.toFixed(6) + ' (' + (crs === 'gcj02' ? 'GCJ-02' : 'WGS84') + ')']];
    var badge = active(s) ? '' : '<span class="st">' + esc(v('status', s.status)) + '</span>';
    return '<li data-key="' + esc(s.key) + '" data-distance="' + s.distance_m + '" data-status="' + esc(s.status || '') +
      '"' + (active(s) ? '' : ' class="inactive"') + '>' +
      '<div class="top"><span class="arrow" title="' + Math.round(s.bearing_deg) + '°"><span style="transform:rotate(' +
      s.bearing_deg + 'deg)">↑</span></span><span class="name">' + esc(s.name) + '</span>' +
      '<span class="dist">' + metres(s.distance_m) + '</span></div>' +
      '<div class="meta"><span class="lvl' + (light ? ' light' : '') + '" style="background:' + colour(s.level) + '">' +
      esc(level) + '</span>' + badge + shape(s.category, '#555', 14) + '<span>' + esc(v('category', s.category)) + '</span>' +
      '<span>' + esc(s.county || s.city || '') + '</span></div>' +
      '<div class="more"><table>' + facts.filter(function (f) { return f[1]; }).map(function (f) {
        var title = cfg.titles[f[0]] ? cfg.titles[f[0]][lang] : t('lon') + ', ' + t('lat');
        return '<tr><td>' + esc(title) + '</td><td>' + esc(f[1]) + '</td></tr>';
      }).join('') + '</table>' + actions(s, crs) + '</div></li>';
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

  /** When nothing was found: offer the larger radii, and say so when the point is outside the region. */
  function empty(doc) {
    if (doc.place && !doc.place.in_region) return '<li class="none" data-why="outside">' + esc(t('outside_region')) + '</li>';
    var where = doc.place ? ' ' + t('in_place') + ': ' + [lang === 'zh' ? doc.place.city : doc.place.city_en,
      lang === 'zh' ? doc.place.county : doc.place.county_en].filter(Boolean).join(' ') : '';
    var wider = Array.prototype.map.call($('radius').options, function (o) { return Number(o.value); })
      .filter(function (r) { return r > doc.radius_m; });
    return '<li class="none" data-why="radius">' + esc(t('none_near') + where) + '<div class="actions">' +
      wider.map(function (r) { return '<button type="button" class="widen" data-radius="' + r + '">' + esc(t('widen')) + ' ' + metres(r) + '</button>'; }).join('') +
      '</div></li>';
  }

  function render() {
    if (!last) return;
    var doc = last;
    var said = [t(origin === 'device' ? 'crs_device' : 'crs_typed') + ' · ' + (doc.crs === 'gcj02' ? 'GCJ-02' : 'WGS84'),
      doc.count + ' / ' + metres(doc.radius_m)];
    if (doc.offline) said.unshift(t('offline') + (lang === 'zh' ? '：' : ': ') + t('offline_from') + ' ' + doc.offline);
    if (doc.previous) said.unshift(t('previous'));
    status(said.join(' · '), doc.offline ? 'offline' : doc.previous ? 'previous' : 'done');
    $('sites').innerHTML = doc.count ? doc.sites.map(function (s) { return row(s, doc.crs); }).join('') : empty(doc);
    mini(doc);
  }

  /** The sites kept on this phone, searched as /nearby would: geodesic distance and bearing, within the radius. */
  function offlineSearch(wlon, wlat, radius, crs) {
    var cities = kept('cities') || {};
    var found = [], oldest = null;
    Object.keys(cities).forEach(function (code) {
      var c = kept('sites.' + code);
      if (!c) return;
      oldest = oldest && oldest < c.at ? oldest : c.at;
      c.sites.forEach(function (s) {
        var g = G.inverse(wlon, wlat, s.lon, s.lat);
        if (g.distance > radius) return;
        var p = crs === 'gcj02' ? G.wgsToGcj(s.lon, s.lat) : [s.lon, s.lat];
        found.push(Object.assign({}, s, { city: place(s.city_code), county: place(s.county_code), x: p[0], y: p[1],
          distance_m: Math.round(g.distance * 10) / 10, bearing_deg: Math.round(g.bearing * 10) / 10 }));
      });
    });
    if (!oldest) return null;
    found.sort(function (a, b) { return a.distance_m - b.distance_m; });
    var sites = ordered(found).slice(0, 30);
    var doc = { sites: sites, count: sites.length, radius_m: radius, crs: crs, offline: new Date(oldest).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en') };
    if (!sites.length) doc.place = offlinePlace(wlon, wlat);
    return doc;
  }
  function place(code) {
    var p = (kept('places') || {})[code];
    return p ? (lang === 'zh' ? p[0] : p[1]) : '';
  }
  /** Without a network, "in the region" is "inside a kept city's extent" (a box: the server's answer is exact). */
  function offlinePlace(lon, lat) {
    var boxes = kept('extents') || [];
    var inside = boxes.some(function (b) { return lon >= b[0] && lat >= b[1] && lon <= b[2] && lat <= b[3]; });
    return boxes.length ? { in_region: inside } : null;
  }

  /** Keep what searching offline needs: names and extents of the cities, and every site of the cities seen. */
  function keepForOffline(codes) {
    if (!kept('places')) {
      fetch(cfg.labels).then(function (r) { return r.ok ? r.json() : null; }).then(function (doc) {
        if (!doc) return;
        var places = {};
        doc.areas.forEach(function (a) { places[a.code] = [a.name, a.name_en || a.name]; });
        keep('places', places);
        keep('extents', doc.areas.filter(function (a) { return a.level === 'city'; }).map(function (a) { return a.bbox; }));
      }).catch(function () { /* next time */ });
    }
    var cities = kept('cities') || {};
    codes.forEach(function (code) {
      if (cities[code] && Date.now() - cities[code] < DAY_MS) return;
      var sites = [];
      var next = cfg.items + '?limit=5000&filter=' + encodeURIComponent("city_code='" + code + "'");
      (function page(url) {
        fetch(url, withKey({ Accept: 'application/geo+json' })).then(function (r) { return r.ok ? r.json() : null; })
          .then(function (doc) {
            if (!doc) return;
            doc.features.forEach(function (f) {
              var p = f.properties, c = f.geometry.coordinates;
              sites.push({ key: p.key || f.id, name: p.name, category: p.category, level: p.risk_level, industry: p.industry,
                address: p.address, status: p.status, contact: p.contact, city_code: p.city_code, county_code: p.county_code,
                lon: c[0], lat: c[1] });
            });
            var link = (doc.links || []).filter(function (l) { return l.rel === 'next'; })[0];
            if (link) return page(link.href);
            keep('sites.' + code, { at: Date.now(), sites: sites });
            cities = kept('cities') || {};
            cities[code] = Date.now();
            keep('cities', cities);
            document.dispatchEvent(new CustomEvent('riskatlas:kept', { detail: { city: code, sites: sites.length } }));
          }).catch(function () { /* next time */ });
      })(next);
    });
  }

  /** The API key this phone was given (the inspection form's, else the duty officer's for this tab): with
   * it the server answers with what that role may see, such as a site's duty contact to call. */
  function apiKey() {
    try { var k = JSON.parse(localStorage.getItem('riskatlas.m.inspect.key')); if (k) return k; } catch (e) { /* none */ }
    try { return sessionStorage.getItem('riskatlas.incidents.key'); } catch (e) { return null; }
  }
  function withKey(h) {
    var k = apiKey();
    if (k) h['X-API-Key'] = k;
    return { headers: h };
  }

  function lookup() {
    var x = parseFloat($('lon').value), y = parseFloat($('lat').value), crs = $('crs').value;
    var radius = Number($('radius').value);
    if (!isFinite(x) || !isFinite(y)) { status(t('geo_failed'), 'no_position'); return; }
    status(t('loading'), 'loading');
    var q = '?x=' + x + '&y=' + y + '&crs=' + crs;
    fetch(cfg.nearby + q + '&radius=' + radius + '&limit=30', withKey({})).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.status >= 500) throw { server: r.status };
        if (!r.ok) throw new Error(body.description || r.status);
        return body;
      });
    }, function () { throw { offline: true }; }).then(function (doc) {
      doc.crs = crs;
      doc.sites = ordered(doc.sites);
      keep('last', doc);
      keepForOffline(doc.sites.map(function (s) { return s.city_code; }).filter(function (c, i, all) { return c && all.indexOf(c) === i; }));
      if (doc.count) { last = doc; render(); return; }
      return fetch(cfg.where + q).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) { doc.place = p; }, function () { /* say less */ })
        .then(function () { last = doc; render(); });
    }).catch(function (e) {
      if (!e || !(e.offline || e.server)) { status(String(e && e.message || e), 'error'); return; }
      // No network, or no working server behind it (5xx): search what this phone keeps.
      var w = crs === 'gcj02' ? G.gcjToWgs(x, y) : [x, y];
      var doc = offlineSearch(w[0], w[1], radius, crs);
      if (!doc) {
        status(e && e.server ? t('server_error') + ' (' + e.server + ')' : t('offline_none'), 'offline');
        return;
      }
      last = doc;
      render();
    });
  }

  function locate() {
    if (!navigator.geolocation) { status(t('geo_failed'), 'no_position'); return; }
    status(t('locating'), 'locating');
    navigator.geolocation.getCurrentPosition(function (pos) {
      $('lon').value = pos.coords.longitude.toFixed(6);
      $('lat').value = pos.coords.latitude.toFixed(6);
      $('crs').value = 'CRS84';  // the Geolocation API reports WGS84; the page says so next to the results
      origin = 'device';
      lookup();
    }, function () { status(t('geo_failed'), 'no_position'); }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  }

  $('where').addEventListener('submit', function (e) { e.preventDefault(); origin = 'typed'; lookup(); });
  $('lon').addEventListener('input', function () { origin = 'typed'; });
  $('lat').addEventListener('input', function () { origin = 'typed'; });
  $('locate').addEventListener('click', locate);
  $('lang').addEventListener('click', function () { lang = lang === 'zh' ? 'en' : 'zh'; words(); render(); });
  $('sites').addEventListener('click', function (e) {
    var wide = e.target.closest('button.widen');
    if (wide) { $('radius').value = wide.dataset.radius; lookup(); return; }
    if (e.target.closest('.actions')) return;
    var li = e.target.closest('li[data-key]');
    if (li) li.classList.toggle('open');
  });
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register(cfg.worker, { scope: cfg.scope }).catch(function () { /* the page works without it */ });
  }
  words();
  last = kept('last');
  if (last) {  // the last results, said to be so, until a new search answers
    last.previous = true;
    render();
  }
  locate();
})();
