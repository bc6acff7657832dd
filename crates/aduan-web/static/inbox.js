// The inbox without reloads (issue 19.3), progressive enhancement: every page works
// without this script. No framework, no inline code (the CSP allows scripts from 'self').
// - The inbox (#rows): polls /inbox/rows with the page's filters every 2 s; the server
//   answers 204 while its version (the newest ids) is unchanged, else the new rows.
//   Rows that were not there when the page loaded and are still in triage are counted in
//   the title: "(3) Kotak masuk".
// - The ticket page (#canned): picking a canned answer fills the answer box at once.
// - The complaint form (#lokasi-saya): where the browser can tell its position, a button
//   fills Lintang and Bujur with it when the resident asks (the browser asks them first).
(function () {
  "use strict";
  var POLL_MS = 2000;

  function inbox(tbody) {
    var baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
    var known = {};
    tbody.querySelectorAll("tr[data-code]").forEach(function (tr) {
      known[tr.getAttribute("data-code")] = true;
    });
    var version = tbody.getAttribute("data-version") || "";
    function poll() {
      var params = new URLSearchParams(window.location.search);
      params.delete("cursor");
      params.set("since", version);
      fetch("/inbox/rows?" + params.toString(), { credentials: "same-origin" })
        .then(function (resp) {
          var v = resp.headers.get("X-Inbox-Version");
          if (resp.status === 204) {
            if (v) { version = v; }
            return null;
          }
          if (!resp.ok) { return null; }
          return resp.text().then(function (html) {
            if (v) { version = v; }
            return html;
          });
        })
        .then(function (html) {
          if (html === null || html === undefined) { return; }
          var checked = {};
          tbody.querySelectorAll("input[name=code]:checked").forEach(function (c) {
            checked[c.value] = true;
          });
          var tmp = document.createElement("tbody");
          tmp.innerHTML = html;
          var fresh = 0;
          tmp.querySelectorAll("tr[data-code]").forEach(function (tr) {
            var code = tr.getAttribute("data-code");
            var box = tr.querySelector("input[name=code]");
            if (box && checked[code]) { box.checked = true; }
            if (!known[code]) {
              tr.classList.add("fresh");
              if (tr.getAttribute("data-triage")) { fresh += 1; }
            }
          });
          tbody.replaceChildren.apply(tbody, Array.prototype.slice.call(tmp.childNodes));
          document.title = fresh > 0 ? "(" + fresh + ") " + baseTitle : baseTitle;
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ })
        .finally(function () { window.setTimeout(poll, POLL_MS); });
    }
    window.setTimeout(poll, POLL_MS);
  }

  function canned(select) {
    var box = document.getElementById("reply-text");
    if (!box) { return; }
    select.addEventListener("change", function () {
      var opt = select.options[select.selectedIndex];
      if (opt) { box.value = opt.getAttribute("data-text") || ""; box.focus(); }
    });
  }

  function locate(button) {
    var form = button.form;
    var status = document.getElementById("lokasi-status");
    if (!form || !navigator.geolocation) { return; }
    function say(text) { if (status) { status.textContent = text; } }
    button.hidden = false;
    button.addEventListener("click", function () {
      say("Mencari lokasi\u2026");
      navigator.geolocation.getCurrentPosition(function (pos) {
        form.elements.lat.value = pos.coords.latitude.toFixed(6);
        form.elements.lon.value = pos.coords.longitude.toFixed(6);
        var acc = pos.coords.accuracy;
        say(typeof acc === "number"
          ? "Lokasi terisi (ketelitian \u00b1" + Math.round(acc) + " m)."
          : "Lokasi terisi.");
      }, function () {
        say("Lokasi tidak dapat dibaca. Isi Lintang dan Bujur sendiri, atau kosongkan.");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tbody = document.getElementById("rows");
    if (tbody) { inbox(tbody); }
    var select = document.getElementById("canned");
    if (select) { canned(select); }
    var here = document.getElementById("lokasi-saya");
    if (here) { locate(here); }
  });
})();
