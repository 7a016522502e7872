# The medians table and bar chart of kv.sh and http.sh, from a results.tsv whose lines are
#   LOAD <tab> TEST <tab> SERVER <tab> VALUE
# one per run. Prints a Markdown table (one row per load and test, one column per server, the
# median over the rounds; then `ours` against each server of `vs`; then the spread, the
# widest max/min over the rounds among the row's servers, 1.00× = steady) and writes the same
# medians to `svg` as bars, each row scaled to its largest value.
#
# Variables (awk -v): servers   the server keys, in column order, separated by spaces
#                     labels    "key=column title;key=column title;..."
#                     colors    "key=#rrggbb;..." (the bars)
#                     ours      the key the ratios are about
#                     vs        the keys to divide by, separated by spaces
#                     unit      "rps" (values are per second, shown as 12.3 k) or "ms"
#                     svg       where the chart goes ("" for none)
function median(list,   v, n, i, j, t) {
  n = split(list, v, " ")
  for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) {
    t = v[j]; v[j] = v[j-1]; v[j-1] = t
  }
  spread = v[1] > 0 ? v[n] / v[1] : 0
  return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
function show(x) {
  if (x == "") return "–"
  if (unit == "ms") return sprintf("%.2f ms", x)
  x = x / 1000
  if (x >= 1000) return sprintf("%d %03d k", int(x / 1000), int(x) % 1000)
  return x >= 100 ? sprintf("%d k", x + 0.5) : sprintf("%.1f k", x)
}
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "–" : sprintf("%.2f×", a / b) }
function pairs(text, into,   n, p, i, kv) {
  n = split(text, p, ";")
  for (i = 1; i <= n; i++) { split(p[i], kv, "="); into[kv[1]] = kv[2] }
}
{
  key = $1 "|" $2
  if (!(key in seen)) { seen[key] = 1; order[++rows] = key }
  runs[key "|" $3] = runs[key "|" $3] " " $4
}
END {
  ns = split(servers, s, " ")
  nv = split(vs, v, " ")
  pairs(labels, name)
  pairs(colors, color)
  head = "| load | test |"; rule = "|---|---|"
  for (i = 1; i <= ns; i++) { head = head " " name[s[i]] " |"; rule = rule "---|" }
  for (i = 1; i <= nv; i++) { head = head " " ours " / " v[i] " |"; rule = rule "---|" }
  print head " spread |"
  print rule "---|"
  group = ns * 16 + 12; height = 30 + rows * group
  if (svg != "") {
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", 40 + ns * 200, height > svg
    print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>" > svg
    for (i = 1; i <= ns; i++) {
      printf "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"16\">%s</text>\n", 10 + (i - 1) * 200, color[s[i]], 26 + (i - 1) * 200, name[s[i]] > svg
    }
  }
  for (r = 1; r <= rows; r++) {
    split(order[r], lt, "|")
    line = "| `" lt[1] "` | " lt[2] " |"
    delete m
    widest = 0
    for (i = 1; i <= ns; i++) {
      m[s[i]] = ""
      if ((order[r] "|" s[i]) in runs) {
        m[s[i]] = median(runs[order[r] "|" s[i]])
        if (spread > widest) widest = spread
      }
      line = line " " show(m[s[i]]) " |"
    }
    for (i = 1; i <= nv; i++) line = line " " ratio(m[ours], m[v[i]]) " |"
    print line " " sprintf("%.2f×", widest) " |"
    if (svg == "") continue
    top = 30 + (r - 1) * group; most = 0
    for (i = 1; i <= ns; i++) if (m[s[i]] + 0 > most) most = m[s[i]] + 0
    printf "<text x=\"10\" y=\"%d\">%s %s</text>\n", top + group / 2, lt[1], lt[2] > svg
    for (i = 1; i <= ns; i++) {
      if (m[s[i]] == "" || most == 0) continue
      y = top + (i - 1) * 16
      printf "<rect x=\"130\" y=\"%d\" width=\"%.1f\" height=\"13\" fill=\"%s\"/>", y, (ns * 200 - 240) * m[s[i]] / most, color[s[i]] > svg
      printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", 135 + (ns * 200 - 240) * m[s[i]] / most, y + 11, show(m[s[i]]) > svg
    }
  }
  if (svg != "") print "</svg>" > svg
}
