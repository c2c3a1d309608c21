// Small helpers shared by the dashboard (live.js) and the agent's page
// (screenpop.js): load this file first. No framework; CSP allows no inline script.
window.KeeplineUtil = (function () {
  "use strict";

  // A new element with an optional class and text.
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // 75 -> "1:15", 3725 -> "1:02:05".
  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    s = s % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  // A Unix time as local "HH:MM", or "HH:MM:SS" with seconds.
  function clock(ts, withSeconds) {
    var d = new Date(ts * 1000);
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return withSeconds ? hm + ":" + pad(d.getSeconds()) : hm;
  }

  return { el: el, pad: pad, duration: duration, clock: clock };
})();
