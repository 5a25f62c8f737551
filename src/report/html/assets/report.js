// slant report: sortable tables, and every sampled article opened for printing. No network.
(function () {
  "use strict";
  function value(row, key) {
    var v = row.getAttribute("data-" + key);
    var n = parseFloat(v);
    return isNaN(n) ? (v || "") : n;
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.querySelectorAll("th button[data-key]"), function (button) {
      button.addEventListener("click", function () {
        var key = button.getAttribute("data-key");
        var th = button.parentNode;
        var ascending = th.getAttribute("aria-sort") === "descending";
        Array.prototype.forEach.call(table.querySelectorAll("th[aria-sort]"), function (h) {
          h.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (x, y) {
          var a = value(x, key), b = value(y, key);
          var c = typeof a === "number" && typeof b === "number"
            ? a - b : String(a).localeCompare(String(b));
          if (c === 0) {
            c = String(value(x, "source")).localeCompare(String(value(y, "source")));
            return c;
          }
          return ascending ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) {
      d.open = true;
    });
  });
  // report.html#sort=KEY opens with the profile table sorted by KEY (descending).
  var wanted = /^#sort=([A-Za-z_]+)$/.exec(window.location.hash);
  if (wanted) {
    var b = document.querySelector('table.sortable th button[data-key="' + wanted[1] + '"]');
    if (b) { b.click(); }
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
