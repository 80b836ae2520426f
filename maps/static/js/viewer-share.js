/* The planner's map as a link: the view (zoom, centre), the filters (city, levels, categories, flags
 * only), the matrix pair, the basemap and the language live in the address's fragment, written as the
 * planner works and read when the page opens, so a link shows a colleague the same map.
 * #zoom/lat/lon&city=320100&level=major,larger&category=chemical&flags=1&pair=320100-341100&basemap=osm&lang=en
 * (levels and categories only when some are off; `level=-` for none, `none` stands for "not graded").
 */
(function (RA) {
  'use strict';
  var last = '';

  function listed(o) {
    var keys = Object.keys(o);
    var on = keys.filter(function (k) { return o[k]; });
    if (on.length === keys.length) return null;
    return on.length ? on.map(function (k) { return k === '' ? 'none' : k; }).join(',') : '-';
  }

  /** The fragment for the map as it stands. */
  function fragment() {
    var S = RA.state, map = RA.map, c = map.getCenter();
    var parts = [map.getZoom().toFixed(2) + '/' + c.lat.toFixed(5) + '/' + c.lng.toFixed(5)];
    var add = function (k, v) { if (v) parts.push(k + '=' + encodeURIComponent(v)); };
    add('city', S.city);
    add('level', listed(S.levels));
    add('category', listed(S.categories));
    add('flags', S.flagsOnly ? '1' : '');
    add('pair', S.pair ? S.pair.join('-') : '');
    var bm = RA.basemap.current();
    add('basemap', bm !== 'offline' ? bm : '');
    add('lang', S.lang !== (RA.cfg.lang || 'zh') ? S.lang : '');
    return '#' + parts.join('&');
  }

  function write() {
    var f = fragment();
    if (f === last) return;
    last = f;
    history.replaceState(null, '', f);
  }

  /** The state a fragment asks for (null without one): {camera, city, levels, categories, flags, pair, basemap, lang}. */
  function parse(hash) {
    var text = (hash || '').replace(/^#/, '');
    if (!text) return null;
    var parts = text.split('&'), out = {};
    var cam = parts[0].split('/').map(Number);
    if (cam.length === 3 && cam.every(isFinite)) out.camera = { zoom: cam[0], center: [cam[2], cam[1]] };
    parts.slice(1).forEach(function (p) {
      var i = p.indexOf('=');
      if (i > 0) out[p.slice(0, i)] = decodeURIComponent(p.slice(i + 1));
    });
    return out;
  }

  function choose(o, value) {
    if (value == null) return;
    var wanted = value === '-' ? [] : value.split(',').map(function (k) { return k === 'none' ? '' : k; });
    Object.keys(o).forEach(function (k) { o[k] = wanted.indexOf(k) >= 0; });
  }

  /** Apply the fragment of the address, if any; true when it set the camera. */
  function restore() {
    var want = parse(location.hash);
    if (!want) return false;
    var S = RA.state;
    if (want.lang === 'en' || want.lang === 'zh') RA.setLanguage(want.lang);
    if (want.city && RA.areas[want.city]) S.city = want.city;
    choose(S.levels, want.level);
    choose(S.categories, want.category);
    S.flagsOnly = want.flags === '1';
    RA.panel.render();
    RA.highlightAreas(S.city ? [S.city] : []);
    if (want.pair) {
      var ab = want.pair.split('-');
      if (ab.length === 2 && RA.areas[ab[0]] && RA.areas[ab[1]]) RA.flags.selectPair(ab[0], ab[1]);
    }
    if (want.basemap) RA.basemap.use(want.basemap);
    if (want.camera) RA.map.jumpTo(want.camera);
    return !!want.camera;
  }

  function start() {
    RA.map.on('moveend', write);
    RA.map.on('idle', write);
    write();
    document.getElementById('share').addEventListener('click', function () {
      write();
      var box = document.getElementById('share-link');
      box.value = location.href;
      box.hidden = false;
      box.select();
      if (navigator.clipboard) navigator.clipboard.writeText(location.href).catch(function () { /* selected */ });
    });
  }

  RA.share = { restore: restore, start: start, fragment: fragment, parse: parse };
})(window.RA = window.RA || {});
