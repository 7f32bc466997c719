#include "bench/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace tokenfab {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Num(double v, int digits = 3) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*g", digits, v);
  return text;
}

// "Nice" tick values covering [lo, hi].
std::vector<double> Ticks(double lo, double hi, int target = 6) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

}  // namespace

std::string SvgLinePlot(const std::string& title, const std::string& x_label,
                        const std::string& y_label, const std::vector<PlotSeries>& series,
                        bool log_x) {
  constexpr double kW = 560, kH = 340, kLeft = 70, kRight = 20, kTop = 30, kBottom = 50;
  double x0 = INFINITY, x1 = -INFINITY, y0 = 0, y1 = -INFINITY;
  auto tx = [&](double x) { return log_x ? std::log10(std::max(x, 1e-9)) : x; };
  for (const PlotSeries& s : series) {
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, tx(x));
      x1 = std::max(x1, tx(x));
      y1 = std::max(y1, y);
    }
  }
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kW, 6) +
                    "\" height=\"" + Num(kH, 6) + "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg += "<text x=\"" + Num(kW / 2, 6) + "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">" +
         Escape(title) + "</text>";
  if (!std::isfinite(x0) || !std::isfinite(y1)) return svg + "<text x=\"80\" y=\"80\">no data</text></svg>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  y1 *= 1.05;
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (tx(x) - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kTop + ph - (y - y0) / (y1 - y0) * ph; };
  svg += "<rect x=\"" + Num(kLeft, 6) + "\" y=\"" + Num(kTop, 6) + "\" width=\"" + Num(pw, 6) +
         "\" height=\"" + Num(ph, 6) + "\" fill=\"none\" stroke=\"#888\"/>";
  for (double t : Ticks(y0, y1)) {
    const double y = py(t);
    svg += "<line x1=\"" + Num(kLeft, 6) + "\" x2=\"" + Num(kLeft + pw, 6) + "\" y1=\"" + Num(y, 6) +
           "\" y2=\"" + Num(y, 6) + "\" stroke=\"#eee\"/>";
    svg += "<text x=\"" + Num(kLeft - 5, 6) + "\" y=\"" + Num(y + 4, 6) + "\" text-anchor=\"end\">" + Num(t) + "</text>";
  }
  for (double t : Ticks(x0, x1)) {
    const double x = kLeft + (t - x0) / (x1 - x0) * pw;
    svg += "<line x1=\"" + Num(x, 6) + "\" x2=\"" + Num(x, 6) + "\" y1=\"" + Num(kTop, 6) + "\" y2=\"" +
           Num(kTop + ph, 6) + "\" stroke=\"#eee\"/>";
    svg += "<text x=\"" + Num(x, 6) + "\" y=\"" + Num(kTop + ph + 15, 6) + "\" text-anchor=\"middle\">" +
           Num(log_x ? std::pow(10.0, t) : t) + "</text>";
  }
  svg += "<text x=\"" + Num(kLeft + pw / 2, 6) + "\" y=\"" + Num(kH - 10, 6) + "\" text-anchor=\"middle\">" +
         Escape(x_label) + "</text>";
  svg += "<text transform=\"translate(14," + Num(kTop + ph / 2, 6) + ") rotate(-90)\" text-anchor=\"middle\">" +
         Escape(y_label) + "</text>";
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % 10];
    std::string points;
    for (const auto& [x, y] : series[i].points) points += Num(px(x), 6) + "," + Num(py(y), 6) + " ";
    svg += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"1.6\" points=\"" +
           points + "\"/>";
    if (series[i].points.size() <= 40) {
      for (const auto& [x, y] : series[i].points) {
        svg += "<circle cx=\"" + Num(px(x), 6) + "\" cy=\"" + Num(py(y), 6) + "\" r=\"2.5\" fill=\"" + color + "\"/>";
      }
    }
    const double ly = kTop + 14 + 14 * static_cast<double>(i);
    svg += "<rect x=\"" + Num(kLeft + 8, 6) + "\" y=\"" + Num(ly - 8, 6) + "\" width=\"10\" height=\"3\" fill=\"" +
           color + "\"/><text x=\"" + Num(kLeft + 22, 6) + "\" y=\"" + Num(ly - 3, 6) + "\">" +
           Escape(series[i].name) + "</text>";
  }
  return svg + "</svg>";
}

