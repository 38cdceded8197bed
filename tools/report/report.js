// epsim's HTML report: draws every chart from the JSON embedded in the page (#epsim-data), as inline
// SVG (and a canvas under the heatmaps' SVG axes). No network: everything is in this file.
// Each chart is a <figure class="chart" data-chart="ID">; once drawn it gets data-points = the
// number of data marks it shows (the browser test reads them back from the DOM).
'use strict';
(function () {
  const data = JSON.parse(document.getElementById('epsim-data').textContent);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#3b75af', '#ef8636', '#519e3e', '#c53a32', '#8d69b8', '#84584e', '#d57fbe', '#7f7f7f',
                  '#bcbf1f', '#42bfcf', '#1f3f6f', '#a05a00'];
  const root = document.getElementById('report');

  // ---- DOM helpers ------------------------------------------------------------------------------
  function svgEl(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function svgText(parent, x, y, s, attrs) {
    const t = svgEl('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function el(tag, attrs, parent, content) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (content !== undefined) e.textContent = content;
    if (parent) parent.appendChild(e);
    return e;
  }
  function title(parent, s) {
    const t = svgEl('title', {}, parent);
    t.textContent = s;
  }

  // ---- numbers ----------------------------------------------------------------------------------
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '-';
    if (typeof v !== 'number') return String(v);
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (Number.isInteger(v) && a < 1e9) return String(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 100) return v.toFixed(1);
    if (a >= 10) return v.toFixed(2);
    return v.toPrecision(3);
  }
  // A tick label: as many decimals as the step between ticks needs.
  function fmtTick(v, step) {
    if (Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-3)) return v.toExponential(1);
    const d = step > 0 ? Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))) : 0;
    return v.toFixed(d);
  }
  function niceStep(span, n) {
    const raw = span / Math.max(1, n);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
  }
  // Round ticks covering [lo, hi] (at least two).
  function ticks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1); }
    const s = niceStep(hi - lo, n);
    const out = [];
    for (let v = Math.floor(lo / s + 1e-9) * s; v <= hi + s * 1e-9; v += s) out.push(+v.toPrecision(12));
    if (out.length && out[out.length - 1] < hi - s * 1e-9) out.push(+(out[out.length - 1] + s).toPrecision(12));
    return out;
  }
  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (typeof v === 'number' && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    return lo <= hi ? [lo, hi] : [0, 1];
  }
  // Viridis-like colour for t in [0, 1].
  const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function ramp(t) {
    t = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
    const x = t * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
    const c = RAMP[i].map((a, k) => Math.round(a + (RAMP[i + 1][k] - a) * f));
    return 'rgb(' + c.join(',') + ')';
  }

  // ---- figures ----------------------------------------------------------------------------------
  // better: 'lower' | 'higher' | '' (printed after the title).
  function figure(parent, id, caption, better, note) {
    const fig = el('figure', { class: 'chart', 'data-chart': id }, parent);
    const cap = el('figcaption', {}, fig, caption);
    if (better) el('span', { class: 'better' }, cap, better + ' is better');
    const plot = el('div', { class: 'plot' }, fig);
    if (note) el('p', { class: 'note' }, fig, note);
    return { fig: fig, plot: plot };
  }
  function drawn(f, n) { f.fig.setAttribute('data-points', String(n)); }

  // A plot frame: ticks, grid, axis labels. x and y: {lo, hi, label, cats (category names) or null}.
  function frame(svg, box, x, y) {
    const sx = (v) => box.x + (x.cats ? (v + 0.5) / x.cats.length : (v - x.lo) / (x.hi - x.lo)) * box.w;
    const sy = (v) => box.y + box.h - (y.cats ? (v + 0.5) / y.cats.length : (v - y.lo) / (y.hi - y.lo)) * box.h;
    const xt = x.cats ? x.cats.map((_, i) => i) : x.ticks;
    const yt = y.cats ? y.cats.map((_, i) => i) : y.ticks;
    const xEvery = Math.max(1, Math.ceil(xt.length / Math.max(2, Math.floor(box.w / 60))));
    const yEvery = Math.max(1, Math.ceil(yt.length / Math.max(2, Math.floor(box.h / 18))));
    yt.forEach((v, i) => {
      if (i % yEvery) return;
      if (!y.cats) svgEl('line', { class: 'grid', x1: box.x, x2: box.x + box.w, y1: sy(v), y2: sy(v) }, svg);
      svgText(svg, box.x - 5, sy(v) + 4, y.cats ? y.cats[v] : fmtTick(v, yt[1] - yt[0]), { 'text-anchor': 'end' });
    });
    xt.forEach((v, i) => {
      if (i % xEvery) return;
      svgEl('line', { class: 'axis', x1: sx(v), x2: sx(v), y1: box.y + box.h, y2: box.y + box.h + 4 }, svg);
      svgText(svg, sx(v), box.y + box.h + 16, x.cats ? x.cats[v] : fmtTick(v, xt[1] - xt[0]), { 'text-anchor': 'middle' });
    });
    svgEl('line', { class: 'axis', x1: box.x, x2: box.x + box.w, y1: box.y + box.h, y2: box.y + box.h }, svg);
    svgEl('line', { class: 'axis', x1: box.x, x2: box.x, y1: box.y, y2: box.y + box.h }, svg);
    svgText(svg, box.x + box.w / 2, box.y + box.h + 34, x.label, { 'text-anchor': 'middle' });
    svgText(svg, 14, box.y + box.h / 2, y.label,
            { 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (box.y + box.h / 2) + ')' });
    return { sx: sx, sy: sy };
  }
  function numericAxis(values, label, zero) {
    let [lo, hi] = extent(values);
    if (zero) lo = Math.min(0, lo);
    let t = ticks(lo, hi, 6);
    // Whole-number data (chunk counts, EP sizes, layers): no ticks between them.
    if (values.every((v) => !Number.isFinite(v) || Number.isInteger(v)) && t.length > 1 && t[1] - t[0] < 1) {
      t = [];
      for (let v = Math.floor(lo); v <= Math.ceil(hi); ++v) t.push(v);
      if (t.length < 2) t.push(t[0] + 1);
    }
    return { lo: t[0], hi: t[t.length - 1], ticks: t, label: label, cats: null };
  }
  function legend(svg, x, y, names, width) {
    let cx = x, cy = y;
    names.forEach((n, i) => {
      const w = 22 + 7 * n.length;
      if (cx + w > x + width) { cx = x; cy += 16; }
      svgEl('rect', { x: cx, y: cy - 9, width: 12, height: 10, fill: COLORS[i % COLORS.length] }, svg);
      svgText(svg, cx + 16, cy, n);
      cx += w;
    });
    return cy + 10;
  }

  // Lines (or markers only) per series. spec: {series: [{name, points: [[x, y]]}], x: axis, yLabel,
  // zero (y from 0), markersOnly, width, height}
  function lineChart(parent, id, caption, better, spec, note) {
    const f = figure(parent, id, caption, better, note);
    const W = spec.width || 1180, H = spec.height || 320;
    const names = spec.series.map((s) => s.name);
    const svg = svgEl('svg', { width: W, height: H }, null);
    f.plot.appendChild(svg);
    const top = legend(svg, 70, 14, names, W - 80) + 6;
    const box = { x: 70, y: top, w: W - 90, h: H - top - 40 };
    const ys = [].concat(...spec.series.map((s) => s.points.map((p) => p[1])));
    const y = numericAxis(ys, spec.yLabel, spec.zero !== false);
    const x = spec.x.cats ? spec.x : numericAxis([].concat(...spec.series.map((s) => s.points.map((p) => p[0]))), spec.x.label, false);
    const s = frame(svg, box, x, y);
    let n = 0;
    spec.series.forEach((ser, i) => {
      const c = COLORS[i % COLORS.length];
      const pts = ser.points.filter((p) => Number.isFinite(p[1]));
      if (!spec.markersOnly && pts.length > 1)
        svgEl('polyline', { points: pts.map((p) => s.sx(p[0]) + ',' + s.sy(p[1])).join(' '), fill: 'none', stroke: c,
                            'stroke-width': 1.6 }, svg);
      if (spec.markersOnly || pts.length <= 80)
        pts.forEach((p) => title(svgEl('circle', { cx: s.sx(p[0]), cy: s.sy(p[1]), r: spec.markersOnly ? 3 : 2.2, fill: c }, svg),
                                 ser.name + ': ' + (x.cats ? x.cats[p[0]] : fmt(p[0])) + ' -> ' + fmt(p[1])));
      n += pts.length;
    });
    drawn(f, n);
    return f;
  }

  // Horizontal bars, one per label. spec: {labels, values, unit, format}
  function barChart(parent, id, caption, better, spec, note) {
    const f = figure(parent, id, caption, better, note);
    const W = spec.width || 560, bar = 22, gap = 8, left = 140, top = 8;
    const H = top + spec.labels.length * (bar + gap) + 44;
    const svg = svgEl('svg', { width: W, height: H }, null);
    f.plot.appendChild(svg);
    const x = numericAxis(spec.values, spec.unit, true);
    const box = { x: left, y: top, w: W - left - 70, h: spec.labels.length * (bar + gap) };
    const sx = (v) => box.x + (v - x.lo) / (x.hi - x.lo) * box.w;
    x.ticks.forEach((v) => {
      svgEl('line', { class: 'grid', x1: sx(v), x2: sx(v), y1: box.y, y2: box.y + box.h }, svg);
      svgText(svg, sx(v), box.y + box.h + 14, fmtTick(v, x.ticks[1] - x.ticks[0]), { 'text-anchor': 'middle' });
    });
    svgText(svg, box.x + box.w / 2, box.y + box.h + 32, spec.unit, { 'text-anchor': 'middle' });
    let n = 0;
    spec.labels.forEach((l, i) => {
      const v = spec.values[i], y0 = box.y + i * (bar + gap) + gap / 2;
      svgText(svg, left - 6, y0 + bar / 2 + 4, l, { 'text-anchor': 'end' });
      if (!Number.isFinite(v)) return;
      const r = svgEl('rect', { x: sx(Math.min(0, v)), y: y0, width: Math.max(0.5, Math.abs(sx(v) - sx(0))), height: bar,
                                fill: COLORS[i % COLORS.length] }, svg);
      title(r, l + ': ' + fmt(v) + ' ' + spec.unit);
      svgText(svg, sx(v) + 4, y0 + bar / 2 + 4, fmt(v));
      ++n;
    });
    svgEl('line', { class: 'axis', x1: sx(0), x2: sx(0), y1: box.y, y2: box.y + box.h }, svg);
    drawn(f, n);
    return f;
  }

  // A colour scale: ramp from lo to hi with ticks and the unit.
  // integer: the values are whole numbers (counts): no ticks between them.
  function colourScale(svg, x, y, w, lo, hi, unit, integer) {
    w = Math.max(80, Math.min(w, Number(svg.getAttribute('width')) - x - 60));
    const steps = 60;
    for (let i = 0; i < steps; ++i)
      svgEl('rect', { x: x + i * w / steps, y: y, width: w / steps + 0.5, height: 10, fill: ramp(i / (steps - 1)) }, svg);
    let t = ticks(lo, hi, 4).filter((v) => v >= lo - 1e-12 && v <= hi + 1e-12);
    if (integer && (t.length < 2 || t[1] - t[0] < 1)) t = hi > lo ? [Math.ceil(lo), Math.floor(hi)] : [lo];
    t.forEach((v) => {
      const px = x + (hi > lo ? (v - lo) / (hi - lo) : 0) * w;
      svgEl('line', { class: 'axis', x1: px, x2: px, y1: y + 10, y2: y + 14 }, svg);
      svgText(svg, px, y + 25, fmtTick(v, t.length > 1 ? t[1] - t[0] : 1), { 'text-anchor': 'middle' });
    });
    svgText(svg, x + w + 8, y + 9, unit);
  }

  // rows x cols values on a canvas, SVG axes around it. spec: {values, x: {label, cats|ticks}, y: {...},
  // unit, width, height}
  function heatmap(parent, id, caption, better, spec, note) {
    const f = figure(parent, id, caption, better, note);
    const rows = spec.values.length, cols = rows ? spec.values[0].length : 0;
    const W = spec.width || 1180, H = spec.height || 360;
    const longest = Math.max(0, ...(spec.y.cats || []).map((c) => c.length));
    const left = Math.max(70, 34 + 6.5 * longest);
    const box = { x: left, y: 40, w: W - left - 20, h: H - 90 };
    const all = [].concat(...spec.values);
    let [lo, hi] = extent(all);
    if (spec.zero) lo = Math.min(0, lo);
    if (!(hi > lo)) hi = lo + 1;
    const canvas = el('canvas', { width: cols, height: rows }, f.plot);
    canvas.style.left = box.x + 'px';
    canvas.style.top = box.y + 'px';
    canvas.style.width = box.w + 'px';
    canvas.style.height = box.h + 'px';
    const ctx = canvas.getContext('2d');
    let n = 0;
    for (let r = 0; r < rows; ++r)
      for (let c = 0; c < cols; ++c) {
        const v = spec.values[r][c];
        if (!Number.isFinite(v)) continue;
        ctx.fillStyle = ramp((v - lo) / (hi - lo));
        ctx.fillRect(c, rows - 1 - r, 1, 1);  // row 0 at the bottom
        ++n;
      }
    const svg = svgEl('svg', { width: W, height: H }, null);
    f.plot.appendChild(svg);
    colourScale(svg, box.x, 8, 260, lo, hi, spec.unit);
    const axis = (a, count) => a.cats ? a : { lo: -0.5, hi: count - 0.5, ticks: ticks(0, count - 1, 10).filter((v) => v === Math.round(v) && v < count),
                                              label: a.label, cats: null };
    frame(svg, box, axis(spec.x, cols), axis(spec.y, rows));
    canvas.setAttribute('data-cells', String(n));
    drawn(f, n);
    return f;
  }

  // ---- the run report -----------------------------------------------------------------------------
  function headline(parent, rows) {
    const t = el('table', { class: 'headline' }, parent);
    rows.forEach((r) => {
      const tr = el('tr', {}, t);
      el('th', {}, tr, r[0]);
      el('td', { class: 'v' }, tr, r[1]);
      el('td', {}, tr, r[2] || '');
    });
  }

  function runReport(d) {
    const r = d.report, det = d.detail;
    el('h1', {}, root, 'epsim: ' + (r.scenario || '(unnamed scenario)'));
    if (r.resolved_scenario && r.resolved_scenario.description) el('p', { class: 'meta' }, root, r.resolved_scenario.description);
    el('p', { class: 'meta' }, root, 'version ' + (r.version || 'unknown') + (r.command ? '; command: ' + r.command.join(' ') : ''));
    el('p', { class: 'meta' }, root, r.gpus + ' GPUs on ' + r.nodes + ' nodes; network ' + r.network + '; cost model ' + r.cost_model);
    const mem = r.memory;
    headline(root, [
      ['step time', fmt(r.step_time_ms) + ' ms', 'lower is better'],
      ['tokens/s per GPU', fmt(r.tokens_per_s_per_gpu), 'higher is better'],
      ['tokens/s per node', fmt(r.tokens_per_s_per_node), 'higher is better'],
      ['memory per GPU', fmt(mem.per_gpu_gb) + ' GB of ' + fmt(mem.capacity_gb), mem.fits ? 'fits' : 'DOES NOT FIT'],
      ['bound by', 'layer ' + r.bound_by.layer, 'GPU ' + r.bound_by.gpu + (r.bound_by.link ? ', link ' + r.bound_by.link : '')],
    ]);

    el('h2', {}, root, 'Where the time goes, per layer');
    const L = r.layers.map((l) => l.layer);
    const series = [['layer time', 'time_ms'], ['compute (worst GPU)', 'compute_ms'], ['dispatch', 'dispatch_ms'],
                    ['combine', 'combine_ms'], ['exposed communication (worst GPU)', 'exposed_comm_ms']]
      .map((s) => ({ name: s[0], points: r.layers.map((l, i) => [L[i], l[s[1]]]) }));
    lineChart(root, 'layer-breakdown', 'Per-layer time breakdown', 'lower', { series: series, x: { label: 'layer' }, yLabel: 'ms' },
              'dispatch and combine: first flow start to last arrival; exposed: communication not hidden behind compute on the GPU where it is longest.');

    if (!det) {
      el('p', { class: 'meta' }, root, 'detail.json not found next to report.json: the per-GPU charts need it (epsim run writes it).');
    } else {
      el('h2', {}, root, 'Per GPU and layer');
      const gpuAxis = { label: 'GPU' }, layerAxis = { label: 'layer' };
      heatmap(root, 'heatmap-compute', 'Compute time per GPU and layer', 'lower',
              { values: det.gpu_layer.compute_ms, x: gpuAxis, y: layerAxis, unit: 'ms' });
      heatmap(root, 'heatmap-exposed', 'Exposed communication per GPU and layer', 'lower',
              { values: det.gpu_layer.exposed_comm_ms, x: gpuAxis, y: layerAxis, unit: 'ms' },
              'communication time a GPU spends not computing, per layer (the LM head is left out). Colours span the smallest to the largest value.');

      el('h2', {}, root, 'The busiest links over the step');
      const tl = det.link_timeline;
      lineChart(root, 'top-links', 'Utilisation of the ' + tl.links.length + ' busiest links', '',
                { series: tl.links.map((l) => ({ name: l.link + ' (' + l.kind + ', ' + fmt(l.gb_per_s) + ' GB/s)',
                                                 points: l.utilisation.map((u, b) => [(b + 0.5) * tl.bin_ms, 100 * u]) })),
                  x: { label: 'time in the step (ms)' }, yLabel: 'utilisation (%)' },
                'each all-to-all\'s bytes on a link spread evenly over its lifetime, in bins of ' + fmt(tl.bin_ms) + ' ms.');

      if (det.placement) placementMap(root, det);
    }
    memoryChart(root, mem);
  }

  // GPUs as cells, a row per node: each GPU's experts (in the cell or its tooltip) and its routed load.
  function placementMap(parent, det) {
    el('h2', {}, parent, 'Placement');
    const p = det.placement, G = det.gpus, per = det.gpus_per_node, nodes = Math.ceil(G / per);
    const f = figure(parent, 'placement-map', 'Experts on GPUs and nodes, routed load per GPU (layer ' + p.layer + ')', '',
                     'strategy ' + p.strategy + '; the MoE layer shown is the one with the most unbalanced routed load; ' +
                     'colour: routed (token, expert) pairs the GPU computes; a cell lists its experts (hover for all).');
    const cellW = Math.max(28, Math.min(120, Math.floor(1100 / per))), cellH = nodes > 40 ? 14 : 22;
    const W = 70 + per * cellW + 20, H = 50 + nodes * cellH + 40;
    const svg = svgEl('svg', { width: W, height: H }, null);
    f.plot.appendChild(svg);
    const [lo, hi0] = extent(p.tokens_by_gpu);
    const hi = hi0 > lo ? hi0 : lo + 1;
    colourScale(svg, 70, 8, 260, lo, hi, 'routed pairs per GPU', true);
    let n = 0;
    for (let g = 0; g < G; ++g) {
      const node = Math.floor(g / per), k = g % per, x = 70 + k * cellW, y = 44 + node * cellH;
      const experts = p.experts_by_gpu[g];
      const load = p.tokens_by_gpu[g];
      const r = svgEl('rect', { x: x, y: y, width: cellW - 2, height: cellH - 2, fill: ramp((load - lo) / (hi - lo)) }, svg);
      title(r, 'GPU ' + g + ' (node ' + node + '): experts ' + experts.join(', ') + '; ' + load + ' routed pairs');
      const label = experts.length === 1 ? String(experts[0]) : experts.length <= 3 ? experts.join(',') : experts[0] + '.. (' + experts.length + ')';
      if (cellH >= 14) svgText(svg, x + (cellW - 2) / 2, y + cellH / 2 + 3, label,
                               { 'text-anchor': 'middle', style: 'font-size:9px;fill:' + ((load - lo) / (hi - lo) > 0.6 ? '#222' : '#fff') });
      ++n;
    }
    for (let node = 0; node < nodes; node += Math.max(1, Math.ceil(nodes / 16)))
      svgText(svg, 64, 44 + node * cellH + cellH / 2 + 3, 'node ' + node, { 'text-anchor': 'end' });
    for (let k = 0; k < per; ++k) svgText(svg, 70 + k * cellW + cellW / 2, 44 + nodes * cellH + 14, 'GPU +' + k, { 'text-anchor': 'middle' });
    drawn(f, n);
  }

  // The memory model sizes every GPU alike (each holds the same number of expert slots).
  function memoryChart(parent, mem) {
    el('h2', {}, parent, 'Memory per GPU');
    const parts = [['attention weights', mem.attention_weights_gb], ['dense weights', mem.dense_weights_gb],
                   ['expert weights', mem.expert_weights_gb], ['shared expert weights', mem.shared_weights_gb],
                   ['other weights', mem.other_weights_gb], ['KV cache', mem.kv_cache_gb], ['activations', mem.activations_gb]];
    const f = figure(parent, 'memory', 'Memory per GPU: ' + fmt(mem.per_gpu_gb) + ' GB of ' + fmt(mem.capacity_gb) + ' GB (' +
                     (mem.fits ? 'fits' : 'does not fit') + ')', 'lower',
                     'every GPU holds the same: the same expert slots per layer (the worst layer\'s), its share of attention and its KV cache.');
    const W = 1180, H = 120;
    const svg = svgEl('svg', { width: W, height: H }, null);
    f.plot.appendChild(svg);
    const total = Math.max(mem.per_gpu_gb, mem.capacity_gb);
    const x = numericAxis([0, total], 'GB', true);
    const box = { x: 20, y: 40, w: W - 60, h: 26 };
    const sx = (v) => box.x + v / x.hi * box.w;
    x.ticks.forEach((v) => svgText(svg, sx(v), box.y + box.h + 14, fmtTick(v, x.ticks[1] - x.ticks[0]), { 'text-anchor': 'middle' }));
    svgText(svg, box.x + box.w + 8, box.y + box.h + 14, 'GB');
    legend(svg, 20, 14, parts.map((p) => p[0] + ' ' + fmt(p[1])), W - 40);
    let at = 0, n = 0;
    parts.forEach((p, i) => {
      if (!(p[1] > 0)) return;
      title(svgEl('rect', { x: sx(at), y: box.y, width: sx(at + p[1]) - sx(at), height: box.h, fill: COLORS[i % COLORS.length] }, svg),
            p[0] + ': ' + fmt(p[1]) + ' GB');
      at += p[1];
      ++n;
    });
    svgEl('line', { x1: sx(mem.capacity_gb), x2: sx(mem.capacity_gb), y1: box.y - 6, y2: box.y + box.h + 6, stroke: '#c00',
                    'stroke-width': 2 }, svg);
    svgText(svg, sx(mem.capacity_gb), box.y + box.h + 30, 'capacity ' + fmt(mem.capacity_gb) + ' GB',
            { 'text-anchor': 'middle', style: 'fill:#c00' });
    drawn(f, n);
  }

  // ---- compare: the strategies side by side --------------------------------------------------------
  function compareReport(d) {
    const c = d.compare, s = c.strategies;
    el('h1', {}, root, 'epsim compare: ' + (c.scenario || 'scenario'));
    el('p', { class: 'meta' }, root, s.length + ' placement strategies on the same routing samples, ' + c.steps + ' step(s) each');
    const labels = s.map((x) => x.strategy);
    const charts = [
      ['cmp-step-time', 'Step time', 'lower', 'ms', (x) => x.step_time_ms],
      ['cmp-tokens', 'Tokens/s per GPU', 'higher', 'tokens/s', (x) => x.tokens_per_s_per_gpu],
      ['cmp-link-tokens', 'Most tokens on one link (a dispatch)', 'lower', 'tokens', (x) => x.max_link_tokens],
      ['cmp-exposed', 'Exposed communication (summed over layers)', 'lower', 'ms', (x) => x.exposed_comm_ms],
      ['cmp-balance', 'Routed load, busiest GPU / mean', 'lower', 'max / mean', (x) => x.gpu_load_max_over_mean],
      ['cmp-expected', 'Expected most tokens on one link (no simulation)', 'lower', 'tokens', (x) => x.expected.max_link_tokens],
      ['cmp-memory', 'Expert weights per GPU', 'lower', 'GB', (x) => x.expected.expert_memory_per_gpu_gb],
    ];
    charts.forEach((ch) => barChart(root, ch[0], ch[1], ch[2], { labels: labels, values: s.map(ch[4]), unit: ch[3] }));
  }

  // ---- sweep: a metric against one or two axes ------------------------------------------------------
  function sweepReport(d) {
    const sw = d.sweep, pts = sw.points.filter((p) => p.metrics), axes = sw.axes, info = sw.metric_info;
    el('h1', {}, root, 'epsim sweep: ' + (sw.name || 'sweep'));
    el('p', { class: 'meta' }, root, sw.points.length + ' points (' + (sw.points.length - pts.length) + ' failed); axes: ' +
       (axes.join(', ') || 'none') + '; source ' + sw.source);
    const metrics = sw.metrics.filter((m) => pts.some((p) => typeof p.metrics[m] === 'number' || typeof p.metrics[m] === 'boolean'));
    const controls = el('div', { class: 'controls' }, root);
    const select = (label, options, value) => {
      const l = el('label', {}, controls, label + ' ');
      const s = el('select', {}, l);
      options.forEach((o) => { const op = el('option', { value: o[0] }, s, o[1]); if (o[0] === value) op.selected = true; });
      return s;
    };
    const numeric = (a) => pts.every((p) => typeof p.axes[a] === 'number');
    // Axes that vary; numeric ones first on the x axis.
    const varying = axes.filter((a) => new Set(pts.map((p) => JSON.stringify(p.axes[a]))).size > 1);
    const xFirst = varying.filter(numeric).concat(varying.filter((a) => !numeric(a)));
    const mSel = select('metric', metrics.map((m) => [m, info[m] ? info[m].label : m]), metrics[0]);
    const xSel = select('against', axes.map((a) => [a, a]), xFirst[0] || axes[0]);
    const gSel = select('one line per', [['', '(none)']].concat(axes.map((a) => [a, a])), varying.find((a) => a !== xSel.value) || '');
    const area = el('div', {}, root);
    function values(a) {
      const seen = new Map();
      pts.forEach((p) => seen.set(JSON.stringify(p.axes[a]), p.axes[a]));
      const v = [...seen.values()];
      return numeric(a) ? v.sort((x, y) => x - y) : v;
    }
    function metricOf(p, m) { const v = p.metrics[m]; return typeof v === 'boolean' ? (v ? 1 : 0) : v; }
    function label(m) { const i = info[m]; return i ? i.label + (i.unit ? ' (' + i.unit + ')' : '') : m; }
    function better(m) { return info[m] ? info[m].better : ''; }
    // Axis values as positions: numbers as they are; anything else by category.
    function axisOf(a) {
      if (numeric(a)) return { pos: (v) => v, spec: { label: a } };
      const cats = values(a).map((v) => typeof v === 'string' ? v : JSON.stringify(v));
      return { pos: (v) => cats.indexOf(typeof v === 'string' ? v : JSON.stringify(v)), spec: { label: a, cats: cats } };
    }
    function draw() {
      area.textContent = '';
      const m = mSel.value, xa = xSel.value, ga = gSel.value && gSel.value !== xa ? gSel.value : '';
      if (!xa) {
        barChart(area, 'sweep-metric', label(m), better(m), { labels: pts.map((p) => p.id), values: pts.map((p) => metricOf(p, m)), unit: label(m) });
        return;
      }
      const X = axisOf(xa);
      const groups = ga ? values(ga) : [null];
      const many = numeric(xa) && values(xa).length > pts.length / 2;  // random draws: markers only
      if (groups.length <= 12) {
        const series = groups.map((g) => {
          const sel = pts.filter((p) => g === null || JSON.stringify(p.axes[ga]) === JSON.stringify(g));
          // Mean over the other axes' values at each x.
          const by = new Map();
          sel.forEach((p) => { const k = X.pos(p.axes[xa]); const e = by.get(k) || [0, 0]; e[0] += metricOf(p, m); e[1] += 1; by.set(k, e); });
          const points = [...by.entries()].map((e) => [e[0], e[1][0] / e[1][1]]).sort((a, b) => a[0] - b[0]);
          return { name: g === null ? label(m) : ga + ' = ' + (typeof g === 'string' ? g : JSON.stringify(g)), points: points };
        });
        lineChart(area, 'sweep-line', label(m) + ' against ' + xa, better(m),
                  { series: series, x: X.spec, yLabel: label(m), zero: false, markersOnly: many },
                  'points that differ only in other axes are averaged.');
      }
      if (ga) sweepHeatmap(area, m, xa, ga);
    }
    // Metric (mean per cell) over two axes; numeric axes with many values are binned into 12.
    function sweepHeatmap(parent, m, xa, ya) {
      const bin = (a) => {
        const v = values(a);
        if (!numeric(a) || v.length <= 16) return { n: v.length, at: (x) => v.findIndex((w) => JSON.stringify(w) === JSON.stringify(x)),
                                                    cats: v.map((w) => typeof w === 'string' ? w : fmt(w)) };
        const lo = v[0], hi = v[v.length - 1], k = 12;
        return { n: k, at: (x) => Math.min(k - 1, Math.floor((x - lo) / (hi - lo) * k)),
                 cats: [...Array(k).keys()].map((i) => fmt(lo + (i + 0.5) * (hi - lo) / k)) };
      };
      const bx = bin(xa), by = bin(ya);
      const sum = [...Array(by.n)].map(() => new Array(bx.n).fill(0)), cnt = [...Array(by.n)].map(() => new Array(bx.n).fill(0));
      pts.forEach((p) => { const i = by.at(p.axes[ya]), j = bx.at(p.axes[xa]); sum[i][j] += metricOf(p, m); cnt[i][j] += 1; });
      const vals = sum.map((row, i) => row.map((s, j) => cnt[i][j] ? s / cnt[i][j] : NaN));
      heatmap(parent, 'sweep-heatmap', label(m) + ' over ' + xa + ' and ' + ya, better(m),
              { values: vals, x: { label: xa, cats: bx.cats }, y: { label: ya, cats: by.cats }, unit: info[m] ? info[m].unit : '',
                width: Math.min(1180, 230 + 60 * bx.n), height: Math.min(520, 150 + 26 * by.n) },
              'mean over the points in each cell');
    }
    [mSel, xSel, gSel].forEach((s) => s.addEventListener('change', draw));
    draw();
    // The points themselves.
    el('h2', {}, root, 'Points');
    const t = el('table', { class: 'points' }, root);
    const head = el('tr', {}, t);
    ['index'].concat(axes, ['step_time_ms', 'tokens_per_s_per_gpu', 'error']).forEach((h) => el('th', {}, head, h));
    sw.points.slice(0, 500).forEach((p) => {
      const tr = el('tr', {}, t);
      el('td', {}, tr, String(p.index));
      axes.forEach((a) => el('td', {}, tr, typeof p.axes[a] === 'string' ? p.axes[a] : typeof p.axes[a] === 'number' ? fmt(p.axes[a]) : JSON.stringify(p.axes[a])));
      el('td', {}, tr, p.metrics ? fmt(p.metrics.step_time_ms) : '');
      el('td', {}, tr, p.metrics ? fmt(p.metrics.tokens_per_s_per_gpu) : '');
      el('td', {}, tr, p.error || '');
    });
    if (sw.points.length > 500) el('p', { class: 'meta' }, root, '(the first 500 of ' + sw.points.length + ' points)');
  }

  if (data.kind === 'run') runReport(data);
  else if (data.kind === 'compare') compareReport(data);
  else if (data.kind === 'sweep') sweepReport(data);
  document.documentElement.setAttribute('data-drawn', String(document.querySelectorAll('figure.chart[data-points]').length));
})();
