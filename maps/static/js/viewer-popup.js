/* Popups of the planner's map: a click picks the top feature, the popup shows what the tile holds at
 * once, then the full attributes from /collections/{id}/items/{key} (which the server filters by role),
 * and for a risk source its border-zone hazard flags.
 */
(function (RA) {
  'use strict';

  //: Clickable layers, most specific first; points are looked for in a few pixels around the click.
  var POINTS = ['risk_source', 'risk_source-dot', 'flags', 'water_reserve', 'station-state', 'monitoring_station'];
  var AREAS = ['protection_zone-fill', 'protected_area-fill', 'river', 'admin_area-fill'];
  var AREA_CODES = ['city_code', 'county_code', 'owner_city', 'parent_code', 'code'];
  var HIDDEN = ['synthetic', 'source'];
  var popup = null;
  var seq = 0;
  var custom = {};  // layers other modules add, with the popup each draws itself (RA.popup.register)

  /** Let a module's own point layer `id` open popups drawn by `render(properties)` (HTML, escaped). */
  function register(id, render) {
    custom[id] = render;
    if (POINTS.indexOf(id) < 0) POINTS.unshift(id);
  }

  function collectionOf(f) {
    if (f.layer.id === 'station-state') return 'monitoring_station';  // the latest-state layer (GeoJSON)
    return f.layer.id === 'flags' ? 'flags' : f.sourceLayer;
  }

  function format(field, value, unit) {
    if (value === null || value === undefined || value === '') return '';
    if (typeof value === 'boolean') return value ? '✓' : '✗';
    if (AREA_CODES.indexOf(field) >= 0 && RA.areas[value]) return RA.esc(RA.areaName(value)) + ' <small>' + RA.esc(value) + '</small>';
    if (typeof value === 'number') return RA.esc(value.toLocaleString(undefined, { maximumFractionDigits: 3 })) + (unit ? ' ' + RA.esc(unit) : '');
    if (typeof value === 'object') return RA.esc(JSON.stringify(value));
    return RA.esc(RA.v(field, value)) + (unit ? ' ' + RA.esc(unit) : '');
  }

  function table(coll, props) {
    var entry = RA.doc.layers[coll];
    var rows = entry.fields.filter(function (f) {
      return HIDDEN.indexOf(f.name) < 0 && f.name !== 'name' && props[f.name] !== undefined && props[f.name] !== null &&
        props[f.name] !== '';
    }).map(function (f) {
      return '<tr><td>' + RA.esc(RA.state.lang === 'zh' ? f.title_zh : f.title) + '</td><td>' +
        format(f.name, props[f.name], f.unit) + '</td></tr>';
    });
    if (coll === 'risk_source' && !props.risk_level) {
      // pending M: Q and E are graded, the label holds the levels M could give
      var missing = props.grade_status === 'pending-m' && entry.pending_label ? entry.pending_label : entry.missing_label;
      rows.unshift('<tr><td>' + RA.esc(RA.t('level')) + '</td><td>' +
        RA.esc(missing[RA.state.lang]) + '</td></tr>');
    }
    return '<table>' + rows.join('') + '</table>';
  }

  function flagList(key) {
    var flags = RA.flags.forSource(key);
    if (!flags.length) return '';
    return '<h4>' + RA.esc(RA.t('flagged')) + '</h4><ul>' + flags.map(function (p) {
      return '<li class="sev-' + RA.esc(p.severity) + '">' + RA.esc(RA.flags.reason(p)) + '</li>';
    }).join('') + '</ul>';
  }

  function header(coll, props) {
    var entry = coll === 'flags' ? RA.doc.flags : RA.doc.layers[coll];
    var name = coll === 'admin_area' ? RA.areaName(props.code) : (props.name || props.source_name || props.key || '');
    return '<h4>' + RA.esc(name) + '</h4><div class="kind">' +
      RA.esc(RA.state.lang === 'zh' ? entry.title_zh : entry.title) + '</div>';
  }

  function body(coll, props, full) {
    if (coll === 'flags') {
      return '<p class="sev-' + RA.esc(props.severity) + '">' + RA.esc(RA.flags.reason(props)) + '</p>' +
        '<table><tr><td>' + RA.esc(RA.t('severity')) + '</td><td>' + RA.esc(RA.v('severity', props.severity)) +
        '</td></tr><tr><td>' + RA.esc(RA.t('other')) + '</td><td>' + RA.esc(RA.areaName(props.other_code)) +
        '</td></tr><tr><td>' + RA.esc(RA.t('distance')) + '</td><td>' +
        RA.esc(Math.round(props.distance_m).toLocaleString()) + ' m</td></tr></table>';
    }
    var out = table(coll, props);
    if (coll === 'risk_source') out += flagList(props.key);
    if (coll === 'monitoring_station' && RA.stations) out += RA.stations.popupHtml(props.key);
    if (!full) out += '<p class="kind">' + RA.esc(RA.t('loading')) + '</p>';
    return out;
  }

  function html(coll, id, props, full) {
    return '<div class="popup" data-collection="' + RA.esc(coll) + '" data-id="' + RA.esc(id) + '"' +
      (full ? ' data-complete="1"' : '') + '>' + header(coll, props) + body(coll, props, full) + '</div>';
  }

  /** Open the popup of a feature of `coll` at `lngLat`, then complete it from the items endpoint. */
  function open(coll, props, lngLat) {
    var mine = ++seq;
    close();
    var idField = coll === 'flags' ? 'id' : RA.doc.layers[coll].id_field;
    var id = props[idField];
    popup = new maplibregl.Popup({ maxWidth: '360px', focusAfterOpen: false })
      .setLngLat(lngLat).setHTML(html(coll, id, props, coll === 'flags')).addTo(RA.map);
    if (coll === 'flags' || id == null) return;
    // zoom: an area's boundary comes simplified for the map's scale (points ignore it), not as stored
    RA.getJSON(RA.cfg.collections + '/' + coll + '/items/' + encodeURIComponent(id) + '?f=json&zoom=' +
      RA.displayZoom()).then(function (f) {
      if (mine === seq && popup) popup.setHTML(html(coll, id, f.properties, true));
    }).catch(function () {
      if (mine === seq && popup) popup.setHTML(html(coll, id, props, true));
    }).then(function () {
      if (mine === seq && popup && coll === 'monitoring_station' && RA.stations) RA.stations.fill(popup.getElement(), id);
      if (mine === seq && popup && coll === 'risk_source' && RA.history) RA.history.fill(popup.getElement(), id);
    });
  }

  function close() {
    if (popup) popup.remove();
    popup = null;
  }

  function visible(ids) {
    return ids.filter(function (id) {
      return RA.map.getLayer(id) && RA.map.getLayoutProperty(id, 'visibility') !== 'none';
    });
  }

  function pick(point) {
    var map = RA.map;
    var box = [[point.x - 5, point.y - 5], [point.x + 5, point.y + 5]];
    var points = map.queryRenderedFeatures(box, { layers: visible(POINTS) });
    if (points.length) {
      // The nearest point of the most specific layer: features come topmost first within a layer.
      for (var i = 0; i < POINTS.length; i++) {
        var inLayer = points.filter(function (f) { return f.layer.id === POINTS[i]; });
        if (inLayer.length) {
          inLayer.sort(function (a, b) {
            var pa = map.project(a.geometry.coordinates), pb = map.project(b.geometry.coordinates);
            return (Math.hypot(pa.x - point.x, pa.y - point.y) - Math.hypot(pb.x - point.x, pb.y - point.y));
          });
          return inLayer[0];
        }
      }
    }
    var areas = map.queryRenderedFeatures(point, { layers: visible(AREAS) });
    for (var j = 0; j < AREAS.length; j++) {
      var hit = areas.filter(function (f) { return f.layer.id === AREAS[j]; });
      if (hit.length) return hit[0];
    }
    return null;
  }

  /** A binned cell of risk sources: how many, by level. */
  function binHtml(p) {
    var rows = ['major', 'larger', 'general'].map(function (v) {
      return '<tr><td>' + RA.esc(RA.v('risk_level', v)) + '</td><td>' + Number(p['n_' + v] || 0).toLocaleString() + '</td></tr>';
    });
    rows.push('<tr><td>' + RA.esc(RA.doc.layers.risk_source.missing_label[RA.state.lang]) + '</td><td>' +
      Number(p.n_none || 0).toLocaleString() + '</td></tr>');
    var zh = RA.state.lang === 'zh';
    return '<div class="popup" data-collection="risk_source_bins"><h4>' + Number(p.n).toLocaleString() +
      (zh ? ' 个风险源' : ' risk sources') + '</h4><div class="kind">' +
      RA.esc(zh ? '汇总（放大查看单个风险源）' : 'counted together (zoom in for single sites)') +
      '</div><table>' + rows.join('') + '</table></div>';
  }

  function init() {
    var map = RA.map;
    register('risk_source-bins', binHtml);
    map.on('click', function (e) {
      if (RA.measure && RA.measure.active()) return;  // the click is a vertex of a measure
      var f = pick(e.point);
      if (!f) { close(); return; }
      var lngLat = f.geometry.type === 'Point' ? f.geometry.coordinates : e.lngLat;
      if (custom[f.layer.id]) {
        close();
        seq += 1;
        popup = new maplibregl.Popup({ maxWidth: '360px', focusAfterOpen: false })
          .setLngLat(lngLat).setHTML(custom[f.layer.id](f.properties)).addTo(map);
        return;
      }
      open(collectionOf(f), f.properties, lngLat);
    });
    map.on('mousemove', function (e) {
      if (RA.measure && RA.measure.active()) return;
      var box = [[e.point.x - 4, e.point.y - 4], [e.point.x + 4, e.point.y + 4]];
      map.getCanvas().style.cursor = map.queryRenderedFeatures(box, { layers: visible(POINTS) }).length ? 'pointer' : '';
    });
  }

  RA.popup = { init: init, open: open, close: close, pick: pick, register: register };
})(window.RA = window.RA || {});
