// The public page: each city's AQI now and the day's with health effects and advice, and each
// cross-border section's latest class against its target. Chinese first, English alongside.
// Everything comes from one JSON request to the app; when drawn, window.publicPage.ready is true and
// the document receives a "public-ready" event (the browser test waits on it).
(function () {
  'use strict';
  const cfg = window.PUBLIC_CONFIG;
  const state = window.publicPage = {ready: false, data: null, error: null};

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v; else if (k === 'style') node.style.cssText = v; else node.setAttribute(k, v);
    }
    for (const c of [].concat(children || [])) {
      if (c == null) continue;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return node;
  }
  const both = (zh, en, tag) => el(tag || 'p', {}, [zh, ' ', el('span', {lang: 'en'}, en)]);

  // Text on a category colour: dark text on the light colours (yellow, green, orange), white on the others.
  function tone(hex) {
    const n = parseInt(hex.slice(1), 16);
    const r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    return (0.299 * r + 0.587 * g + 0.114 * b) > 150 ? 'light' : 'dark';
  }
  function time(iso) { return iso ? iso.replace('T', ' ').slice(0, 16) : ''; }

  function figure(label, labelEn, v) {
    if (!v) return el('div', {class: 'figure none'}, [el('div', {class: 'label'}, [label, ' ', el('span', {}, labelEn)]),
                                                       el('div', {class: 'aqi'}, '—'), both('暂无数据', 'no data', 'div')]);
    const primary = v.primary_zh.length
      ? el('div', {class: 'primary'}, ['首要污染物 ', v.primary_zh.join('、'), ' ', el('span', {}, 'primary: ' + v.primary_en.join(', '))])
      : el('div', {class: 'primary'}, ['首要污染物：无 ', el('span', {}, 'primary pollutant: none')]);
    return el('div', {class: 'figure ' + tone(v.colour), style: 'background:' + v.colour,
                      'data-aqi': v.aqi, 'data-level': v.level}, [
      el('div', {class: 'label'}, [label, ' ', el('span', {}, labelEn)]),
      el('div', {class: 'aqi'}, String(v.aqi)),
      el('div', {class: 'cat'}, [v.name_zh, ' ', el('span', {}, v.name_en)]),
      primary,
    ]);
  }

  function city(c) {
    const now = c.now, day = c.day;
    const shown = now || day;
    const card = el('article', {class: 'city', 'data-city': c.code}, [
      el('h3', {}, [c.name_zh, el('span', {lang: 'en'}, c.name_en || '')]),
      el('div', {class: 'figures'}, [
        figure('当前AQI', 'AQI now' + (now ? ' · ' + time(now.at) : ''), now),
        figure('日AQI', "the day's AQI" + (day ? ' · ' + day.day : ''), day),
      ]),
    ]);
    if (shown) {
      const cat = shown.category;
      card.appendChild(el('div', {class: 'advice'}, [
        both('健康影响：' + cat.health_zh, 'Health: ' + cat.health_en),
        both('建议措施：' + cat.advice_zh, 'Advice: ' + cat.advice_en),
      ]));
    }
    return card;
  }

  function sections(list) {
    if (!list.length) return both('暂无跨界断面', 'no cross-border section', 'p');
    const rows = list.map((s) => {
      const st = s.state;
      const badge = st ? el('span', {class: 'badge ' + tone(st.colour), style: 'background:' + st.colour}, st.class_zh)
                       : el('span', {}, '暂无 no data');
      return el('tr', {'data-section': s.key}, [
        el('td', {}, [s.name, el('span', {}, s.city_name || '')]),
        el('td', {}, [badge, st ? el('span', {}, st.class_en) : null]),
        el('td', {}, [s.target_class ? s.target_class + '类' : '—', el('span', {}, s.target_class ? 'target ' + s.target_class : '')]),
        el('td', {}, st ? [st.label_zh, el('span', {}, st.label_en + (st.meets_target ? '' : ' (' + st.worst.join(', ') + ')'))] : ['—']),
        el('td', {}, time(s.observed_at)),
      ]);
    });
    return el('table', {}, [
      el('thead', {}, el('tr', {}, [
        el('th', {}, ['断面', el('span', {}, 'section')]), el('th', {}, ['最新类别', el('span', {}, 'latest class')]),
        el('th', {}, ['目标', el('span', {}, 'target')]), el('th', {}, ['评价', el('span', {}, 'against target')]),
        el('th', {}, ['时间', el('span', {}, 'time (UTC+8)')]),
      ])),
      el('tbody', {}, rows),
    ]);
  }

  function legend(cats) {
    return cats.map((c) => el('div', {class: 'legend-row', 'data-level': c.level}, [
      el('div', {class: 'swatch ' + tone(c.hex), style: 'background:' + c.hex}, [
        c.aqi_range[1] == null ? '>' + (c.aqi_range[0] - 1) : c.aqi_range[0] + '–' + c.aqi_range[1]]),
      el('div', {}, [
        el('p', {}, [el('b', {}, c.level_zh + ' ' + c.name_zh), ' ', el('span', {style: 'display:inline'}, c.name_en)]),
        both(c.health_zh, c.health_en), both(c.advice_zh, c.advice_en),
      ]),
    ]));
  }

  function draw(d) {
    document.getElementById('synthetic').hidden = !d.synthetic;
    const cities = document.getElementById('cities');
    cities.replaceChildren(...(d.cities.length ? d.cities.map(city) : [both('暂无空气质量数据', 'no air quality data yet')]));
    document.getElementById('sections').replaceChildren(sections(d.sections));
    document.getElementById('legend').replaceChildren(...legend(d.categories));
    const m = d.method;
    document.getElementById('method').replaceChildren(
      ...[[m.city_zh, m.city_en], [m.hourly_pm_zh, m.hourly_pm_en], [m.day_zh, m.day_en], [m.water_zh, m.water_en]]
        .map(([zh, en]) => both(zh, en, 'li')));
    const status = document.getElementById('status');
    status.replaceChildren('更新于 ' + time(d.generated_at) + ' ', el('span', {}, 'updated ' + time(d.generated_at) + ' (UTC+8)'));
  }

  fetch(cfg.data, {headers: {Accept: 'application/json'}})
    .then((r) => { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then((d) => { state.data = d; draw(d); })
    .catch((e) => {
      state.error = String(e);
      const status = document.getElementById('status');
      status.className = 'error';
      status.replaceChildren('无法读取数据 ', el('span', {}, 'could not load the data: ' + e));
    })
    .finally(() => { state.ready = true; document.dispatchEvent(new Event('public-ready')); });
}());
