/* Monitoring stations by their latest state on the planner's map, and a chart of the last 7 / 30 days in
 * the station's popup.
 *
 * One request (/observations/latest) gives every station's state: air by the colour of its hourly AQI
 * category (HJ 633-2012 Appendix A), water by its latest GB 3838 class against its target class. The
 * popup's chart reads /stations/{key}/series: the hourly AQI for air, the class of each sample (worst
 * factor) for water, drawn as inline SVG (no library). RA.stations.loaded resolves once the layer is drawn;
 * each chart sets data-ready on its figure when drawn (the browser tests wait on both).
 */
(function (RA) {
  'use strict';

  var LAYER = 'station-state';
  var NO_DATA = '#9E9E9E';
  var AQI_COLOURS = [[50, '#00E400'], [100, '#FFFF00'], [150, '#FF7E00'], [200, '#FF0000'], [300, '#99004C'], [Infinity, '#7E0023']];
  var TEXT = {
    zh: { title: '监测站最新状态', air: '空气：小时AQI类别', water: '水：最新水质类别 vs 目标', none: '暂无数据',
          days7: '近7天', days30: '近30天', aqi: '小时AQI', cls: '水质类别（最差单项）', target: '目标',
          nodata: '该时段无数据', loading: '读取中…', at: '时间', primary: '首要污染物' },
    en: { title: 'Stations: latest state', air: 'Air: hourly AQI category', water: 'Water: latest class vs target',
          none: 'no data', days7: 'last 7 days', days30: 'last 30 days', aqi: 'hourly AQI',
          cls: 'water class (worst factor)', target: 'target', nodata: 'no data in this period', loading: 'loading…',
          at: 'time', primary: 'primary pollutant' }
  };
  var resolveLoaded;
  var api = RA.stations = { loaded: new Promise(function (r) { resolveLoaded = r; }), data: null, byKey: {} };

  function t(k) { return TEXT[RA.state.lang === 'en' ? 'en' : 'zh'][k]; }

  function legend(doc) {
    var old = document.getElementById('station-legend');
    if (old) old.remove();
    var box = document.createElement('section');
    box.id = 'station-legend';
    var cats = (api.categories || []).map(function (c) {
      return '<div><span class="swatch dot" style="background:' + c.hex + '"></span> ' + RA.esc(c.name_zh) +
        ' <small>' + RA.esc(c.name_en) + ' ' + (c.aqi_range[1] == null ? '>' + (c.aqi_range[0] - 1) :
        c.aqi_range[0] + '–' + c.aqi_range[1]) + '</small></div>';
    }).join('');
    var water = ((doc.legend || {}).water || []).map(function (w) {
      return '<div><span class="swatch dot" style="background:' + w.hex + '"></span> ' + RA.esc(w.zh) +
        ' <small>' + RA.esc(w.en) + '</small></div>';
    }).join('');
    box.innerHTML = '<h2>' + RA.esc(t('title')) + '</h2><h3>' + RA.esc(t('air')) + '</h3><div class="classes">' + cats +
      '</div><h3>' + RA.esc(t('water')) + '</h3><div class="classes">' + water + '</div><div class="classes">' +
      '<div><span class="swatch dot" style="background:' + NO_DATA + '"></span> ' + RA.esc(t('none')) + '</div></div>';
    document.getElementById('panel').appendChild(box);
  }

  function followSwitcher() {
    var box = document.querySelector('#switcher input[data-layer="monitoring_station"]');
    var on = !box || box.checked;
    if (RA.map.getLayer(LAYER)) RA.map.setLayoutProperty(LAYER, 'visibility', on ? 'visible' : 'none');
  }

  api.init = function () {
    var map = RA.map;
    RA.getJSON(RA.cfg.stations).then(function (doc) {
      api.data = doc;
      api.categories = (doc.legend || {}).air || [];
      doc.features.forEach(function (f) {
        api.byKey[f.id] = Object.assign({ lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1] }, f.properties);
      });
      map.addSource(LAYER, { type: 'geojson', data: doc });
      map.addLayer({
        id: LAYER, type: 'circle', source: LAYER,
        paint: {
          'circle-radius': ['interpolate', ['linear'], ['zoom'], 6, 5, 12, 9],
          'circle-color': ['coalesce', ['get', 'state_colour'], NO_DATA],
          'circle-stroke-color': ['case', ['==', ['get', 'medium'], 'water'], '#0D47A1', '#263238'],
          'circle-stroke-width': 2
        }
      });
      legend(doc);
      followSwitcher();
      document.getElementById('switcher').addEventListener('change', followSwitcher);
      map.once('idle', function () { resolveLoaded(doc.features.length); });
    }).catch(function (err) {
      api.error = String(err);
      resolveLoaded(0);
    });
  };

  api.relabel = function () { if (api.data) legend(api.data); };

  /** The popup's part for a station: its state, and a chart with 7 / 30 day buttons. */
  api.popupHtml = function (key) {
    var p = api.byKey[key];
    if (!p) return '';
    var s = p.state;
    var line = '';
    if (s && p.medium === 'air') {
      line = '<p class="state"><span class="badge" style="background:' + s.colour + '">AQI ' + s.aqi + '</span> ' +
        RA.esc(s.name_zh) + ' <small>' + RA.esc(s.name_en) + '</small>' +
        (s.primary.length ? '<br><small>' + RA.esc(t('primary')) + ': ' + RA.esc((RA.state.lang === 'en' ? s.primary_en : s.primary_zh).join(', ')) + '</small>' : '') + '</p>';
    } else if (s) {
      line = '<p class="state"><span class="badge" style="background:' + s.colour + '">' + RA.esc(s.class_zh) + '</span> ' +
        RA.esc(t('target')) + ' ' + RA.esc(s.target_class || '—') + ' · ' + RA.esc(RA.state.lang === 'en' ? s.label_en : s.label_zh) + '</p>';
    } else {
      line = '<p class="state">' + RA.esc(t('none')) + '</p>';
    }
    var when = p.observed_at ? '<small>' + RA.esc(t('at')) + ' ' + RA.esc(p.observed_at.replace('T', ' ').slice(0, 16)) + '</small>' : '';
    return '<div class="station-state" data-key="' + RA.esc(key) + '">' + line + when +
      (p.observed_at ? '<div class="chart-buttons"><button type="button" data-days="7">' + RA.esc(t('days7')) +
        '</button> <button type="button" data-days="30">' + RA.esc(t('days30')) + '</button></div>' +
        '<figure class="station-chart"></figure>' : '') + '</div>';
  };

  /** Draw the chart in the popup element (7 days first) and wire its buttons. */
  api.fill = function (el, key) {
    var box = el && el.querySelector('.station-state[data-key]');
    if (!box || !box.querySelector('.station-chart')) return;
    box.querySelectorAll('button[data-days]').forEach(function (b) {
      b.addEventListener('click', function () { chart(box, key, Number(b.dataset.days)); });
    });
    chart(box, key, 7);
  };

  function isoMinusDays(iso, days) {
    var d = new Date(new Date(iso).getTime() - days * 86400000 + 1000);
    return d.toISOString().replace(/\.\d+Z$/, 'Z');
  }

  function chart(box, key, days) {
    var p = api.byKey[key];
    var fig = box.querySelector('.station-chart');
    fig.removeAttribute('data-ready');
    fig.innerHTML = '<figcaption>' + RA.esc(t('loading')) + '</figcaption>';
    box.querySelectorAll('button[data-days]').forEach(function (b) { b.classList.toggle('on', Number(b.dataset.days) === days); });
    var range = isoMinusDays(p.observed_at, days) + '/..';
    var url = '/stations/' + encodeURIComponent(key) + '/series?datetime=' + encodeURIComponent(range) +
      (p.medium === 'air' ? '&parameter=aqi' : '');
    RA.getJSON(RA.cfg.root + url).then(function (doc) {
      var pts = p.medium === 'air' ? airPoints(doc) : waterPoints(doc);
      fig.innerHTML = svg(pts, p.medium, p.target_class, days) + '<figcaption>' +
        RA.esc(p.medium === 'air' ? t('aqi') : t('cls')) + ' · ' + RA.esc(t('days' + days)) + '</figcaption>';
      fig.dataset.points = String(pts.length);
      fig.dataset.days = String(days);
      fig.dataset.ready = '1';
    }).catch(function (e) {
      fig.innerHTML = '<figcaption>' + RA.esc(String(e)) + '</figcaption>';
      fig.dataset.ready = 'error';
    });
  }

  function airPoints(doc) {
    var a = doc.aqi || { t: [], aqi: [], colour: [] };
    var out = [];
    for (var i = 0; i < a.t.length; i++) if (a.aqi[i] != null) out.push({ t: Date.parse(a.t[i]), y: a.aqi[i], c: a.colour[i] });
    return out;
  }

  var CLASS_COLOURS = { 1: '#1565C0', 2: '#1E88E5', 3: '#2E7D32', 4: '#F9A825', 5: '#EF6C00', 6: '#C62828' };
  function waterPoints(doc) {
    var worst = {};
    (doc.series || []).forEach(function (s) {
      if (!s.class_num || s.parameter === 'tn') return;
      for (var i = 0; i < s.t.length; i++) {
        if (s.class_num[i] == null || ['valid', 'estimated'].indexOf(s.flag[i]) < 0) continue;
        worst[s.t[i]] = Math.max(worst[s.t[i]] || 0, s.class_num[i]);
      }
    });
    return Object.keys(worst).sort().map(function (k) { return { t: Date.parse(k), y: worst[k], c: CLASS_COLOURS[worst[k]] }; });
  }

  function svg(pts, medium, target, days) {
    var W = 300, H = 130, L = 30, R = 6, T = 8, B = 20;
    if (!pts.length) return '<svg width="' + W + '" height="40"><text x="' + L + '" y="24">' + RA.esc(t('nodata')) + '</text></svg>';
    var t1 = pts[pts.length - 1].t, t0 = t1 - days * 86400000;
    var ymax = medium === 'air' ? Math.max(100, Math.min(500, Math.ceil(Math.max.apply(null, pts.map(function (q) { return q.y; })) / 50) * 50)) : 6;
    var ymin = medium === 'air' ? 0 : 1;
    var x = function (v) { return L + (W - L - R) * (v - t0) / (t1 - t0 || 1); };
    var y = function (v) { return T + (H - T - B) * (1 - (v - ymin) / (ymax - ymin)); };
    var parts = ['<svg class="chart" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '" role="img">'];
    var ticks = medium === 'air' ? [0, 50, 100, 150, 200, 300, 400, 500].filter(function (v) { return v <= ymax; })
                                 : [1, 2, 3, 4, 5, 6];
    var names = { 1: 'I', 2: 'II', 3: 'III', 4: 'IV', 5: 'V', 6: '劣V' };
    ticks.forEach(function (v) {
      parts.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#e0e0e0"/>' +
        '<text x="' + (L - 3) + '" y="' + (y(v) + 3) + '" text-anchor="end" font-size="9" fill="#666">' + (medium === 'air' ? v : names[v]) + '</text>');
    });
    if (medium === 'air') {
      // Category bands: a thin strip at the left in each category's colour.
      var lo = 0;
      AQI_COLOURS.forEach(function (b) {
        var hi = Math.min(b[0], ymax);
        if (lo < ymax) parts.push('<rect x="' + (L - 2) + '" width="2" y="' + y(hi) + '" height="' + (y(lo) - y(hi)) + '" fill="' + b[1] + '"/>');
        lo = b[0];
      });
    } else if (target) {
      var tv = { I: 1, II: 2, III: 3, IV: 4, V: 5 }[target];
      parts.push('<line class="target" x1="' + L + '" x2="' + (W - R) + '" y1="' + y(tv) + '" y2="' + y(tv) + '" stroke="#0D47A1" stroke-dasharray="4 3"/>' +
        '<text x="' + (W - R) + '" y="' + (y(tv) - 3) + '" text-anchor="end" font-size="9" fill="#0D47A1">' + RA.esc(t('target')) + ' ' + RA.esc(target) + '</text>');
    }
    var line = pts.map(function (q) { return x(q.t).toFixed(1) + ',' + y(q.y).toFixed(1); }).join(' ');
    parts.push('<polyline points="' + line + '" fill="none" stroke="#607D8B" stroke-width="1"/>');
    var r = pts.length > 300 ? 1.2 : 2.2;
    pts.forEach(function (q) {
      parts.push('<circle cx="' + x(q.t).toFixed(1) + '" cy="' + y(q.y).toFixed(1) + '" r="' + r + '" fill="' + q.c + '"/>');
    });
    var day = function (v) { var d = new Date(v + 8 * 3600000); return (d.getUTCMonth() + 1) + '-' + d.getUTCDate(); };
    parts.push('<text x="' + L + '" y="' + (H - 6) + '" font-size="9" fill="#666">' + day(t0) + '</text>' +
      '<text x="' + (W - R) + '" y="' + (H - 6) + '" font-size="9" fill="#666" text-anchor="end">' + day(t1) + '</text></svg>');
    return parts.join('');
  }
})(window.RA = window.RA || {});
