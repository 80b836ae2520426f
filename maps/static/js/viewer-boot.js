/* The planner's map, first script: asks for the documents the map starts from (the styles, the style and
 * the labels) the moment the page is parsed, so that they arrive while MapLibre and the viewer's own
 * scripts load and run instead of after them. viewer.js takes the answers from RA.boot. */
(function (RA) {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent);
  var get = function (path) {
    var answer = fetch(new URL(path, location.href).href, { headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) throw new Error(path + ' answered ' + r.status);
        return r.json();
      });
    answer.catch(function () {});  // viewer.js reports a failure; none is "unhandled" before it runs
    return answer;
  };
  RA.boot = { styles: get(cfg.styles), style: get(cfg.style), labels: get(cfg.labels) };
})(window.RA = window.RA || {});
