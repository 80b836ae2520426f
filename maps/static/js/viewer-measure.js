/* Distance and area measure of the planner's map, on the WGS84 ellipsoid (GeographicLib's geodesics:
 * lengths along geodesics, areas of geodesic polygons), never in degrees or screen pixels.
 *
 * A control under the zoom buttons offers 测距 (distance) and 测面 (area). Each click adds a vertex, the
 * line follows the pointer, a double click (or Enter) finishes, Escape or the button again clears. While
 * measuring, clicks do not open popups and a double click does not zoom. The result is shown in a box and
 * kept in `window.riskmap.measure` ({mode, points, distance_m, area_m2, perimeter_m, done}) for tests.
 */
(function (RA) {
  'use strict';

  var SRC = 'measure';
  var GEOD = window.geodesic.Geodesic.WGS84;
  var TEXT = {
    zh: { distance: '测距', area: '测面', length: '距离', perimeter: '周长', surface: '面积',
          hint_distance: '单击添加点，双击结束，Esc 清除', hint_area: '单击添加顶点，双击闭合，Esc 清除',
          ellipsoid: 'WGS84 椭球面测量' },
    en: { distance: 'Distance', area: 'Area', length: 'Distance', perimeter: 'Perimeter', surface: 'Area',
          hint_distance: 'Click to add points, double-click to finish, Esc to clear',
          hint_area: 'Click to add corners, double-click to close, Esc to clear',
          ellipsoid: 'measured on the WGS84 ellipsoid' }
  };
  var state = { mode: null, points: [], cursor: null, done: false };
  var box, buttons = {};
  var api = {  // the measure's part of window.riskmap (made by viewer.js)
    set measure(r) { if (window.riskmap) window.riskmap.measure = r; }
  };

  function t(k) { return TEXT[RA.state.lang === 'en' ? 'en' : 'zh'][k]; }

  /** Length in metres of the geodesic polyline through `pts` ([lon, lat] pairs). */
  function lengthM(pts) {
    var s = 0;
    for (var i = 1; i < pts.length; i++) {
      s += GEOD.Inverse(pts[i - 1][1], pts[i - 1][0], pts[i][1], pts[i][0]).s12;
    }
    return s;
  }

  /** Area (m², unsigned) and perimeter (m) of the geodesic polygon with corners `pts`. */
  function areaM2(pts) {
    var poly = GEOD.Polygon(false);
    pts.forEach(function (p) { poly.AddPoint(p[1], p[0]); });
    var r = poly.Compute(false, true);
    return { area: Math.abs(r.area), perimeter: r.perimeter };
  }

  function fmtLength(m) {
    return m >= 1000 ? (m / 1000).toLocaleString(undefined, { maximumFractionDigits: 3 }) + ' km'
      : m.toLocaleString(undefined, { maximumFractionDigits: 1 }) + ' m';
  }

  function fmtArea(m2) {
    if (m2 >= 1e6) return (m2 / 1e6).toLocaleString(undefined, { maximumFractionDigits: 3 }) + ' km²';
    return m2.toLocaleString(undefined, { maximumFractionDigits: 0 }) + ' m²' +
      (m2 >= 1e4 ? ' (' + (m2 / 1e4).toLocaleString(undefined, { maximumFractionDigits: 2 }) + ' ha)' : '');
  }

  function vertices() {
    return state.cursor && !state.done ? state.points.concat([state.cursor]) : state.points.slice();
  }

  function result() {
    var pts = vertices();
    var out = { mode: state.mode, points: state.points.slice(), done: state.done, distance_m: null, area_m2: null,
                perimeter_m: null };
    if (state.mode === 'distance') out.distance_m = lengthM(pts);
    if (state.mode === 'area' && pts.length >= 3) {
      var a = areaM2(pts);
      out.area_m2 = a.area;
      out.perimeter_m = a.perimeter;
    }
    return out;
  }

  function draw() {
    var pts = vertices();
    var features = pts.map(function (p) { return { type: 'Feature', geometry: { type: 'Point', coordinates: p } }; });
    if (state.mode === 'distance' && pts.length >= 2) {
      features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: pts } });
    } else if (state.mode === 'area' && pts.length >= 2) {
      features.push({ type: 'Feature', geometry: pts.length >= 3 ?
        { type: 'Polygon', coordinates: [pts.concat([pts[0]])] } : { type: 'LineString', coordinates: pts } });
    }
    var src = RA.map.getSource(SRC);
    if (src) src.setData({ type: 'FeatureCollection', features: features });
    var r = api.measure = result();
    if (!state.mode) { box.hidden = true; return; }
    var lines = [];
    if (state.mode === 'distance') lines.push(t('length') + ': <strong>' + fmtLength(r.distance_m) + '</strong>');
    if (state.mode === 'area') {
      lines.push(t('surface') + ': <strong>' + (r.area_m2 == null ? '—' : fmtArea(r.area_m2)) + '</strong>');
      if (r.perimeter_m != null) lines.push(t('perimeter') + ': ' + fmtLength(r.perimeter_m));
    }
    box.innerHTML = lines.join('<br>') + '<small>' + RA.esc(state.done ? t('ellipsoid') : t('hint_' + state.mode)) +
      '</small>';
    box.dataset.done = state.done ? '1' : '';
    box.hidden = false;
  }

  function ensureLayers() {
    var map = RA.map;
    if (map.getSource(SRC)) return;
    map.addSource(SRC, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({ id: 'measure-fill', type: 'fill', source: SRC, filter: ['==', ['geometry-type'], 'Polygon'],
                   paint: { 'fill-color': '#ff6f00', 'fill-opacity': 0.15 } });
    map.addLayer({ id: 'measure-line', type: 'line', source: SRC, filter: ['!=', ['geometry-type'], 'Point'],
                   paint: { 'line-color': '#ff6f00', 'line-width': 2.5, 'line-dasharray': [2, 1] } });
    map.addLayer({ id: 'measure-point', type: 'circle', source: SRC, filter: ['==', ['geometry-type'], 'Point'],
                   paint: { 'circle-radius': 4, 'circle-color': '#fff', 'circle-stroke-color': '#ff6f00',
                            'circle-stroke-width': 2 } });
  }

  function setMode(mode) {
    var map = RA.map;
    state = { mode: mode, points: [], cursor: null, done: false };
    Object.keys(buttons).forEach(function (k) { buttons[k].classList.toggle('active', k === mode); });
    if (mode) {
      ensureLayers();
      map.doubleClickZoom.disable();
      map.getCanvas().style.cursor = 'crosshair';
      if (RA.popup) RA.popup.close();
    } else {
      map.doubleClickZoom.enable();
      map.getCanvas().style.cursor = '';
    }
    draw();
  }

  function finish() {
    if (!state.mode || state.done) return;
    state.done = true;
    state.cursor = null;
    draw();
  }

  function Control() {}
  Control.prototype.onAdd = function () {
    var el = document.createElement('div');
    el.className = 'maplibregl-ctrl maplibregl-ctrl-group measure-ctrl';
    ['distance', 'area'].forEach(function (mode) {
      var b = document.createElement('button');
      b.type = 'button';
      b.id = 'measure-' + mode;
      b.className = 'measure-' + mode;
      b.textContent = mode === 'distance' ? '📏' : '⬠';
      b.addEventListener('click', function () { setMode(state.mode === mode ? null : mode); });
      buttons[mode] = b;
      el.appendChild(b);
    });
    relabel();
    return el;
  };
  Control.prototype.onRemove = function () {};

  function relabel() {
    Object.keys(buttons).forEach(function (k) { buttons[k].title = t(k); buttons[k].setAttribute('aria-label', t(k)); });
    if (box && state.mode) draw();
  }

  RA.measure = {
    /** True while a measure is being drawn or shown: clicks belong to it, not to popups. */
    active: function () { return !!state.mode; },
    init: function () {
      var map = RA.map;
      box = document.createElement('div');
      box.id = 'measure-result';
      box.hidden = true;
      document.getElementById('map').appendChild(box);
      map.addControl(new Control(), 'top-right');
      map.on('click', function (e) {
        if (!state.mode) return;
        if (state.done) state = { mode: state.mode, points: [], cursor: null, done: false };
        var last = state.points[state.points.length - 1];
        if (last && last[0] === e.lngLat.lng && last[1] === e.lngLat.lat) return;  // a double click's second click
        state.points.push([e.lngLat.lng, e.lngLat.lat]);
        draw();
      });
      map.on('dblclick', function (e) {
        if (!state.mode) return;
        e.preventDefault();
        finish();
      });
      map.on('mousemove', function (e) {
        if (!state.mode || state.done || !state.points.length) return;
        state.cursor = [e.lngLat.lng, e.lngLat.lat];
        draw();
      });
      document.addEventListener('keydown', function (e) {
        if (!state.mode) return;
        if (e.key === 'Escape') setMode(null);
        if (e.key === 'Enter') finish();
      });
    },
    set: setMode,
    relabel: relabel,
    lengthM: lengthM,
    areaM2: areaM2
  };
})(window.RA = window.RA || {});
