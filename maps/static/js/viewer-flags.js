/* Border-zone hazard flags (GET /analysis/border-hazards, GeoJSON) drawn as rings around the flagged
 * sources, and the city × city matrix (GET /analysis/border-matrix?level=city) as a panel whose cells
 * zoom the map to the pair of cities and show only that pair's flags.
 */
(function (RA) {
  'use strict';

  var features = [];
  var byKey = {};
  var matrix = null;      // {rows: [code], cols: [code], counts: {a: {b: n}}} or null when unavailable
  var matrixError = false;

  function props(f) { return f.properties; }

  var asked = null;

  /** Ask for the flags and the matrix now, while the map loads its style and tiles; load() takes the answers. */
  function prefetch() {
    if (!asked && RA.cfg.hazards) asked = { flags: RA.getJSON(RA.cfg.hazards), cells: RA.getJSON(RA.cfg.matrix) };
  }

  /** Load the flags and the matrix; never rejects (the map works without them). */
  function load() {
    if (!RA.cfg.hazards) {
      matrixError = true;
      renderMatrix();
      return Promise.resolve();
    }
    prefetch();
    var answers = asked;
    asked = null;  // a later load asks again
    var flags = answers.flags.then(function (fc) {
      features = (fc.features || []).filter(function (f) { return f.geometry; });
      features.forEach(function (f, i) { if (f.id == null) f.id = i + 1; f.properties.id = f.id; });
      byKey = {};
      features.forEach(function (f) {
        var k = props(f).source_key;
        (byKey[k] = byKey[k] || []).push(props(f));
      });
      RA.map.getSource('flags').setData({ type: 'FeatureCollection', features: features });
    }).catch(function () { features = []; byKey = {}; });
    var cells = answers.cells.then(function (doc) {
      matrix = normalise(doc);
    }).catch(function () { matrix = null; matrixError = true; });
    return Promise.all([flags, cells]).then(function () {
      RA.panel.renderSwitcher();
      renderMatrix();
    });
  }

  /** Counts by (source city, other city) from the matrix document's `pairs` (or `cells`) rows. */
  function normalise(doc) {
    var rows = doc.pairs || doc.cells || doc.rows || [];
    var counts = {};
    var from = {}, to = {};
    rows.forEach(function (r) {
      var a = r.source_code || r.source_city || r.from_code || r.code_a || r.from;
      var b = r.other_code || r.other_city || r.to_code || r.code_b || r.to;
      var n = r.total != null ? r.total : (r.count != null ? r.count : r.n);
      if (!a || !b || !n) return;
      counts[a] = counts[a] || {};
      counts[a][b] = (counts[a][b] || 0) + n;
      from[a] = true;
      to[b] = true;
    });
    var order = function (o) { return Object.keys(o).sort(); };
    return { rows: order(from), cols: order(to), counts: counts };
  }

  function renderMatrix() {
    var el = document.getElementById('matrix');
    if (!el) return;
    if (!matrix) {
      el.innerHTML = '<p class="hint">' + RA.esc(RA.t(matrixError ? 'matrix_unavailable' : 'loading')) + '</p>';
      return;
    }
    if (!matrix.rows.length) {
      el.innerHTML = '<p class="hint">' + RA.esc(RA.t('matrix_empty')) + '</p>';
      return;
    }
    var pair = RA.state.pair;
    var city = RA.state.city;
    var head = '<tr><th></th>' + matrix.cols.map(function (b) {
      return '<th>' + RA.esc(RA.areaName(b)) + '</th>';
    }).join('') + '</tr>';
    var body = matrix.rows.filter(function (a) {
      return !city || a === city || matrix.counts[a][city];
    }).map(function (a) {
      return '<tr><th>' + RA.esc(RA.areaName(a)) + '</th>' + matrix.cols.map(function (b) {
        var n = (matrix.counts[a] || {})[b] || 0;
        if (!n) return '<td class="zero">·</td>';
        var active = pair && pair[0] === a && pair[1] === b ? ' active' : '';
        return '<td class="n' + active + '" data-a="' + a + '" data-b="' + b + '" title="' +
          RA.esc(RA.areaName(a) + ' → ' + RA.areaName(b)) + '">' + n + '</td>';
      }).join('') + '</tr>';
    }).join('');
    el.innerHTML = '<table>' + head + body + '</table>';
  }

  /** Zoom to a pair of cities and show only the flags of sources in `a` that concern `b`. */
  function selectPair(a, b) {
    var same = RA.state.pair && RA.state.pair[0] === a && RA.state.pair[1] === b;
    RA.state.pair = same ? null : [a, b];
    RA.popup.close();
    applyFilter();
    renderMatrix();
    if (RA.state.pair) {
      RA.highlightAreas([a, b]);
      RA.fitAreas([a, b]);
    } else {
      RA.highlightAreas(RA.state.city ? [RA.state.city] : []);
    }
    if (RA.state.flagsOnly) RA.applyFilters();
  }

  function matching() {
    var st = RA.state;
    return features.filter(function (f) {
      var p = props(f);
      if (st.pair) return p.source_city === st.pair[0] && p.other_code === st.pair[1];
      if (st.city && p.source_city !== st.city && p.other_code !== st.city) return false;
      return st.levels[p.risk_level || ''] !== false;
    });
  }

  function applyFilter() {
    var st = RA.state;
    var f = null;
    if (st.pair) {
      f = ['all', ['==', ['get', 'source_city'], st.pair[0]], ['==', ['get', 'other_code'], st.pair[1]]];
    } else if (st.city) {
      f = ['any', ['==', ['get', 'source_city'], st.city], ['==', ['get', 'other_code'], st.city]];
    }
    RA.setFilter('flags', f);
  }

  function flaggedKeys() {
    var seen = {};
    matching().forEach(function (f) { seen[props(f).source_key] = true; });
    return Object.keys(seen);
  }

  function reason(p) {
    return RA.state.lang === 'zh' ? (p.reason_zh || p.reason) : (p.reason || p.reason_zh);
  }

  document.addEventListener('click', function (e) {
    var td = e.target.closest && e.target.closest('#matrix td.n');
    if (td) selectPair(td.dataset.a, td.dataset.b);
    var toggle = e.target.closest && e.target.closest('#matrix-toggle');
    if (toggle) {
      var panel = document.getElementById('matrix-panel');
      var collapsed = panel.classList.toggle('collapsed');
      toggle.textContent = collapsed ? '▸' : '▾';
      toggle.setAttribute('aria-expanded', String(!collapsed));
    }
  });

  RA.flags = {
    load: load, prefetch: prefetch, renderMatrix: renderMatrix, selectPair: selectPair, applyFilter: applyFilter,
    flaggedKeys: flaggedKeys, reason: reason,
    count: function () { return features.length; },
    forSource: function (key) { return byKey[key] || []; }
  };
})(window.RA = window.RA || {});
