// The call history: a recording's Delete button asks first (the form works without this,
// it just does not ask).
(function () {
  "use strict";
  var table = document.getElementById("calls");
  if (!table) {
    return;
  }
  table.addEventListener("submit", function (e) {
    var question = e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });
})();