std::string HtmlReport(const std::string& title, const std::vector<RunSummary>& runs) {
  std::string html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + Escape(title) +
                     "</title><style>body{font-family:sans-serif;margin:24px}table{border-collapse:"
                     "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:"
                     "right}th{background:#f4f4f4}td:first-child{text-align:left}.plots{display:flex;"
                     "flex-wrap:wrap;gap:12px}</style></head><body><h1>" + Escape(title) + "</h1>";
  html += "<table><tr><th>run</th><th>done</th><th>failed</th><th>req/s</th><th>output tok/s</th>"
          "<th>goodput req/s</th><th>SLO met</th><th>TTFT p50 ms</th><th>TTFT p99 ms</th>"
          "<th>TPOT p50 ms</th><th>TPOT p99 ms</th><th>ITL p50 ms</th><th>ITL p99 ms</th>"
          "<th>E2E p50 s</th><th>cached tokens</th><th>tok/J</th></tr>";
  for (const RunSummary& r : runs) {
    html += "<tr><td>" + Escape(r.label) + "</td><td>" + std::to_string(r.completed) + "</td><td>" +
            std::to_string(r.failed) + "</td><td>" + Num(r.request_throughput, 4) + "</td><td>" +
            Num(r.output_throughput, 5) + "</td><td>" + Num(r.goodput, 4) + "</td><td>" +
            (r.slo_met ? "yes" : "no") + "</td><td>" + Num(1e3 * r.ttft.p50, 4) + "</td><td>" +
            Num(1e3 * r.ttft.p99, 4) + "</td><td>" + Num(1e3 * r.tpot.p50, 4) + "</td><td>" +
            Num(1e3 * r.tpot.p99, 4) + "</td><td>" + Num(1e3 * r.itl.p50, 4) + "</td><td>" +
            Num(1e3 * r.itl.p99, 4) + "</td><td>" + Num(r.e2e.p50, 4) + "</td><td>" +
            (r.cached_tokens >= 0 ? std::to_string(r.cached_tokens) : "-") + "</td><td>" +
            (r.tokens_per_joule > 0 ? Num(r.tokens_per_joule, 4) : "-") + "</td></tr>";
  }
  html += "</table><p>SLO: TTFT &le; " + Num(runs.empty() ? 2.0 : runs[0].slo.ttft_s) +
          " s and TPOT &le; " + Num(runs.empty() ? 100.0 : 1e3 * runs[0].slo.tpot_s) +
          " ms per request (goodput); &quot;SLO met&quot;: p99 of both within the limits.</p>";

  auto cdf = [&](const char* name, const char* unit, double scale, auto pick) {
    std::vector<PlotSeries> series;
    for (const RunSummary& r : runs) {
      const std::vector<double>& v = pick(r).values;
      PlotSeries s{r.label, {}};
      const size_t step = std::max<size_t>(1, v.size() / 400);  // at most ~400 points a line
      for (size_t i = 0; i < v.size(); i += step) {
        s.points.push_back({v[i] * scale, static_cast<double>(i + 1) / static_cast<double>(v.size())});
      }
      if (!v.empty()) s.points.push_back({v.back() * scale, 1.0});
      series.push_back(std::move(s));
    }
    return SvgLinePlot(std::string(name) + " CDF", std::string(name) + " (" + unit + ")", "fraction of requests", series);
  };
  html += "<h2>Latency distributions</h2><div class=\"plots\">";
  html += cdf("TTFT", "ms", 1e3, [](const RunSummary& r) -> const Distribution& { return r.ttft; });
  html += cdf("TPOT", "ms", 1e3, [](const RunSummary& r) -> const Distribution& { return r.tpot; });
  html += cdf("ITL", "ms", 1e3, [](const RunSummary& r) -> const Distribution& { return r.itl; });
  html += cdf("E2E latency", "s", 1, [](const RunSummary& r) -> const Distribution& { return r.e2e; });
  html += "</div>";

  // Sweeps: runs grouped by the label before " @".
  std::map<std::string, std::vector<const RunSummary*>> groups;
  std::vector<std::string> order;
  for (const RunSummary& r : runs) {
    const std::string key = r.label.substr(0, r.label.find(" @"));
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&r);
  }
  auto sweep = [&](const char* name, auto y) {
    std::vector<PlotSeries> series;
    for (const std::string& key : order) {
      std::vector<const RunSummary*> rs = groups[key];
      std::sort(rs.begin(), rs.end(), [](const RunSummary* a, const RunSummary* b) {
        return a->output_throughput < b->output_throughput;
      });
      PlotSeries s{key, {}};
      for (const RunSummary* r : rs) s.points.push_back({r->output_throughput, y(*r)});
      series.push_back(std::move(s));
    }
    return SvgLinePlot(std::string(name) + " vs throughput", "output tokens/s", name, series);
  };
  html += "<h2>Throughput vs latency across the sweep</h2><div class=\"plots\">";
  html += sweep("TTFT p50 (ms)", [](const RunSummary& r) { return 1e3 * r.ttft.p50; });
  html += sweep("TTFT p99 (ms)", [](const RunSummary& r) { return 1e3 * r.ttft.p99; });
  html += sweep("TPOT p50 (ms)", [](const RunSummary& r) { return 1e3 * r.tpot.p50; });
  html += sweep("TPOT p99 (ms)", [](const RunSummary& r) { return 1e3 * r.tpot.p99; });
  html += "</div></body></html>\n";
  return html;
}

}  // namespace tokenfab
