/* The side panel of the planner's map: language, search, filters, and the layer switcher with its legend.
 * Everything is drawn from the style document, so the legend shows exactly what the map draws.
 */
(function (RA) {
  'use strict';

  var S = function () { return RA.state; };
  var $ = function (id) { return document.getElementById(id); };
  var SEARCHED = ['risk_source', 'water_reserve', 'monitoring_station', 'protected_area'];
  var SEARCH_LIMIT = 20;  // per layer; beyond it the list says how many more matched
  var searchSeq = 0;

  function swatch(name, entry, value) {
    var colour = value != null && entry.palette && entry.palette[value] ? entry.palette[value] : entry.color;
    var g = entry.geometry_type;
    if (name === 'flags') return '<span class="swatch ring" style="border-color:' + colour + '"></span>';
    if (g === 'Point') {
      if (entry.shapes) return RA.symbols.svg(RA.doc.shapes.circle, colour, 14);
      return '<span class="swatch dot" style="background:' + colour + '"></span>';
    }
    if (g === 'LineString') return '<span class="swatch line" style="border-top-color:' + colour + '"></span>';
    var fill = value != null && entry.palette && entry.palette[value] ? entry.palette[value] : entry.fill;
    if (name === 'admin_area') return '<span class="swatch area" style="border-color:' + colour + '"></span>';
    return '<span class="swatch area" style="border-color:' + colour + ';background:' + fill +
      ';opacity:' + Math.max(entry.fill_opacity + 0.3, 0.5) + '"></span>';
  }

  function checkbox(group, value, checked, html) {
    return '<label><input type="checkbox" data-group="' + group + '" value="' + RA.esc(value) + '"' +
      (checked ? ' checked' : '') + '> ' + html + '</label>';
  }

  function renderFilters() {
    var st = S();
    var rs = RA.doc.layers.risk_source;
    var city = $('city');
    var options = ['<option value="">' + RA.esc(RA.t('all_cities')) + '</option>'];
    Object.keys(RA.areas).map(function (c) { return RA.areas[c]; })
      .filter(function (a) { return a.level === 'city'; })
      .forEach(function (a) {
        options.push('<option value="' + a.code + '"' + (st.city === a.code ? ' selected' : '') + '>' +
          RA.esc(RA.areaName(a.code)) + '</option>');
      });
    city.innerHTML = options.join('');
    var levels = rs.classes.map(function (v) {
      return checkbox('levels', v, st.levels[v], RA.symbols.svg(RA.doc.shapes.circle, rs.palette[v], 14) +
        ' ' + RA.esc(RA.v('risk_level', v)));
    });
    levels.push(checkbox('levels', '', st.levels[''], RA.symbols.svg(RA.doc.shapes.circle, rs.missing_color, 14) +
      ' ' + RA.esc(rs.missing_label[st.lang])));
    $('filter-level').innerHTML = levels.join('');
    $('filter-category').innerHTML = Object.keys(rs.shapes).map(function (v) {
      return checkbox('categories', v, st.categories[v],
        RA.symbols.svg(RA.doc.shapes[rs.shapes[v]], '#555555', 14) + ' ' + RA.esc(RA.v('category', v)));
    }).join('');
    $('flags-only').checked = st.flagsOnly;
  }

  function renderSwitcher() {
    var st = S();
    var names = RA.doc.order.slice().reverse();
    names.splice(1, 0, 'flags');
    var counts = {};
    (RA.layerInfo.layers || []).forEach(function (l) { counts[l.name] = l.count; });
    $('switcher').innerHTML = names.map(function (name) {
      var entry = name === 'flags' ? RA.doc.flags : RA.doc.layers[name];
      var title = st.lang === 'zh' ? entry.title_zh : entry.title;
      var count = name === 'flags' ? RA.flags.count() : counts[name];
      var classes = '';
      if (name === 'flags') {  // the shape says the kind of flag, the colour its severity
        classes = entry.kinds.map(function (k) {
          return '<div class="flag-kind" data-kind="' + RA.esc(k) + '">' +
            RA.symbols.svg(RA.doc.shapes['flag-' + k], '#555555', 16, 'none') + ' ' + RA.esc(RA.v('kind', k)) + '</div>';
        }).join('') + entry.classes.map(function (v) {
          return '<div>' + swatch('flags', entry, v) + ' ' + RA.esc(RA.v('severity', v)) + '</div>';
        }).join('');
      } else if (name === 'admin_area') {
        classes = ['province', 'city', 'county'].map(function (v) {
          return '<div><span class="swatch line" style="border-top-color:' + entry.color + ';border-top-width:' +
            { province: 3, city: 2, county: 1 }[v] + 'px;' + (v === 'county' ? 'border-top-style:dashed' : '') +
            '"></span> ' + RA.esc(RA.v('level', v)) + '</div>';
        }).join('');
      } else if (entry.color_by && name !== 'risk_source') {
        classes = entry.classes.map(function (v) {
          return '<div>' + swatch(name, entry, v) + ' ' + RA.esc(RA.v(entry.color_by, v)) + '</div>';
        }).join('');
      }
      return '<div class="layer"><label>' +
        '<input type="checkbox" data-layer="' + name + '"' + (st.visible[name] !== false ? ' checked' : '') + '> ' +
        swatch(name, entry) + ' ' + RA.esc(title) +
        (count != null ? ' <span class="count">' + Number(count).toLocaleString() + '</span>' : '') +
        '</label>' + (classes ? '<div class="classes">' + classes + '</div>' : '') + '</div>';
    }).join('');
  }

  function render() {
    document.querySelectorAll('[data-t]').forEach(function (el) { el.textContent = RA.t(el.dataset.t); });
    document.querySelectorAll('[data-t-placeholder]').forEach(function (el) {
      el.placeholder = RA.t(el.dataset.tPlaceholder);
    });
    $('lang').textContent = RA.t('language');
    document.title = RA.t('title');
    renderFilters();
    renderSwitcher();
  }

  function centreOf(geometry) {
    var box = [Infinity, Infinity, -Infinity, -Infinity];
    var walk = function (c) {
      if (typeof c[0] === 'number') {
        box[0] = Math.min(box[0], c[0]); box[1] = Math.min(box[1], c[1]);
        box[2] = Math.max(box[2], c[0]); box[3] = Math.max(box[3], c[1]);
      } else c.forEach(walk);
    };
    walk(geometry.coordinates);
    return box;
  }

  function showResults(items) {
    var ul = $('results');
    if (!items.length) {
      ul.innerHTML = '<li class="none">' + RA.esc(RA.t('no_match')) + '</li>';
    } else {
      ul.innerHTML = items.map(function (it, i) {
        var title = RA.state.lang === 'zh' ? it.entry.title_zh : it.entry.title;
        if (it.more) {  // the layer matched more than were listed: say how many, and to narrow the search
          return '<li class="more">' + RA.esc(title) + ': ' + RA.esc(RA.t('more_matches').replace('{n}', it.more)) + '</li>';
        }
        return '<li tabindex="0" data-i="' + i + '">' + RA.esc(it.name) + '<small>' + RA.esc(title) +
          (it.city ? ' · ' + RA.esc(RA.areaName(it.city)) : '') + (it.address ? ' · ' + RA.esc(it.address) : '') +
          '</small></li>';
      }).join('');
    }
    ul.hidden = false;
    ul.onclick = function (e) {
      var li = e.target.closest('li[data-i]');
      if (!li) return;
      var it = items[Number(li.dataset.i)];
      ul.hidden = true;
      it.go();
    };
  }

  function search(text) {
    var q = text.trim();
    var seq = ++searchSeq;
    if (q.length < 1) { $('results').hidden = true; return; }
    var lower = q.toLowerCase();
    var found = Object.keys(RA.areas).map(function (c) { return RA.areas[c]; }).filter(function (a) {
      return a.level !== 'province' && (a.name.indexOf(q) >= 0 || (a.name_en || '').toLowerCase().indexOf(lower) >= 0);
    }).slice(0, SEARCH_LIMIT).map(function (a) {
      return { name: RA.areaName(a.code), entry: RA.doc.layers.admin_area, city: a.level === 'county' ? a.parent_code : '',
        go: function () { RA.fitAreas([a.code]); RA.highlightAreas([a.code]); } };
    });
    // CASEI lowers the name; the pattern is lowered here (a CQL2 LIKE pattern must be a plain string).
    var pattern = "'%" + lower.replace(/'/g, "''") + "%'";
    var requests = SEARCHED.map(function (coll) {
      // by name, and by address where the layer has one
      var fields = (RA.doc.layers[coll].fields || []).map(function (f) { return f.name; });
      var where = 'CASEI(name) LIKE ' + pattern +
        (fields.indexOf('address') >= 0 ? ' OR CASEI(address) LIKE ' + pattern : '');
      var url = RA.cfg.collections + '/' + coll + '/items?limit=' + SEARCH_LIMIT + '&zoom=' + RA.displayZoom() +
        '&filter=' + encodeURIComponent(where);
      return RA.getJSON(url).then(function (fc) {
        var items = fc.features.map(function (f) {
          return { name: f.properties.name, entry: RA.doc.layers[coll], city: f.properties.city_code,
            address: f.properties.address,
            go: function () {
              var b = centreOf(f.geometry);
              if (b[0] === b[2] && b[1] === b[3]) RA.map.flyTo({ center: [b[0], b[1]], zoom: Math.max(RA.map.getZoom(), 12) });
              else RA.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, maxZoom: 14 });
              RA.popup.open(coll, f.properties, [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]);
            } };
        });
        if (fc.numberMatched > items.length) {
          items.push({ more: fc.numberMatched - items.length, entry: RA.doc.layers[coll] });
        }
        return items;
      }).catch(function () { return []; });
    });
    Promise.all(requests).then(function (lists) {
      if (seq !== searchSeq) return;
      showResults(found.concat.apply(found, lists));
    });
  }

  function init() {
    var st = S();
    $('lang').addEventListener('click', function () { RA.setLanguage(st.lang === 'zh' ? 'en' : 'zh'); });
    $('panel-toggle').addEventListener('click', function () { $('panel').classList.toggle('open'); });
    $('city').addEventListener('change', function (e) {
      st.city = e.target.value;
      st.pair = null;
      RA.popup.close();  // a popup of the old view would point at what the new one may hide
      RA.applyFilters();
      RA.flags.renderMatrix();
      if (st.city) { RA.fitAreas([st.city]); RA.highlightAreas([st.city]); }
      else { RA.highlightAreas([]); }
    });
    $('panel').addEventListener('change', function (e) {
      var t = e.target;
      if (t.dataset.group) {
        st[t.dataset.group][t.value] = t.checked;
        RA.applyFilters();
      } else if (t.dataset.layer) {
        st.visible[t.dataset.layer] = t.checked;
        RA.updateVisibility();
      } else if (t.id === 'flags-only') {
        st.flagsOnly = t.checked;
        RA.applyFilters();
      }
    });
    $('reset').addEventListener('click', function () {
      Object.keys(st.levels).forEach(function (k) { st.levels[k] = true; });
      Object.keys(st.categories).forEach(function (k) { st.categories[k] = true; });
      st.city = '';
      st.flagsOnly = false;
      st.pair = null;
      RA.popup.close();
      renderFilters();
      RA.highlightAreas([]);
      RA.applyFilters();
      RA.flags.renderMatrix();
    });
    var timer = null;
    $('search').addEventListener('input', function (e) {
      clearTimeout(timer);
      timer = setTimeout(function () { search(e.target.value); }, 250);
    });
    $('search').addEventListener('keydown', function (e) {
      if (e.key === 'Enter') { clearTimeout(timer); search(e.target.value); }
      if (e.key === 'Escape') $('results').hidden = true;
    });
  }

  RA.panel = { init: init, render: render, renderSwitcher: renderSwitcher, search: search };
})(window.RA = window.RA || {});
