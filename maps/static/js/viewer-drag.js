/* Panels the planner can move out of the way: drag the matrix panel by its title bar (mouse, pen or
 * touch). The panel keeps inside the map; a double click on the title puts it back in its corner.
 */
(function (RA) {
  'use strict';

  function movable(panel, handle) {
    var start = null;
    handle.style.cursor = 'move';
    handle.style.touchAction = 'none';
    handle.addEventListener('pointerdown', function (e) {
      if (e.target.closest('button')) return;  // the collapse button stays a button
      var r = panel.getBoundingClientRect();
      start = { x: e.clientX, y: e.clientY, left: r.left, top: r.top };
      handle.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    handle.addEventListener('pointermove', function (e) {
      if (!start) return;
      var w = panel.offsetWidth, h = panel.offsetHeight;
      var left = Math.min(Math.max(0, start.left + e.clientX - start.x), window.innerWidth - w);
      var top = Math.min(Math.max(0, start.top + e.clientY - start.y), window.innerHeight - h);
      panel.style.left = left + 'px';
      panel.style.top = top + 'px';
      panel.style.right = 'auto';
      panel.style.bottom = 'auto';
    });
    var end = function () { start = null; };
    handle.addEventListener('pointerup', end);
    handle.addEventListener('pointercancel', end);
    handle.addEventListener('dblclick', function () {
      panel.style.left = panel.style.top = panel.style.right = panel.style.bottom = '';
    });
  }

  RA.drag = { movable: movable };
  document.addEventListener('DOMContentLoaded', function () {
    var panel = document.getElementById('matrix-panel');
    if (panel) movable(panel, panel.querySelector('h2'));
  });
})(window.RA = window.RA || {});
