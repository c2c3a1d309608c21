// The destination picker (templates/admin/_form.html "destination"): the page works
// without script, showing every kind's field with "fill in only the field for your
// choice"; with script only the chosen kind's field shows. Nothing is cleared: the
// server reads the chosen kind's field alone (web/admin/destinations.py).
(function () {
  "use strict";

  function own(root, selector, prefix) {
    return Array.prototype.filter.call(root.querySelectorAll(selector), function (node) {
      return node.getAttribute("data-of") === prefix;
    });
  }

  function setUp(fieldset) {
    var prefix = fieldset.getAttribute("data-destination");
    var kind = own(fieldset, "select[data-kind-select]", prefix)[0];
    if (!kind) {
      return;
    }
    var fields = own(fieldset, "[data-kind]", prefix);
    own(fieldset, "[data-nojs-hint]", prefix).forEach(function (hint) {
      hint.hidden = true;
    });
    function show() {
      fields.forEach(function (field) {
        field.hidden = field.getAttribute("data-kind") !== kind.value;
      });
    }
    kind.addEventListener("change", show);
    show();
  }

  Array.prototype.forEach.call(document.querySelectorAll("fieldset[data-destination]"), setUp);
})();
