// Phone-width tables: style.css shows each row of a wide table as a card below
// 40rem, each cell under its column's heading. This copies each column's <th>
// text onto its cells as data-label (the card's caption), for the server's rows
// and for rows live.js or screenpop.js add later. Without JS the table scrolls
// sideways inside itself instead. Loaded by base.html on every page.
(function () {
  "use strict";

  function label(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) {
      return;
    }
    var names = [];
    Array.prototype.forEach.call(head.cells, function (th) {
      for (var i = 0; i < (th.colSpan || 1); i++) {
        names.push(th.textContent.trim());
      }
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var at = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var name = names[at];
          if (name && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", name);
          }
          at += cell.colSpan || 1;
        });
      });
    });
  }

  function labelAll() {
    Array.prototype.forEach.call(document.querySelectorAll("main table"), label);
  }

  function start() {
    labelAll();
    var main = document.querySelector("main");
    if (main && window.MutationObserver) {
      // Rows and tables the live pages' scripts add get their captions too (a few
      // small tables: labelling them all again is cheaper than working out which).
      new MutationObserver(labelAll).observe(main, {childList: true, subtree: true});
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
