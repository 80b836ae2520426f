/* The phone page's incident notices: the alerts of viewer-incidents.js (loaded before this, with
 * data-manual), mounted with the page's root, at the end of the page rather than over it. */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent);
  var alerts = window.riskatlasIncidents({ root: String(cfg.scope || '/m').replace(/\/m$/, '') });
  var box = document.getElementById('incident-alerts');
  if (box) { box.style.position = 'static'; box.style.margin = '8px 4px'; box.style.maxWidth = 'none'; }  // in the flow: it covers no site
  window.riskatlasPhoneIncidents = alerts;
})();
