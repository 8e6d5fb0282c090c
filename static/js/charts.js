// Draws every <canvas data-chart="ID"> from the JSON spec in <script type="application/json" id="ID">
// (insights/charts.py `spec`), with Chart.js (static/vendor/chartjs). No inline script, no CDN.
// Numbers follow the template filters (core/templatetags/engage.py): thousands separators, at most one
// decimal, percentages with one decimal.
(function () {
  "use strict";
  if (!window.Chart) return;
  const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  const TWO = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const fmt = (value, unit, decimals) => {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    // A floating bar (a range such as min – max) is [low, high].
    if (Array.isArray(value)) return `${fmt(value[0], unit, decimals)} – ${fmt(value[1], unit, decimals)}`;
    if (decimals === 2) return TWO.format(value);
    return unit === "%" ? `${Number(value).toFixed(1)}%` : NUMBER.format(value);
  };
  const axisFmt = (value, unit, decimals) => {
    if (decimals === 2) return TWO.format(value);
    return unit === "%" ? `${NUMBER.format(value)}%` : NUMBER.format(value);
  };
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
    if (s.tick) {
      // A short horizontal mark per bar (a median): a line dataset drawn as points only.
      Object.assign(d, {
        type: "line", showLine: false, pointStyle: "line", pointRadius: 14, pointHoverRadius: 14,
        pointBorderWidth: 3, borderColor: s.color, backgroundColor: s.color, order: -1,
      });
    } else if (line && s.dots) {
      // Dots only (the day's tier on a history): the legend names the colour, the tooltip the footer.
      Object.assign(d, {
        showLine: false, pointRadius: 3.5, pointHoverRadius: 5, backgroundColor: s.color, borderWidth: 0,
        order: -1,
      });
    } else if (line) {
      Object.assign(d, {
        fill: Boolean(s.fill), tension: 0.25, pointRadius: s.values.length > 45 || s.dash ? 0 : 2.5,
        pointHoverRadius: s.dash ? 0 : 4, spanGaps: true, borderWidth: s.dash ? 1.5 : 2,
        borderDash: s.dash ? [6, 4] : undefined,
        segment: { borderDash: (ctx) => (s.dash || partial[ctx.p1DataIndex] ? [5, 4] : undefined) },
      });
    } else {
      Object.assign(d, { borderRadius: 3, maxBarThickness: 48, stack: s.stack || `s${index}` });
      if (s.width) {
        Object.assign(d, { grouped: false, barPercentage: s.width, categoryPercentage: 1,
                           maxBarThickness: s.width < 0.2 ? 8 : 48, order: s.width < 0.2 ? 10 : index });
      }
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
        callback: (value) => axisFmt(value, unit, axis.decimals),
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
        // Horizontal bars name every row (their height leaves room); days and weeks skip to fit.
        ticks: { autoSkip: !horizontal, maxRotation: 0, autoSkipPadding: 14 },
      },
      [valueAxis]: scale(spec, y, horizontal, horizontal ? "bottom" : "left"),
    };
    if (spec.y2) scales.y2 = scale(spec, spec.y2, false, "right");
    const units = spec.series.map((s) => (s.axis === "y2" ? spec.y2 || {} : y).unit || "");
    const decimals = spec.series.map((s) => (s.axis === "y2" ? spec.y2 || {} : y).decimals);
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
            filter: (item) => !spec.series[item.datasetIndex].dots && item.raw !== null,
            callbacks: {
              label: (item) => {
                const s = spec.series[item.datasetIndex];
                const raw = item.raw;
                const value = s.absolute && raw !== null ? Math.abs(raw) : raw;
                return ` ${s.name}: ${fmt(value, units[item.datasetIndex], decimals[item.datasetIndex])}`;
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
    if (!spec.labels.length) {
      // Nothing to draw: say so in the card rather than draw empty axes.
      const note = document.createElement("p");
      note.className = "empty chart-empty";
      note.textContent = spec.empty || "No data yet";
      canvas.replaceWith(note);
      return;
    }
    if (spec.height) canvas.parentElement.style.height = `${spec.height}px`;
    canvas.parentElement.classList.add("drawn");
    new Chart(canvas, config(spec));
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
})();
