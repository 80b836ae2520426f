/* The print layout of the planner's map and its export as PNG, for reports.
 *
 * 打印 · 导出 opens the layout over the page: an editable title, the map as it is (view, filters, layers),
 * a legend of what is drawn, a scale bar and a north arrow, the date, the data credits and, for synthetic
 * data, the notice. 打印 prints it (A4 landscape; the browser's print dialog also saves PDF); 导出 PNG
 * composes the same layout on a canvas at the screen's pixel ratio and downloads it. One legend model
 * (legendRows) feeds both. `window.riskmap.print` = { open, close, png, lastExport } for tests.
 */
(function (RA) {
  'use strict';

  var TEXT = {
    zh: { open: '打印 · 导出图片', print: '打印', png: '导出 PNG', close: '关闭', legend: '图例', made: '制图日期',
          crs: '坐标系 CGCS2000 / WGS84', default_title: '南京都市圈环境风险源分布图', scale: '比例尺',
          levels: '风险等级', north: '北' },
    en: { open: 'Print · export image', print: 'Print', png: 'Export PNG', close: 'Close', legend: 'Legend',
          made: 'Made', crs: 'Coordinates CGCS2000 / WGS84', default_title: 'Risk sources of the Nanjing metropolitan area',
          scale: 'Scale', levels: 'Risk level', north: 'N' }
  };
  var HEAD_H = 60, FOOT_H = 46, LEGEND_W = 240;
  var api = {};
  var els = {};
  var titleEdited = false;

  function t(k) { return TEXT[RA.state.lang === 'en' ? 'en' : 'zh'][k]; }
  function $(id) { return document.getElementById(id); }

  function defaultTitle() {
    var city = RA.state.city ? RA.areaName(RA.state.city) + ' · ' : '';
    return city + t('default_title');
  }

  function madeAt() {
    return new Date().toLocaleString(RA.state.lang === 'en' ? 'en-GB' : 'zh-CN', {
      timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit'
    }) + ' (UTC+8)';
  }

  function layerOn(name) {
    var box = document.querySelector('#switcher input[data-layer="' + name + '"]');
    return box ? box.checked : RA.state.visible[name] !== false;
  }

  /** What the map draws, as legend rows: {kind: head|dot|ring|line|area, colour, fill, text, width, dash, top}
   * (`top`: a layer drawn in one style, a row of its own at the level of the headings). */
  function legendRows() {
    var rows = [];
    var doc = RA.doc;
    var names = doc.order.slice().reverse();
    names.splice(1, 0, 'flags');
    names.forEach(function (name) {
      if (!layerOn(name)) return;
      var entry = name === 'flags' ? doc.flags : doc.layers[name];
      var title = RA.state.lang === 'zh' ? entry.title_zh : entry.title;
      if (name === 'risk_source') {
        rows.push({ kind: 'head', text: title });
        entry.classes.forEach(function (v) {
          if (RA.state.levels[v]) rows.push({ kind: 'dot', colour: entry.palette[v], text: RA.v('risk_level', v) });
        });
        if (RA.state.levels['']) rows.push({ kind: 'dot', colour: entry.missing_color, text: entry.missing_label[RA.state.lang] });
      } else if (name === 'flags') {
        if (!RA.flags.count()) return;
        rows.push({ kind: 'head', text: title });
        entry.classes.forEach(function (v) { rows.push({ kind: 'ring', colour: entry.palette[v], text: RA.v('severity', v) }); });
      } else if (name === 'admin_area') {
        rows.push({ kind: 'head', text: title });
        ['province', 'city', 'county'].forEach(function (v) {
          rows.push({ kind: 'line', colour: entry.color, width: { province: 3, city: 2, county: 1 }[v],
                      dash: v === 'county', text: RA.v('level', v) });
        });
      } else if (name === 'monitoring_station' && RA.stations && (RA.stations.categories || []).length) {
        rows.push({ kind: 'head', text: title });
        RA.stations.categories.forEach(function (c) {
          rows.push({ kind: 'dot', colour: c.hex, text: RA.state.lang === 'zh' ? c.name_zh : c.name_en });
        });
      } else if (entry.color_by) {
        rows.push({ kind: 'head', text: title });
        entry.classes.forEach(function (v) {
          var g = entry.geometry_type;
          rows.push({ kind: g === 'Point' ? 'dot' : g === 'LineString' ? 'line' : 'area', colour: entry.palette[v] || entry.color,
                      fill: entry.palette[v] || entry.fill, text: RA.v(entry.color_by, v), width: 2 });
        });
      } else {
        var g = entry.geometry_type;
        rows.push({ kind: g === 'Point' ? 'dot' : g === 'LineString' ? 'line' : 'area', colour: entry.color,
                    fill: entry.fill, text: title, width: 2, top: true });
      }
    });
    var gaps = RA.gaps ? RA.gaps.legend() : [];
    if (gaps.length) rows.push({ kind: 'head', text: RA.state.lang === 'zh' ? '监测盲区' : 'Monitoring gaps' });
    return rows.concat(gaps);
  }

  function swatchHtml(r) {
    if (r.kind === 'dot') return '<span class="swatch dot" style="background:' + r.colour + '"></span>';
    if (r.kind === 'ring') return '<span class="swatch ring" style="border-color:' + r.colour + '"></span>';
    if (r.kind === 'line') {
      return '<span class="swatch line" style="border-top-color:' + r.colour + ';border-top-width:' + (r.width || 2) +
        'px;' + (r.dash ? 'border-top-style:dashed' : '') + '"></span>';
    }
    return '<span class="swatch area" style="border-color:' + r.colour + ';background:' + (r.fill || r.colour) +
      ';opacity:0.7"></span>';
  }

  function credits() {
    var el = document.querySelector('.maplibregl-ctrl-attrib-inner');
    return el ? el.textContent.trim() : '';
  }

  function synthetic() {
    var el = $('notice');
    return el && !el.hidden ? el.textContent.trim() : '';
  }

  function fill() {
    els.title.placeholder = defaultTitle();
    if (!titleEdited) els.title.value = defaultTitle();
    els.legend.innerHTML = '<h3>' + RA.esc(t('legend')) + '</h3>' + legendRows().map(function (r) {
      return r.kind === 'head' ? '<div class="head">' + RA.esc(r.text) + '</div>'
        : '<div' + (r.top ? ' class="head"' : '') + '>' + swatchHtml(r) + ' ' + RA.esc(r.text) + '</div>';
    }).join('');
    els.foot.innerHTML = '<span>' + RA.esc(t('made')) + ' ' + RA.esc(madeAt()) + ' · ' + RA.esc(t('crs')) + '</span>' +
      '<span class="credits">' + RA.esc(credits()) + '</span>' +
      (synthetic() ? '<span class="synthetic">' + RA.esc(synthetic()) + '</span>' : '');
    els.north.style.transform = 'rotate(' + (-RA.map.getBearing()) + 'deg)';
    els.north.querySelector('text').textContent = t('north');
    els.bar.querySelector('[data-act="print"]').textContent = t('print');
    els.bar.querySelector('[data-act="png"]').textContent = t('png');
    els.bar.querySelector('[data-act="close"]').textContent = t('close');
  }

  function build() {
    if (els.head) return;
    var mk = function (tag, id, html) {
      var el = document.createElement(tag);
      el.id = id;
      if (html) el.innerHTML = html;
      document.body.appendChild(el);
      return el;
    };
    els.head = mk('header', 'print-head', '<input id="print-title" type="text" aria-label="title">');
    els.title = $('print-title');
    els.title.addEventListener('input', function () { titleEdited = true; });
    els.legend = mk('aside', 'print-legend');
    els.foot = mk('footer', 'print-foot');
    els.bar = mk('div', 'print-bar', '<button type="button" data-act="print"></button> ' +
      '<button type="button" data-act="png"></button> <button type="button" data-act="close"></button>');
    els.bar.addEventListener('click', function (e) {
      var act = e.target.dataset.act;
      if (act === 'print') window.print();
      if (act === 'png') api.png().then(download);
      if (act === 'close') api.close();
    });
    els.north = document.createElement('div');
    els.north.id = 'print-north';
    els.north.innerHTML = '<svg viewBox="0 0 40 52" width="32" height="42" aria-hidden="true">' +
      '<polygon points="20,4 31,38 20,31 9,38" fill="#222"/><polygon points="20,4 20,31 9,38" fill="#fff" stroke="#222" stroke-width="1.2"/>' +
      '<text x="20" y="51" text-anchor="middle" font-size="12" font-weight="700"></text></svg>';
    $('map').appendChild(els.north);
  }

  api.open = function () {
    build();
    RA.popup.close();
    document.body.classList.add('print-mode');
    fill();
    RA.map.resize();
    RA.map.on('moveend', fill);
    return window.riskmap.settle();
  };

  api.close = function () {
    document.body.classList.remove('print-mode');
    RA.map.off('moveend', fill);
    RA.map.resize();
  };

  /** A scale bar for the map's current view: the round length (1, 2 or 5 × 10^n m) under `maxPx` pixels. */
  function scaleBar(maxPx) {
    var map = RA.map;
    var c = map.getContainer();
    var y = c.clientHeight - 20;
    var a = map.unproject([10, y]), b = map.unproject([10 + maxPx, y]);
    var metres = window.geodesic.Geodesic.WGS84.Inverse(a.lat, a.lng, b.lat, b.lng).s12;
    var pow = Math.pow(10, Math.floor(Math.log10(metres)));
    var nice = [5, 2, 1].map(function (k) { return k * pow; }).filter(function (m) { return m <= metres; })[0] || pow;
    return { metres: nice, px: maxPx * nice / metres, text: nice >= 1000 ? (nice / 1000) + ' km' : nice + ' m' };
  }

  function drawSwatch(ctx, r, x, y) {
    ctx.save();
    ctx.strokeStyle = r.colour;
    ctx.fillStyle = r.colour;
    if (r.kind === 'dot' || r.kind === 'ring') {
      ctx.beginPath();
      ctx.arc(x + 7, y, 6, 0, 2 * Math.PI);
      if (r.kind === 'dot') { ctx.fill(); ctx.strokeStyle = '#fff'; ctx.lineWidth = 1; ctx.stroke(); } else { ctx.lineWidth = 2.5; ctx.stroke(); }
    } else if (r.kind === 'line') {
      ctx.lineWidth = r.width || 2;
      if (r.dash) ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 14, y); ctx.stroke();
    } else {
      ctx.globalAlpha = 0.7;
      ctx.fillStyle = r.fill || r.colour;
      ctx.fillRect(x, y - 7, 14, 14);
      ctx.globalAlpha = 1;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x, y - 7, 14, 14);
    }
    ctx.restore();
  }

  function wrap(ctx, text, maxW) {
    var lines = [], line = '';
    Array.from(text).forEach(function (ch) {
      if (ctx.measureText(line + ch).width > maxW && line) { lines.push(line); line = ch.trim() ? ch : ''; } else line += ch;
    });
    if (line) lines.push(line);
    return lines;
  }

  /** The layout as a PNG: resolves with {blob, width, height} (device pixels). Opens the layout if closed. */
  api.png = function () {
    var opened = document.body.classList.contains('print-mode') ? window.riskmap.settle() : api.open();
    return opened.then(function () {
      fill();
      return new Promise(function (resolve, reject) {
        var map = RA.map;
        var mapCanvas = map.getCanvas();
        var dpr = mapCanvas.width / mapCanvas.clientWidth;
        var mw = mapCanvas.clientWidth, mh = mapCanvas.clientHeight;
        var W = mw + LEGEND_W, H = HEAD_H + mh + FOOT_H;
        var out = document.createElement('canvas');
        out.width = Math.round(W * dpr);
        out.height = Math.round(H * dpr);
        var ctx = out.getContext('2d');
        var font = function (px, bold) {
          return (bold ? '700 ' : '') + px + 'px system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
        };
        map.once('render', function () {
          try {
            ctx.scale(dpr, dpr);
            ctx.fillStyle = '#fff';
            ctx.fillRect(0, 0, W, H);
            ctx.drawImage(mapCanvas, 0, HEAD_H, mw, mh);  // the WebGL buffer is whole inside 'render'
            // place names (HTML markers over the map)
            ctx.textAlign = 'center';
            ctx.textBaseline = 'middle';
            (RA.labelEls || []).forEach(function (el) {
              if (getComputedStyle(el).display === 'none' || !el.textContent) return;
              var a = RA.areas[el.dataset.code];
              var p = map.project([a.lon, a.lat]);
              if (p.x < 0 || p.y < 0 || p.x > mw || p.y > mh) return;
              ctx.font = font(el.classList.contains('label-city') ? 14 : 11, el.classList.contains('label-city'));
              ctx.lineWidth = 3;
              ctx.strokeStyle = 'rgba(255,255,255,0.9)';
              ctx.strokeText(el.textContent, p.x, HEAD_H + p.y);
              ctx.fillStyle = '#333';
              ctx.fillText(el.textContent, p.x, HEAD_H + p.y);
            });
            // title
            ctx.textAlign = 'left';
            ctx.fillStyle = '#111';
            ctx.font = font(20, true);
            ctx.fillText(els.title.value || defaultTitle(), 16, HEAD_H / 2);
            // north arrow
            ctx.save();
            ctx.translate(mw - 30, HEAD_H + 36);
            ctx.rotate(-map.getBearing() * Math.PI / 180);
            ctx.fillStyle = '#222';
            ctx.beginPath(); ctx.moveTo(0, -20); ctx.lineTo(11, 14); ctx.lineTo(0, 7); ctx.lineTo(-11, 14); ctx.closePath(); ctx.fill();
            ctx.fillStyle = '#fff';
            ctx.beginPath(); ctx.moveTo(0, -18); ctx.lineTo(0, 7); ctx.lineTo(-9, 12); ctx.closePath(); ctx.fill();
            ctx.font = font(12, true);
            ctx.fillStyle = '#222';
            ctx.textAlign = 'center';
            ctx.fillText(t('north'), 0, 26);
            ctx.restore();
            // scale bar
            var s = scaleBar(120);
            var sx = 14, sy = HEAD_H + mh - 18;
            ctx.fillStyle = 'rgba(255,255,255,0.85)';
            ctx.fillRect(sx - 6, sy - 20, s.px + 60, 28);
            ctx.strokeStyle = '#222';
            ctx.lineWidth = 2;
            ctx.beginPath(); ctx.moveTo(sx, sy - 6); ctx.lineTo(sx, sy); ctx.lineTo(sx + s.px, sy); ctx.lineTo(sx + s.px, sy - 6); ctx.stroke();
            ctx.fillStyle = '#222';
            ctx.font = font(12);
            ctx.textAlign = 'left';
            ctx.fillText(s.text, sx + s.px + 6, sy - 4);
            // legend
            var lx = mw + 14, ly = HEAD_H + 16;
            ctx.font = font(14, true);
            ctx.fillText(t('legend'), lx, ly);
            ly += 22;
            var rows = legendRows();
            rows.forEach(function (r) {
              if (ly > HEAD_H + mh - 10) return;
              if (r.kind === 'head') {
                ctx.font = font(12, true);
                ctx.fillStyle = '#222';
                ctx.fillText(r.text, lx, ly);
              } else {
                drawSwatch(ctx, r, r.top ? lx : lx + 4, ly);
                ctx.font = font(12, r.top);
                ctx.fillStyle = r.top ? '#222' : '#333';
                ctx.fillText(r.text, r.top ? lx + 22 : lx + 26, ly);
              }
              ly += 19;
            });
            // foot: date and coordinates, credits, the synthetic notice
            ctx.fillStyle = '#444';
            ctx.font = font(11);
            var foot = t('made') + ' ' + madeAt() + ' · ' + t('crs');
            var fy = HEAD_H + mh + 14;
            ctx.fillText(foot, 16, fy);
            var credit = wrap(ctx, credits(), W - 32)[0] || '';
            ctx.fillText(credit, 16, fy + 15);
            if (synthetic()) {
              ctx.fillStyle = '#8a6100';
              ctx.font = font(11, true);
              ctx.textAlign = 'right';
              ctx.fillText(wrap(ctx, synthetic(), W / 2)[0], W - 16, fy);
            }
          } catch (err) {
            reject(err);
            return;
          }
          out.toBlob(function (blob) {
            var result = { blob: blob, width: out.width, height: out.height, legendRows: rows.length,
                           title: els.title.value || defaultTitle() };
            api.lastExport = { width: out.width, height: out.height, bytes: blob.size, legendRows: rows.length,
                               title: result.title };
            resolve(result);
          }, 'image/png');
        });
        map.triggerRepaint();
      });
    });
  };

  function download(r) {
    var a = document.createElement('a');
    a.href = URL.createObjectURL(r.blob);
    a.download = 'riskatlas-map-' + new Date().toISOString().slice(0, 10) + '.png';
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  api.init = function () {
    var button = document.createElement('button');
    button.type = 'button';
    button.id = 'print-open';
    button.addEventListener('click', function () { api.open(); });
    $('share').parentNode.insertBefore(button, $('share-link').nextSibling);
    api.relabel();
    window.riskmap.print = api;
  };

  api.relabel = function () {
    var b = $('print-open');
    if (b) b.textContent = t('open');
    if (els.head && document.body.classList.contains('print-mode')) fill();
  };
  api.legendRows = legendRows;

  RA.print = api;
})(window.RA = window.RA || {});
