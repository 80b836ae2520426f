/* Monitoring gaps on the planner's map: the coverage analysis drawn as layers a planner switches on.
 *
 * 大气监测盲区 — risk sources with no air station within 5 km (/analysis/coverage?medium=air);
 * 水质监测盲区 — sources on a river with no water station within 10 km downstream (medium=water);
 * 无断面的跨界河流 — river crossings of city borders with no section station (/analysis/coverage/crossings).
 * Each is asked for the first time it is switched on (the analyses take a moment), then kept. A click on
 * a gap opens its popup. RA.gaps.loaded[name] resolves with the feature count once drawn (tests wait on it).
 */
(function (RA) {
  'use strict';

  var LIMIT = 100000;
  var GAPS = {
    air: { path: '/analysis/coverage?medium=air&limit=' + LIMIT, colour: '#E65100',
           zh: '大气监测盲区（5 km 内无空气站）', en: 'Air monitoring gaps (no air station within 5 km)' },
    water: { path: '/analysis/coverage?medium=water&limit=' + LIMIT, colour: '#0277BD',
             zh: '水质监测盲区（下游 10 km 内无水质站）', en: 'Water monitoring gaps (no water station 10 km downstream)' },
    crossings: { path: '/analysis/coverage/crossings?level=city', colour: '#6A1B9A',
                 zh: '无监测断面的跨市界河流', en: 'River crossings of city borders without a section' }
  };
  var TEXT = {
    zh: { title: '监测盲区', nearest: '最近空气站', river: '河流', reach: '距河道', from: '上游', to: '下游',
          station: '最近断面', loading: '计算中…', failed: '无法计算' },
    en: { title: 'Monitoring gaps', nearest: 'Nearest air station', river: 'River', reach: 'Distance to river',
          from: 'Upstream', to: 'Downstream', station: 'Nearest section', loading: 'computing…', failed: 'not available' }
  };
  var on = {};
  var counts = {};
  var resolvers = {};
  var api = RA.gaps = { loaded: {} };
  Object.keys(GAPS).forEach(function (k) {
    api.loaded[k] = new Promise(function (r) { resolvers[k] = r; });
  });

  function t(k) { return TEXT[RA.state.lang === 'en' ? 'en' : 'zh'][k]; }
  function layerId(name) { return 'gaps-' + name; }
  function metres(m) { return m == null ? '' : Math.round(m).toLocaleString() + ' m'; }

  function render() {
    var old = document.getElementById('gaps');
    var box = old || document.createElement('section');
    box.id = 'gaps';
    var lang = RA.state.lang === 'en' ? 'en' : 'zh';
    box.innerHTML = '<h2>' + RA.esc(t('title')) + '</h2>' + Object.keys(GAPS).map(function (name) {
      var g = GAPS[name];
      var count = counts[name];
      return '<div class="layer"><label><input type="checkbox" data-gaps="' + name + '"' + (on[name] ? ' checked' : '') +
        '> <span class="swatch ring" style="border-color:' + g.colour + '"></span> ' + RA.esc(g[lang]) +
        (count === undefined ? '' : ' <span class="count">' + (count === null ? RA.esc(t('failed')) :
          count === 'loading' ? RA.esc(t('loading')) : Number(count).toLocaleString()) + '</span>') +
        '</label></div>';
    }).join('');
    if (!old) {
      var panel = document.getElementById('panel');
      panel.insertBefore(box, document.getElementById('switcher').parentNode.nextSibling);
      box.addEventListener('change', function (e) {
        var name = e.target.dataset.gaps;
        if (name) toggle(name, e.target.checked);
      });
    }
  }

  function popupHtml(name, p) {
    var rows = [];
    var row = function (k, v) { if (v) rows.push('<tr><td>' + RA.esc(k) + '</td><td>' + v + '</td></tr>'); };
    var title;
    if (name === 'crossings') {
      title = RA.esc(p.river || p.reach_key || '');
      row(t('from'), RA.esc(RA.areaName(p.from_code)));
      row(t('to'), RA.esc(RA.areaName(p.to_code)));
      row(t('station'), RA.esc(p.station_name || '') + (p.station_m != null ? ' · ' + metres(p.station_m) : ''));
    } else {
      title = RA.esc(p.name || p.key);
      row(RA.t('category'), RA.esc(RA.v('category', p.category)));
      row(RA.t('level'), RA.esc(p.risk_level ? RA.v('risk_level', p.risk_level) : ''));
      if (name === 'air') row(t('nearest'), RA.esc(p.nearest_station_name || '') + ' · ' + metres(p.nearest_station_m));
      if (name === 'water') {
        row(t('river'), RA.esc(p.river || p.reach_key || ''));
        row(t('reach'), metres(p.reach_distance_m));
      }
    }
    var lang = RA.state.lang === 'en' ? 'en' : 'zh';
    return '<div class="popup" data-collection="gaps-' + name + '"><h4>' + title + '</h4><div class="kind">' +
      RA.esc(GAPS[name][lang]) + '</div><table>' + rows.join('') + '</table></div>';
  }

  function toggle(name, visible) {
    var map = RA.map;
    on[name] = visible;
    if (map.getLayer(layerId(name))) {
      map.setLayoutProperty(layerId(name), 'visibility', visible ? 'visible' : 'none');
      return;
    }
    if (!visible || counts[name] === 'loading') return;
    counts[name] = 'loading';
    render();
    RA.getJSON(RA.cfg.root + GAPS[name].path).then(function (doc) {
      counts[name] = doc.features.length;
      map.addSource(layerId(name), { type: 'geojson', data: doc });
      map.addLayer({
        id: layerId(name), type: 'circle', source: layerId(name),
        layout: { visibility: on[name] ? 'visible' : 'none' },
        paint: {
          'circle-radius': ['interpolate', ['linear'], ['zoom'], 6, name === 'crossings' ? 7 : 4, 12, 10],
          'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': GAPS[name].colour,
          'circle-stroke-width': name === 'crossings' ? 3 : 2
        }
      });
      RA.popup.register(layerId(name), function (props) { return popupHtml(name, props); });
      render();
      map.once('idle', function () { resolvers[name](counts[name]); });
    }).catch(function (err) {
      counts[name] = null;
      api.error = String(err);
      render();
      resolvers[name](null);
    });
  }

  api.init = function () { render(); };
  api.relabel = render;
  api.toggle = toggle;
  /** The gap layers switched on, with their titles and colours (for the print legend). */
  api.legend = function () {
    var lang = RA.state.lang === 'en' ? 'en' : 'zh';
    return Object.keys(GAPS).filter(function (k) { return on[k] && typeof counts[k] === 'number'; }).map(function (k) {
      return { kind: 'ring', colour: GAPS[k].colour, text: GAPS[k][lang] };
    });
  };
})(window.RA = window.RA || {});
