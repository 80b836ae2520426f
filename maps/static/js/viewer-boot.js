/* The planner's map, first script: the page's configuration (RA.cfg), the JSON fetch every part of the
 * viewer uses (RA.abs, RA.getJSON), and the documents the map starts from (the styles, the style and the
 * labels) asked for the moment the page is parsed, so that they arrive while MapLibre and the viewer's own
 * scripts load and run instead of after them. viewer.js takes the answers from RA.boot. */
(function (RA) {
  'use strict';
  RA.abs = function (path) { return new URL(path, location.href).href; };
  RA.getJSON = function (path) {
    return fetch(RA.abs(path), { headers: { Accept: 'application/json' } }).then(function (r) {
      if (!r.ok) throw new Error(path + ' answered ' + r.status);
      return r.json();
    });
  };
  var cfg = RA.cfg = JSON.parse(document.getElementById('config').textContent);
  var ask = function (path) {
    var answer = RA.getJSON(path);
    answer.catch(function () {});  // viewer.js reports a failure; none is "unhandled" before it runs
    return answer;
  };
  RA.boot = { styles: ask(cfg.styles), style: ask(cfg.style), labels: ask(cfg.labels) };
})(window.RA = window.RA || {});
