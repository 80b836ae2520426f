/* The planner's map: MapLibre over the service's own vector tiles, styled by /map/style.json (made from
 * the catalogue's styles), with filters, a layer switcher and legend, search, popups, border-zone
 * hazard flags and the city × city matrix. Every request goes to the app itself.
 *
 * `window.riskmap` exposes the map and a few promises for tests and benchmarks:
 * `ready` (first full render: style, tiles and flags loaded), `settle()` (the next moment the map draws
 * the filters in force, with every tile loaded and the camera still) and `generations` (see below).
 */
(function (RA) {
  'use strict';

  var cfg = RA.cfg;  // viewer-boot.js, the page's first script
  var S = RA.state = {
    lang: cfg.lang || 'zh', city: '', levels: {}, categories: {}, flagsOnly: false, visible: {}, pair: null
  };
  var resolveReady;
  /* Generations of what the risk source draws: `wanted` counts the changes of its server-side filter and
   * of its layers' filters and visibility; `fetched` is the last one its tiles were all asked for again;
   * `drawn` the last one the map was idle with (every tile loaded, the camera still). */
  var gen = { wanted: 0, fetched: 0, drawn: 0 };
  var api = window.riskmap = {
    ready: new Promise(function (r) { resolveReady = r; }), state: S, generations: gen
  };

  /** The map's zoom as the items' `zoom` parameter counts it (256-pixel tiles: MapLibre's z is z + 1), so that
   * lines and areas come simplified to about half a pixel of what is on screen. */
  RA.displayZoom = function () {
    return Math.max(0, Math.min(22, Math.floor(RA.map ? RA.map.getZoom() : 0) + 1));
  };
  RA.esc = function (s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  };
  RA.t = function (key) {
    var words = RA.doc.ui[key];
    return words ? words[S.lang] : key;
  };
  RA.v = function (field, value) {
    var names = RA.doc.values[field];
    return names && names[value] ? names[value][S.lang] : value;
  };
  RA.areaName = function (code) {
    var a = RA.areas[code];
    if (!a) return code;
    return S.lang === 'en' && a.name_en ? a.name_en : a.name;
  };

  /** The CQL2 filter of the risk-source tiles for the current filters ('' for none). */
  RA.riskFilter = function () {
    var quote = function (s) { return "'" + String(s).replace(/'/g, "''") + "'"; };
    var parts = [];
    if (S.city) parts.push('city_code = ' + quote(S.city));
    var cats = Object.keys(S.categories).filter(function (k) { return S.categories[k]; });
    if (cats.length < Object.keys(S.categories).length) {
      parts.push('category IN (' + cats.map(quote).join(', ') + ')');
    }
    var levelKeys = Object.keys(S.levels);
    var levels = levelKeys.filter(function (k) { return S.levels[k] && k !== ''; });
    var selected = levelKeys.filter(function (k) { return S.levels[k]; });
    if (selected.length < levelKeys.length) {
      var any = [];
      if (levels.length) any.push('risk_level IN (' + levels.map(quote).join(', ') + ')');
      if (S.levels['']) any.push('risk_level IS NULL');
      parts.push('(' + any.join(' OR ') + ')');
    }
    return parts.join(' AND ');
  };

  function nothingSelected() {
    var none = function (o) { return !Object.keys(o).some(function (k) { return o[k]; }); };
    return none(S.categories) || none(S.levels);
  }

  var CITY_FILTERED = ['water_reserve', 'monitoring_station', 'protection_zone-fill', 'protection_zone-line',
    'protected_area-fill', 'protected_area-line'];

  /** Apply every filter: server-side for risk sources (tile requests), client-side for the other layers. */
  RA.applyFilters = function () {
    var map = RA.map;
    var cql = RA.riskFilter();
    var query = cql ? 'filter=' + encodeURIComponent(cql) : '';
    var cityFilter = S.city ? ['==', ['get', 'city_code'], S.city] : null;
    CITY_FILTERED.forEach(function (id) { setFilter(id, cityFilter); });
    map.setPaintProperty('admin_area-fill', 'fill-opacity',
      S.city ? ['case', ['==', ['get', 'code'], S.city], 0, 0.6] : 0);
    var flagged = S.flagsOnly ? ['in', ['get', 'key'], ['literal', RA.flags.flaggedKeys()]] : null;
    setFilter('risk_source', flagged);
    setFilter('risk_source-dot', flagged);
    setFilter('risk_source-bins', S.flagsOnly ? ['==', ['get', 'n'], -1] : null);  // cells have no keys
    RA.flags.applyFilter();
    RA.updateVisibility();
    if (RA.riskQuery !== query) {
      RA.riskQuery = query;
      riskChanged();
    }
  };

  /* How the risk tiles follow the filter. Source#setTiles takes effect a frame later, so tiles asked for in
   * that frame (a zoom to the chosen city is under way) still come with the old filter; and a tile still
   * loading when its source reloads is only laid out again from the data it then receives, never fetched
   * again. Both leave tiles of the old filter on the map for good. So the filter goes on every request of
   * a risk tile the moment it changes (transformRequest below), and the source fetches all its tiles again
   * (Map#refreshTiles) in a frame where none of them is loading, after the style's update of that frame
   * (a style change pauses the source until then, and a paused source drops the refresh). */
  function riskChanged() {
    gen.wanted += 1;
    RA.map.triggerRepaint();
  }

  function refreshRiskTiles() {
    var map = RA.map;
    if (gen.fetched < gen.wanted && map.isSourceLoaded('risk')) {
      gen.fetched = gen.wanted;
      map.refreshTiles('risk');
    }
  }

  function noteDrawn() {
    var map = RA.map;
    if (gen.fetched === gen.wanted && map.isSourceLoaded('risk')) gen.drawn = gen.fetched;
  }

  /** A test of whether a URL is one of the risk source's tiles, from its template. */
  function tileMatcher(template) {
    var pattern = template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\{[xyz]\\\}/g, '\\d+');
    return new RegExp('^' + pattern + '$');
  }

  /** Set a layer's filter only when it changes: every setFilter pauses the layer's source a frame. */
  function setFilter(id, filter) {
    var now = RA.map.getFilter(id);
    if (JSON.stringify(now == null ? null : now) !== JSON.stringify(filter == null ? null : filter)) {
      RA.map.setFilter(id, filter);
      if (RA.map.getLayer(id).source === 'risk') riskChanged();
    }
  }
  RA.setFilter = setFilter;

  RA.updateVisibility = function () {
    Object.keys(cfg.switcher).forEach(function (name) {
      var on = S.visible[name] !== false && !(name === 'risk_source' && nothingSelected());
      cfg.switcher[name].forEach(function (id) {
        var want = on ? 'visible' : 'none';
        if ((RA.map.getLayoutProperty(id, 'visibility') || 'visible') !== want) {
          RA.map.setLayoutProperty(id, 'visibility', want);
          if (RA.map.getLayer(id).source === 'risk') riskChanged();
        }
      });
    });
  };

  /** Fit the map to areas given by code, using the bounding boxes of /map/labels.json. */
  RA.fitAreas = function (codes) {
    var box = null;
    codes.forEach(function (c) {
      var a = RA.areas[c];
      if (!a) return;
      var b = a.bbox;
      box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : b.slice();
    });
    if (box) RA.map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 40, duration: 600 });
  };

  RA.highlightAreas = function (codes) {
    RA.map.setFilter('admin_area-selected', ['in', ['get', 'code'], ['literal', codes]]);
  };

  function labelMarkers(labels) {
    RA.labelEls = [];
    labels.areas.forEach(function (a) {
      if (a.level !== 'city' && a.level !== 'county') return;
      var el = document.createElement('div');
      el.className = 'label label-' + a.level;
      el.dataset.code = a.code;
      new maplibregl.Marker({ element: el, anchor: 'center' }).setLngLat([a.lon, a.lat]).addTo(RA.map);
      RA.labelEls.push(el);
    });
    var zoomClass = function () {
      var c = document.getElementById('map').classList;
      var z = RA.map.getZoom();
      c.toggle('zoom-low', z < 8.6);
      c.toggle('zoom-high', z >= 8.6);
    };
    RA.map.on('zoom', zoomClass);
    zoomClass();
  }

  RA.renderLabels = function () {
    (RA.labelEls || []).forEach(function (el) { el.textContent = RA.areaName(el.dataset.code); });
  };

  function notice(layers) {
    var el = document.getElementById('notice');
    var sets = layers.dataset || {};
    var texts = Object.keys(sets).map(function (k) { return sets[k]; }).filter(function (d) {
      return d && d.synthetic;
    });
    if (!texts.length) { el.hidden = true; return; }
    var d = texts[0];
    el.innerHTML = '<strong>' + RA.esc(RA.t('synthetic')) + ':</strong> ' +
      RA.esc(S.lang === 'zh' ? (d.notice_zh || d.notice) : (d.notice || d.notice_zh));
    el.hidden = false;
  }

  RA.setLanguage = function (lang) {
    S.lang = lang;
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    RA.panel.render();
    RA.basemap.render();
    RA.renderLabels();
    RA.flags.renderMatrix();
    notice(RA.layerInfo);
    RA.popup.close();
    if (RA.stations) RA.stations.relabel();
    if (RA.gaps && RA.map) RA.gaps.relabel();
    if (RA.measure) RA.measure.relabel();
    if (RA.print) RA.print.relabel();
  };

  function start(doc, style, labels, layerInfoPromise) {
    RA.doc = doc;
    RA.layerInfo = { layers: [], dataset: {} };
    layerInfoPromise.then(function (info) {
      RA.layerInfo = info;
      RA.panel.renderSwitcher();
      notice(info);
    });
    RA.areas = {};
    labels.areas.forEach(function (a) { RA.areas[a.code] = a; });
    RA.riskQuery = '';
    var isRiskTile = tileMatcher(style.sources.risk.tiles[0]);
    doc.layers.risk_source.classes.forEach(function (v) { S.levels[v] = true; });
    S.levels[''] = true;
    Object.keys(doc.layers.risk_source.shapes).forEach(function (v) { S.categories[v] = true; });
    Object.keys(cfg.switcher).forEach(function (k) { S.visible[k] = true; });

    var map = RA.map = api.map = new maplibregl.Map({
      container: 'map', style: style, bounds: labels.bounds, fitBoundsOptions: { padding: 20 }, maxZoom: 18,
      attributionControl: { compact: false }, dragRotate: false, pitchWithRotate: false,
      transformRequest: function (url, type) {
        if (type === 'Tile' && RA.riskQuery && isRiskTile.test(url)) {
          return { url: url + (url.indexOf('?') < 0 ? '?' : '&') + RA.riskQuery };
        }
      }
    });
    map.on('render', refreshRiskTiles);
    map.on('idle', noteDrawn);
    RA.symbols.provide(map, doc.shapes);
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
    map.touchZoomRotate.disableRotation();

    RA.panel.init();
    RA.setLanguage(S.lang);
    map.on('load', function () {
      performance.mark('riskmap-load');  // the style is in (marks: for benchmarks, bench/maps_bench.py)
      RA.basemapReady = RA.basemap.init();
      labelMarkers(labels);
      RA.renderLabels();
      RA.popup.init();
      if (RA.stations) RA.stations.init();
      RA.measure.init();
      RA.gaps.init();
      RA.print.init();
      RA.flags.load().then(function () {
        performance.mark('riskmap-flags');
        return RA.basemapReady;
      }).then(function () {
        RA.share.restore();  // a link's view and filters, if the address carries them
        RA.applyFilters();
        RA.share.start();
        performance.mark('riskmap-settle');
        return api.settle();
      }).then(function () {
        api.firstRenderMs = performance.now();
        resolveReady(api.firstRenderMs);
      });
    });
  }

  /** Resolve (with the generation drawn) at the next moment the map is idle with the risk tiles of the
   * latest filter all loaded: changes made before the call are in force, the camera is still. */
  api.settle = function () {
    var map = RA.map;
    return new Promise(function (resolve) {
      var stalled;
      var check = function () {
        if (gen.drawn === gen.wanted && map.loaded() && map.areTilesLoaded() && !map.isMoving()) {
          map.off('idle', check);
          clearInterval(stalled);
          resolve(gen.drawn);
        }
      };
      map.on('idle', check);  // after noteDrawn, registered first
      map.triggerRepaint();   // a frame takes in what changed before the call, then the map says idle
      // A frame the browser does not give: a starved headless Chromium once held MapLibre's frame request
      // for a minute with every tile loaded and nothing to draw, so no idle came. While the map is loaded
      // and still, a synchronous render (Map#redraw) says idle at once; when frames come, idle comes
      // first and this never runs.
      stalled = setInterval(function () {
        if (map.loaded() && map.areTilesLoaded() && !map.isMoving()) map.redraw();
      }, 1000);
    });
  };

  // /layers counts every table (slow on big ones): the map starts without it, the panel adds it later.
  var layerInfo = RA.getJSON(cfg.layers).catch(function () { return { layers: [], dataset: {} }; });
  // MapLibre's web workers start while the documents are on their way (viewer-boot.js asked for them)
  maplibregl.prewarm();
  Promise.all([RA.boot.styles, RA.boot.style, RA.boot.labels])
    .then(function (r) { start(r[0], r[1], r[2], layerInfo); })
    .catch(function (err) {
      var el = document.getElementById('notice');
      el.textContent = 'The map could not start: ' + err.message;
      el.hidden = false;
      throw err;
    });
  RA.flags.prefetch();  // the flags and the basemaps come while the map loads, not after it
  RA.basemap.prefetch();
})(window.RA = window.RA || {});
