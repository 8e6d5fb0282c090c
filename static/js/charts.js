// Draws every <canvas data-chart="ID"> from the JSON spec in <script type="application/json" id="ID">
// (insights/charts.py `spec`), with Chart.js (static/vendor/chartjs). No inline script, no CDN.
// Numbers follow the template filters (core/templatetags/engage.py): thousands separators, at most one
// decimal, percentages with one decimal.
(function () {
  "use strict";
  if (!window.Chart) return;
  const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  const fmt = (value, unit) => {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    return unit === "%" ? `${Number(value).toFixed(1)}%` : NUMBER.format(value);
  };
  const axisFmt = (value, unit) => (unit === "%" ? `${NUMBER.format(value)}%` : NUMBER.format(value));
  const alpha = (hex, a) => {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  };

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#667085";
  Chart.defaults.borderColor = "#eef0f3";

  // Version changes: a dashed vertical line with its label at the top of the plot.
  const marksPlugin = {
    id: "engageMarks",
    afterDatasetsDraw(chart, _args, options) {
      const marks = options.marks || [];
      if (!marks.length) return;
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      ctx.strokeStyle = "#98a2b3";
      ctx.fillStyle = "#475467";
      ctx.setLineDash([4, 4]);
      ctx.font = `600 11px ${Chart.defaults.font.family}`;
      for (const mark of marks) {
        const x = scales.x.getPixelForValue(mark.at);
        ctx.beginPath();
        ctx.moveTo(x, chartArea.top);
        ctx.lineTo(x, chartArea.bottom);
        ctx.stroke();
        ctx.fillText(mark.label, Math.min(x + 4, chartArea.right - 20), chartArea.top + 11);
      }
      ctx.restore();
    },
  };

  function dataset(spec, s, index) {
    const partial = spec.partial || [];
    const line = spec.kind === "line";
    const colors = s.colors || s.values.map(() => s.color);
    const d = {
      label: s.name,
      data: s.values,
      yAxisID: s.axis === "y2" ? "y2" : "y",
      borderColor: line ? s.color : colors,
      backgroundColor: line ? alpha(s.color, s.fill ? 0.12 : 0) : colors.map((c, i) => (partial[i] ? alpha(c, 0.35) : c)),
      borderWidth: line ? 2 : colors.map((_, i) => (partial[i] ? 1.5 : 0)),
      order: index,
    };
    if (line) {
      Object.assign(d, {
        fill: Boolean(s.fill), tension: 0.25, pointRadius: s.values.length > 45 ? 0 : 2.5, pointHoverRadius: 4,
        spanGaps: true,
        segment: { borderDash: (ctx) => (partial[ctx.p1DataIndex] ? [5, 4] : undefined) },
      });
    } else {
      Object.assign(d, { borderRadius: 3, maxBarThickness: 48, stack: s.stack || `s${index}` });
    }
    return d;
  }

  function scale(spec, axis, horizontal, position) {
    const unit = axis.unit || "";
    return {
      position,
      stacked: Boolean(spec.stacked),
      min: axis.min, max: axis.max,
      beginAtZero: true,
      grid: { drawTicks: false, color: position === "right" ? "transparent" : "#eef0f3" },
      border: { display: false },
      title: { display: Boolean(axis.title), text: axis.title || "" },
      ticks: {
        maxTicksLimit: horizontal ? 6 : 6, padding: 6,
        callback: (value) => axisFmt(Math.abs(value) === value ? value : value, unit),
      },
    };
  }

  function config(spec) {
    const horizontal = Boolean(spec.horizontal);
    const y = spec.y || {};
    const valueAxis = horizontal ? "x" : "y";
    const scales = {
      [horizontal ? "y" : "x"]: {
        stacked: Boolean(spec.stacked), grid: { display: false }, border: { color: "#d0d5dd" },
        ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 14 },
      },
      [valueAxis]: scale(spec, y, horizontal, horizontal ? "bottom" : "left"),
    };
    if (spec.y2) scales.y2 = scale(spec, spec.y2, false, "right");
    const units = spec.series.map((s) => (s.axis === "y2" ? spec.y2 || {} : y).unit || "");
    const links = spec.series.map((s) => s.links || null);
    const linkAt = (el) => (el && links[el.datasetIndex] ? links[el.datasetIndex][el.index] : null);
    return {
      type: spec.kind === "line" ? "line" : "bar",
      data: { labels: spec.labels, datasets: spec.series.map((s, i) => dataset(spec, s, i)) },
      plugins: [marksPlugin],
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false, axis: horizontal ? "y" : "x" },
        scales,
        plugins: {
          engageMarks: { marks: spec.marks || [] },
          legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true, pointStyle: "rectRounded", padding: 14 } },
          tooltip: {
            backgroundColor: "#101828", padding: 10, cornerRadius: 8, boxPadding: 4,
            callbacks: {
              label: (item) => {
                const s = spec.series[item.datasetIndex];
                const raw = item.raw;
                const value = s.absolute && raw !== null ? Math.abs(raw) : raw;
                return ` ${s.name}: ${fmt(value, units[item.datasetIndex])}`;
              },
              footer: (items) => (items.length && spec.footer ? spec.footer[items[0].dataIndex] || [] : []),
            },
          },
        },
        onHover: (event, elements) => {
          event.native.target.style.cursor = linkAt(elements[0]) ? "pointer" : "default";
        },
        onClick: (_event, elements, chart) => {
          // The bar under the pointer (not the whole index), so a click opens exactly its rows.
          const hit = chart.getElementsAtEventForMode(_event, "nearest", { intersect: true }, false)[0];
          const link = linkAt(hit);
          if (link) window.location.assign(link);
        },
      },
    };
  }

  function draw(canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    if (spec.height) canvas.parentElement.style.height = `${spec.height}px`;
    canvas.parentElement.classList.add("drawn");
    new Chart(canvas, config(spec));
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
})();
