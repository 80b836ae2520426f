/* Symbols of the maps, drawn from the SVG paths of the style document (/styles.json `shapes`).
 *
 * `svg` makes a small inline SVG for legends and lists; `sdf` rasterises a shape into a signed
 * distance field that MapLibre tints per feature (`icon-color`) and outlines (`icon-halo-*`), so one
 * image per shape serves every risk level. No sprite file and no network request is needed.
 */
(function (RA) {
  'use strict';

  var SDF_SIZE = 48;   // the shape's box, in image pixels (drawn at pixelRatio 2: 24 CSS pixels)
  var SDF_PAD = 8;     // room for the halo around the shape
  var SDF_RADIUS = 8;  // distance covered by the field, as in MapLibre's own glyph SDFs
  var SDF_CUTOFF = 0.25;

  function escapeAttr(s) {
    return String(s).replace(/[&"<>]/g, function (c) {
      return { '&': '&amp;', '"': '&quot;', '<': '&lt;', '>': '&gt;' }[c];
    });
  }

  /** An inline SVG of a shape path, filled with `colour`. */
  function svg(path, colour, size, stroke) {
    size = size || 14;
    return '<svg class="sym" width="' + size + '" height="' + size + '" viewBox="0 0 24 24" aria-hidden="true">' +
      '<path fill-rule="evenodd" d="' + escapeAttr(path) + '" fill="' + escapeAttr(colour) + '" stroke="' +
      escapeAttr(stroke || '#ffffff') + '" stroke-width="1.5"/></svg>';
  }

  /** The shape as MapLibre SDF image data: alpha 191 on the outline, rising inside, falling outside. */
  function sdf(path) {
    var w = SDF_SIZE + 2 * SDF_PAD;
    var canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = w;
    var ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.translate(SDF_PAD, SDF_PAD);
    ctx.scale(SDF_SIZE / 24, SDF_SIZE / 24);
    ctx.fill(new Path2D(path), 'evenodd');  // hollow shapes (the flags' rings) stay hollow
    var alpha = ctx.getImageData(0, 0, w, w).data;
    var inside = new Uint8Array(w * w);
    for (var i = 0; i < w * w; i++) inside[i] = alpha[i * 4 + 3] > 127 ? 1 : 0;
    var out = new Uint8ClampedArray(w * w * 4);
    var r = SDF_RADIUS + 1;
    for (var y = 0; y < w; y++) {
      for (var x = 0; x < w; x++) {
        var me = inside[y * w + x];
        var best = r * r;
        for (var dy = -r; dy <= r; dy++) {
          var yy = y + dy;
          if (yy < 0 || yy >= w) continue;
          for (var dx = -r; dx <= r; dx++) {
            var xx = x + dx;
            if (xx < 0 || xx >= w) continue;
            if (inside[yy * w + xx] !== me) {
              var d2 = dx * dx + dy * dy;
              if (d2 < best) best = d2;
            }
          }
        }
        var d = Math.sqrt(best) - 0.5;        // pixel centres: the edge lies half a pixel away
        var signed = me ? -d : d;             // negative inside
        var v = 255 * (1 - (signed / SDF_RADIUS + SDF_CUTOFF));
        var k = (y * w + x) * 4;
        out[k] = out[k + 1] = out[k + 2] = 0;
        out[k + 3] = v;
      }
    }
    return { width: w, height: w, data: out };
  }

  /** Give `map` the image `shape-<name>` of every shape when MapLibre first asks for it. */
  function provide(map, shapes) {
    map.on('styleimagemissing', function (e) {
      var name = e.id.indexOf('shape-') === 0 ? e.id.slice(6) : null;
      if (!name || !shapes[name] || map.hasImage(e.id)) return;
      map.addImage(e.id, sdf(shapes[name]), { sdf: true, pixelRatio: 2 });
    });
  }

  RA.symbols = { svg: svg, sdf: sdf, provide: provide };
})(window.RA = window.RA || {});
