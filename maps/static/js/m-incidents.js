/* The phone page's incident notices: the alerts of viewer-incidents.js (loaded before this, with
 * data-manual), mounted with the page's root and laid across the bottom of a narrow screen. */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent);
  var alerts = window.riskatlasIncidents({ root: String(cfg.scope || '/m').replace(/\/m$/, '') });
  var box = document.getElementById('incident-alerts');
  if (box) { box.style.left = '4px'; box.style.right = '4px'; box.style.maxWidth = 'none'; }
  window.riskatlasPhoneIncidents = alerts;
})();
