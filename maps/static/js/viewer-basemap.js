/* The basemap switcher of the planner's map: the offline reference map drawn from the database (the
 * default, it needs no network) or an online preset the bureau switched on in settings (GET
 * /map/basemaps.json). A preset that cannot be used (no key, or AMap's GCJ-02 tiles) is listed, disabled,
 * with the reason. The raster layers of every usable preset are in the style, hidden; choosing one shows
 * its layers under the thematic ones.
 */
(function (RA) {
  'use strict';
  var list = null;
  var current = 'offline';

  function layerIds(b) {
    var ids = [];
    for (var i = 0; i < b.layers; i++) ids.push('bm-' + b.name + '-' + i);
    return ids;
  }

  function render() {
    var sel = document.getElementById('basemap');
    if (!sel || !list) return;
    var lang = RA.state.lang;
    sel.innerHTML = list.basemaps.map(function (b) {
      var why = b.reason ? b.reason[lang] : '';
      return '<option value="' + RA.esc(b.name) + '"' + (b.available ? '' : ' disabled') +
        (b.name === current ? ' selected' : '') + ' title="' + RA.esc(why) + '">' + RA.esc(b[lang]) +
        (why ? ' — ' + RA.esc(why) : '') + '</option>';
    }).join('');
  }

  /** Show the basemap `name` (its raster layers), hide every other one. */
  function use(name) {
    var map = RA.map;
    if (!list || !list.basemaps.some(function (b) { return b.name === name && b.available; })) return;
    current = name;
    list.basemaps.forEach(function (b) {
      layerIds(b).forEach(function (id) {
        if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', b.name === name ? 'visible' : 'none');
      });
    });
    document.documentElement.dataset.basemap = name;
    render();
    document.dispatchEvent(new CustomEvent('riskatlas:basemap', { detail: { name: name } }));
  }

  var asked = null;

  /** Ask for the list now, while the map loads; init() takes the answer. */
  function prefetch() {
    if (!asked) asked = RA.getJSON(RA.cfg.basemaps);
  }

  function init(start) {
    prefetch();
    var answer = asked;
    asked = null;
    return answer.then(function (doc) {
      list = doc;
      current = start && doc.basemaps.some(function (b) { return b.name === start && b.available; }) ? start : doc.default;
      document.getElementById('basemap').addEventListener('change', function (e) { use(e.target.value); });
      use(current);
    }).catch(function () { /* the offline map stays */ });
  }

  RA.basemap = { init: init, prefetch: prefetch, render: render, use: use, current: function () { return current; } };
})(window.RA = window.RA || {});
