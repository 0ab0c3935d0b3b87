// Redraw the live part (#live) of a list page every data-refresh seconds, in place.
// Skipped while the tab is hidden or the reader is in that part (focus inside it, or text typed
// in one of its fields), so a refresh never takes a form or the keyboard focus away.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh") || 0);
  if (!seconds) {
    return;
  }
  function busy(live) {
    var active = document.activeElement;
    if (active && active !== document.body && live.contains(active)) {
      return true;
    }
    var fields = live.querySelectorAll("input[type=text], textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value) {
        return true;
      }
    }
    return live.querySelector("details[open]") !== null;
  }
  function redraw() {
    var live = document.getElementById("live");
    if (!live || document.hidden || busy(live)) {
      return;
    }
    fetch(window.location.href, {credentials: "same-origin", headers: {"X-Refresh": "1"}})
      .then(function (response) {
        return response.ok && !response.redirected ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        var current = document.getElementById("live");
        if (fresh && current && !busy(current) && fresh.innerHTML !== current.innerHTML) {
          current.replaceWith(document.importNode(fresh, true));
        }
      })
      .catch(function () { /* the next round tries again */ });
  }
  window.setInterval(redraw, seconds * 1000);
})();
