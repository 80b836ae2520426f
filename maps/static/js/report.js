/* Runtime of the folium report maps (inlined by maps/report_layers.py): draws each layer's GeoJSON with
 * the style document of /styles.json, shaped and coloured risk sources, clustering of large point
 * layers, bilingual popups, and the hazard-flag rings. Needs Leaflet (and Leaflet.markercluster when a
 * layer is clustered), both inlined before it.
 */
(function () {
  'use strict';

  var R = window.riskatlasReport = { doc: null, areas: {}, pending: 0, drawn: {} };
  var HIDDEN = ['synthetic', 'source', 'name'];
  var AREA_CODES = ['city_code', 'county_code', 'owner_city', 'parent_code', 'other_code', 'source_city'];

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function both(zh, en) { return zh && en && zh !== en ? zh + ' ' + en : (zh || en || ''); }

  function value(field, v, unit) {
    if (v === null || v === undefined || v === '') return '';
    if (typeof v === 'boolean') return v ? '✓' : '✗';
    if (AREA_CODES.indexOf(field) >= 0 && R.areas[v]) return esc(R.areas[v] + ' (' + v + ')');
    if (typeof v === 'number') return esc(v.toLocaleString('en', { maximumFractionDigits: 3 })) + (unit ? ' ' + esc(unit) : '');
    var names = R.doc.values[field] && R.doc.values[field][v];
    return esc(names ? both(names.zh, names.en) : v) + (unit ? ' ' + esc(unit) : '');
  }

  function colour(entry, p) {
    if (!entry.color_by) return entry.color;
    var c = entry.palette[p[entry.color_by]];
    return c || entry.missing_color || entry.color;
  }

  function popup(name, p) {
    var entry = R.doc.layers[name];
    var rows = entry.fields.filter(function (f) {
      return HIDDEN.indexOf(f.name) < 0 && p[f.name] !== undefined && p[f.name] !== null && p[f.name] !== '';
    }).map(function (f) {
      return '<tr><td>' + esc(both(f.title_zh, f.title)) + '</td><td>' + value(f.name, p[f.name], f.unit) + '</td></tr>';
    });
    if (name === 'risk_source' && !p.risk_level) {
      rows.unshift('<tr><td>风险等级 Risk level</td><td>' + esc(both(entry.missing_label.zh, entry.missing_label.en)) + '</td></tr>');
    }
    var title = name === 'admin_area' && R.areas[p.code] ? R.areas[p.code] : (p.name || p.key || '');
    return '<div class="ra-popup" data-layer="' + esc(name) + '"><b>' + esc(title) + '</b><br><small>' +
      esc(both(entry.title_zh, entry.title)) + '</small><table>' + rows.join('') + '</table></div>';
  }

  function symbol(entry, p) {
    var shape = entry.shapes ? (entry.shapes[p[entry.shape_by]] || 'circle') : 'circle';
    var svg = '<svg width="16" height="16" viewBox="0 0 24 24"><path d="' + R.doc.shapes[shape] + '" fill="' +
      colour(entry, p) + '" stroke="#fff" stroke-width="1.5"/></svg>';
    return L.divIcon({ html: svg, className: 'ra-sym', iconSize: [16, 16], iconAnchor: [8, 8], popupAnchor: [0, -8] });
  }

  function pathStyle(entry, name) {
    return function (feature) {
      var p = feature.properties;
      var c = colour(entry, p);
      if (name === 'admin_area') {
        var w = { province: 3, city: 2.2, county: 0.8 }[p.level] || entry.weight;
        return { color: c, weight: w, fill: false, opacity: p.level === 'county' ? 0.6 : 0.9,
          dashArray: p.level === 'county' ? '4 3' : null };
      }
      var area = entry.geometry_type === 'MultiPolygon';
      var width = entry.weight;
      if (name === 'river') width = { 'yangtze-main': 4, major: 2.2, canal: 1.6 }[p.river_class] || 1.2;
      return { color: c, weight: width, opacity: entry.opacity, fill: area,
        fillColor: entry.color_by ? c : entry.fill, fillOpacity: entry.fill_opacity };
    };
  }

  /** The Leaflet layer of one catalogue layer's GeoJSON; clustered when `opts.cluster`. */
  R.layer = function (name, data, opts) {
    var entry = R.doc.layers[name];
    var shaped = !!entry.shapes;
    var geo = L.geoJSON(data, {
      style: pathStyle(entry, name),
      pointToLayer: function (f, latlng) {
        if (shaped || opts.cluster) return L.marker(latlng, { icon: symbol(entry, f.properties) });
        return L.circleMarker(latlng, { radius: entry.radius, color: '#fff', weight: 1, fillColor: colour(entry, f.properties),
          fillOpacity: entry.opacity });
      },
      onEachFeature: function (f, layer) {
        layer.bindPopup(function () { return popup(name, f.properties); }, { maxWidth: 360 });
      }
    });
    R.drawn[name] = geo.getLayers().length;
    if (!opts.cluster) return geo;
    // The markers are clustered in chunks once the group is on the map; the map is ready after the last.
    var finished = false;
    var group = L.markerClusterGroup({ chunkedLoading: true, maxClusterRadius: 45,
      chunkProgress: function (done, total) { if (done === total && !finished) { finished = true; R.pending -= 1; ready(); } } });
    var markers = geo.getLayers();
    R.pending += 1;
    group.once('add', function () { group.addLayers(markers); });
    return group;
  };

  /** Rings around the flagged sources, coloured by severity, with the reason in both languages. */
  R.flags = function (data) {
    var style = R.doc.flags;
    var geo = L.geoJSON(data, {
      pointToLayer: function (f, latlng) {
        var c = style.palette[f.properties.severity] || style.color;
        // A light fill: a flagged source of a neighbouring city is not drawn itself on this city's map.
        return L.circleMarker(latlng, { radius: style.radius, weight: style.weight, color: c, opacity: style.opacity,
          fillColor: c, fillOpacity: 0.12 });
      },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindPopup(function () {
          var sev = R.doc.values.severity[p.severity] || { zh: p.severity, en: p.severity };
          return '<div class="ra-popup" data-layer="flags"><b>' + esc(p.source_name) + '</b><br><small>' +
            esc(both(style.title_zh, style.title)) + ' · ' + esc(both(sev.zh, sev.en)) + '</small><p>' +
            esc(p.reason_zh) + '</p><p>' + esc(p.reason) + '</p></div>';
        }, { maxWidth: 360 });
      }
    });
    R.drawn.flags = geo.getLayers().length;
    return geo;
  };

  R.init = function (doc, areas) {
    R.doc = doc;
    R.areas = areas;
  };

  /* The map is ready once the page has loaded and the last clustered layer has all its markers. */
  var loaded = false;
  function ready() {
    if (loaded && R.pending === 0) window.riskatlasReady = true;
  }
  window.addEventListener('load', function () { loaded = true; ready(); });
})();
