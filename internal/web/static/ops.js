// pwb platform admin: small enhancements over pages that work without it.
// Shard cards refresh themselves, "Migrate Database" opens a modal whose
// tier warning follows the shard chosen, and a move's progress bar follows
// the server's event stream.
(function () {
  "use strict";

  // Refresh a fragment every data-every ms from data-refresh.
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = parseInt(el.dataset.every, 10) || 5000;
    function tick() {
      fetch(el.dataset.refresh, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) { el.innerHTML = html; el.dataset.refreshed = String(Date.now()); })
        .catch(function () { el.dataset.refreshFailed = String(Date.now()); })
        .finally(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  });

  // Links that open a <dialog> instead of a page.
  document.querySelectorAll("[data-open-dialog]").forEach(function (a) {
    var dlg = document.getElementById(a.dataset.openDialog);
    if (!dlg || typeof dlg.showModal !== "function") { return; }
    a.addEventListener("click", function (e) { e.preventDefault(); dlg.showModal(); });
    dlg.querySelectorAll("[data-close-dialog]").forEach(function (c) {
      c.addEventListener("click", function (e) { e.preventDefault(); dlg.close(); });
    });
  });

  // The migrate form's tier warning follows the shard chosen: shown, and
  // its box usable, only for a shard that calls for another tier.
  document.querySelectorAll("[data-migrate-form]").forEach(function (form) {
    var select = form.querySelector('select[name="target"]');
    var warning = form.querySelector("[data-tier-warning]");
    if (!select || !warning) { return; }
    var box = warning.querySelector("[data-tier-box]");
    var target = warning.querySelector("[data-tier-target]");
    function follow() {
      var opt = select.options[select.selectedIndex];
      var warn = !!(opt && opt.dataset.tier);
      warning.hidden = !warn;
      box.disabled = !warn;
      if (!warn) { box.checked = false; }
      if (warn && target) { target.textContent = opt.value; }
    }
    select.addEventListener("change", follow);
    follow();
  });

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  // Live progress of a move.
  document.querySelectorAll("[data-events]").forEach(function (el) {
    if (el.dataset.ended === "true" || typeof EventSource !== "function") { return; }
    var bind = function (name) { return el.querySelector('[data-bind="' + name + '"]'); };
    var es = new EventSource(el.dataset.events);
    es.onmessage = function (e) {
      var p = JSON.parse(e.data);
      var bar = bind("bar");
      bar.value = p.percent;
      bar.textContent = p.percent + "%";
      bar.classList.toggle("failed", p.failed);
      bar.classList.toggle("done", p.done);
      bind("percent").textContent = p.percent + "%";
      bind("phase").textContent = p.phase;
      bind("rows").textContent = fmt(p.rows_copied) + " of " + fmt(p.rows_total) + " rows copied";
      bind("eta").textContent = p.eta ? " · " + p.eta + " left" : "";
      var detail = bind("detail");
      detail.textContent = p.detail || "";
      detail.hidden = !p.detail;
      var err = bind("error");
      err.textContent = p.error || "";
      err.hidden = !p.error;
      el.dataset.percent = p.percent;
      // A notice of queued work goes once the journal shows it running.
      document.querySelectorAll("[data-while-state]").forEach(function (n) {
        if (n.dataset.whileState.split(" ").indexOf(p.state) < 0) { n.remove(); }
      });
      // The move page's table of tables, if this is that page.
      (p.tables || []).forEach(function (t) {
        var row = document.querySelector('tr[data-move-table="' + t.table + '"]');
        if (!row) { return; }
        var cell = function (name) { return row.querySelector('[data-col="' + name + '"]'); };
        cell("copied").textContent = fmt(t.rows_copied) + (t.copied ? " \u2713" : "");
        if (t.verified) {
          cell("verified").textContent = t.verified === "match" ? "\u2713 checksums match" : "\u2717 differ";
        }
        cell("deleted").textContent = fmt(t.rows_deleted);
      });
      if (p.done || p.failed || p.aborted) {
        es.close();
        el.dataset.ended = "true";
        // Draw the page again for what follows: Resume and Abort, or the
        // move's end figures. Without ?done=, whose notice no longer
        // holds.
        setTimeout(function () {
          var u = new URL(window.location.href);
          u.searchParams.delete("done");
          window.location.replace(u.toString());
        }, 1200);
      }
    };
  });
})();
