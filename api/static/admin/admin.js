// The admin pages' one script. Pages are whole server-rendered HTML that work without it;
// it keeps them current while jobs run:
//  - <main data-live-url=...>: every 2 s, fetch {"regions": {NAME: html}} and swap each
//    [data-region=NAME] whose HTML changed, keeping keyboard focus where it was;
//  - <pre data-log-url=... data-log-offset=N>: fetch the log's lines after N and append them.
// Polling pauses while the tab is hidden, and stops once the server says the job is final.
(function () {
  "use strict";
  var POLL_MS = 2000;

  function showState(text) {
    var state = document.querySelector("[data-live-state]");
    if (!state) return;
    state.hidden = !text;
    state.textContent = text;
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload(); // the session ended: the page sends to sign-in
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      });
  }

  // Something that identifies a control across a re-render of its region.
  function focusKey(element) {
    if (element.id) return "id:" + element.id;
    var form = element.form ? element.form.getAttribute("action") : "";
    return [element.tagName, element.getAttribute("href") || "", form || "", element.name || ""].join("|");
  }

  function replaceRegion(region, html) {
    if (region.lastHTML === html) return;
    region.lastHTML = html;
    var active = document.activeElement;
    var key = active && active !== document.body && region.contains(active) ? focusKey(active) : null;
    region.innerHTML = html;
    if (key === null) return;
    var candidates = region.querySelectorAll("a, button, input, select, textarea, summary, [tabindex]");
    for (var i = 0; i < candidates.length; i++) {
      if (focusKey(candidates[i]) === key) {
        candidates[i].focus();
        return;
      }
    }
  }

  function every(step) {
    function tick() {
      if (document.hidden) {
        setTimeout(tick, POLL_MS);
        return;
      }
      step().then(
        function (more) { if (more) setTimeout(tick, POLL_MS); },
        function () {
          showState("Live updates paused: the service did not answer. Retrying…");
          setTimeout(tick, POLL_MS * 2);
        }
      );
    }
    setTimeout(tick, POLL_MS);
  }

  function refreshRegions(root) {
    var url = root.getAttribute("data-live-url");
    every(function () {
      return getJSON(url).then(function (data) {
        Object.keys(data.regions || {}).forEach(function (name) {
          var region = root.querySelector('[data-region="' + name + '"]');
          if (region) replaceRegion(region, data.regions[name]);
        });
        showState("");
        return !data.final;
      });
    });
  }

  function appendLines(log, lines) {
    var fragment = document.createDocumentFragment();
    lines.forEach(function (line) {
      var row = document.createElement("span");
      row.className = "line";
      var date = document.createElement("span");
      date.className = "date";
      date.title = line.date;
      date.textContent = line.date.slice(11, 23);
      row.appendChild(date);
      row.appendChild(document.createTextNode(" " + line.log + "\n"));
      fragment.appendChild(row);
    });
    log.appendChild(fragment);
  }

  function tailLog(log) {
    var url = log.getAttribute("data-log-url");
    var offset = Number(log.getAttribute("data-log-offset")) || 0;
    var follow = document.getElementById("log-follow");
    var empty = document.querySelector("[data-log-empty]");
    if (follow && follow.checked) log.scrollTop = log.scrollHeight;
    if (log.getAttribute("data-final") === "true") return; // complete when the page was made
    every(function () {
      return getJSON(url + "?offset=" + offset).then(function (data) {
        if (data.reset) log.textContent = "";
        if (data.lines.length) {
          appendLines(log, data.lines);
          if (empty) empty.hidden = true;
          if (follow && follow.checked) log.scrollTop = log.scrollHeight;
        }
        offset = data.offset;
        log.setAttribute("data-log-offset", String(offset));
        // A final job's log is whole: once a read finds nothing more, it is all here.
        return !(data.final && !data.lines.length);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-live-url]");
    if (root) refreshRegions(root);
    var log = document.querySelector("[data-log-url]");
    if (log) tailLog(log);
  });
})();
