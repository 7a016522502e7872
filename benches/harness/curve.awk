# The cost curve's table and chart (curve.sh), from a results.tsv whose lines are
#   CONNECTIONS <tab> MEASURE <tab> SERVER <tab> VALUE
# one per run and figure. Prints a Markdown table (one row per measure and connection count,
# one column per server, the median over the rounds; then `ours` against each server of
# `vs`; then the spread, the widest max/min over the rounds among the row's servers) and
# writes the same medians to `svg` as curves, one panel per measure, connections across.
#
# Variables (awk -v): servers   the server keys, in column order, separated by spaces
#                     labels    "key=column title;key=column title;..."
#                     colors    "key=#rrggbb;..." (the curves)
#                     ours      the key the ratios are about
#                     vs        the keys to divide by, separated by spaces
#                     conns     the connection counts, in order, separated by spaces
#                     active    the connections driven ping-pong (for the labels)
#                     svg       where the chart goes ("" for none)
function median(list,   v, n, i, j, t) {
  n = split(list, v, " ")
  for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) {
    t = v[j]; v[j] = v[j-1]; v[j-1] = t
  }
  spread = v[1] > 0 ? v[n] / v[1] : 0
  return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
function show(measure, x) {
  if (x == "") return "–"
  if (measure == "threads") return sprintf("%.2f", x)
  if (measure == "connect") return sprintf("%.2f s", x)
  if (measure == "p50" || measure == "p99") {
    return x >= 1000 ? sprintf("%.2f ms", x / 1000) : sprintf("%d µs", x + 0.5)
  }
  return sprintf("%.1f KiB", x)
}
function ratio(a, b) { return (a == "" || b == "" || b + 0 <= 0 || a + 0 < 0) ? "–" : sprintf("%.2f×", a / b) }
function pairs(text, into,   n, p, i, kv) {
  n = split(text, p, ";")
  for (i = 1; i <= n; i++) { split(p[i], kv, "="); into[kv[1]] = kv[2] }
}
function count(n) { return n >= 1000 && n % 1000 == 0 ? sprintf("%d 000", n / 1000) : n }
{ runs[$1 "|" $2 "|" $3] = runs[$1 "|" $2 "|" $3] " " $4 }
END {
  nm = split("rss kernel kstack threads connect p50 p99", measures, " ")
  title["rss"] = "RSS per connection"
  title["kernel"] = "kernel memory per connection"
  title["kstack"] = "of which thread kernel stacks"
  title["threads"] = "threads per connection"
  title["connect"] = "time to open them all"
  title["p50"] = "p50 round trip, " active " active"
  title["p99"] = "p99 round trip, " active " active"
  ns = split(servers, s, " ")
  nv = split(vs, v, " ")
  nc = split(conns, c, " ")
  pairs(labels, name)
  pairs(colors, color)
  head = "| measure | connections |"; rule = "|---|---|"
  for (i = 1; i <= ns; i++) { head = head " " name[s[i]] " |"; rule = rule "---|" }
  for (i = 1; i <= nv; i++) { head = head " " ours " / " v[i] " |"; rule = rule "---|" }
  print head " spread |"
  print rule "---|"
  for (k = 1; k <= nm; k++) for (j = 1; j <= nc; j++) {
    key = c[j] "|" measures[k]
    line = "| " title[measures[k]] " | " count(c[j]) " |"
    delete m
    widest = 0
    for (i = 1; i <= ns; i++) {
      m[s[i]] = ""
      if ((key "|" s[i]) in runs) {
        m[s[i]] = median(runs[key "|" s[i]])
        med[key "|" s[i]] = m[s[i]]
        if (spread > widest) widest = spread
      }
      line = line " " show(measures[k], m[s[i]]) " |"
    }
    for (i = 1; i <= nv; i++) line = line " " ratio(m[ours], m[v[i]]) " |"
    print line " " (widest > 0 ? sprintf("%.2f×", widest) : "–") " |"
  }
  if (svg == "") exit

  # One panel per charted measure, three across; x: connections from 0, y: from 0.
  nk = split("rss kernel connect p50 p99", chart, " ")
  pw = 300; ph = 210; across = 3
  width = across * pw + 20; height = 40 + int((nk + across - 1) / across) * ph
  most_conns = c[nc] + 0
  for (j = 1; j <= nc; j++) if (c[j] + 0 > most_conns) most_conns = c[j] + 0
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", width, height > svg
  print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>" > svg
  for (i = 1; i <= ns; i++) {
    printf "<rect x=\"%d\" y=\"8\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"18\">%s</text>\n", 10 + (i - 1) * 220, color[s[i]], 26 + (i - 1) * 220, name[s[i]] > svg
  }
  for (k = 1; k <= nk; k++) {
    ms = chart[k]
    ox = 10 + ((k - 1) % across) * pw; oy = 40 + int((k - 1) / across) * ph
    left = ox + 60; right = ox + pw - 20; top = oy + 22; bottom = oy + ph - 40
    low = 0; high = 0
    for (j = 1; j <= nc; j++) for (i = 1; i <= ns; i++) {
      key = c[j] "|" ms "|" s[i]
      if (!(key in med)) continue
      if (med[key] + 0 > high) high = med[key] + 0
      if (med[key] + 0 < low) low = med[key] + 0
    }
    if (high == low) high = low + 1
    high = high * 1.1
    printf "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", ox + 5, oy + 12, title[ms] > svg
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>", left, top, left, bottom > svg
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n", left, bottom, right, bottom > svg
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", left - 4, top + 4, show(ms, high) > svg
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 4, bottom + 4, show(ms, low) > svg
    for (j = 1; j <= nc; j++) {
      x = left + (right - left) * c[j] / most_conns
      printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#888\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, bottom, x, bottom + 4, x, bottom + 17, count(c[j]) > svg
    }
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">connections</text>\n", (left + right) / 2, bottom + 32 > svg
    for (i = 1; i <= ns; i++) {
      points = ""
      for (j = 1; j <= nc; j++) {
        key = c[j] "|" ms "|" s[i]
        if (!(key in med)) continue
        x = left + (right - left) * c[j] / most_conns
        y = bottom - (bottom - top) * (med[key] - low) / (high - low)
        points = points sprintf(" %.1f,%.1f", x, y)
        printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, color[s[i]] > svg
      }
      if (points != "") printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", substr(points, 2), color[s[i]] > svg
    }
  }
  print "</svg>" > svg
}
