// promgov UI progressive enhancement: every page works without this
// script. It makes table.sortable headings sort (click, Enter or Space)
// and filters a table as its filter box is typed into. It reads text
// with textContent and never writes HTML.
"use strict";
(function () {
  function cellValue(row, i, numeric) {
    var c = row.cells[i];
    if (!c) return numeric ? -Infinity : "";
    var v = c.getAttribute("data-v");
    if (numeric) { var n = parseFloat(v !== null ? v : c.textContent); return isNaN(n) ? -Infinity : n; }
    return c.textContent.trim().toLowerCase();
  }
  function sortBy(table, th, i) {
    var numeric = th.getAttribute("data-type") === "num";
    // First click: numbers biggest first, text A to Z; then toggle.
    var cur = th.getAttribute("aria-sort");
    var asc = cur === "descending" ? true : cur === "ascending" ? false : !numeric;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, i, numeric), y = cellValue(b, i, numeric);
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.setAttribute("role", "columnheader");
      th.title = "Sort by " + th.textContent.trim();
      th.addEventListener("click", function () { sortBy(table, th, i); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, i); }
      });
    });
  });
  document.querySelectorAll("input[data-filter-table]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter-table"));
    if (!table) return;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var name = r.cells[1] && r.cells[0].tagName === "TD" ? r.cells[1] : r.cells[0];
        r.hidden = q !== "" && name.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });
})();
