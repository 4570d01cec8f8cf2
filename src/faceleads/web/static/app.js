// faceleads web app: small, dependency-free scripts for the probe, results, comparison and job pages.
// Loaded with `defer` from 'self' only (the Content-Security-Policy forbids inline script).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // ---- probe page: pick a face by clicking its box, draw a box, preview enhancements ----
  function initProbe() {
    var stage = document.getElementById("probe-stage");
    if (!stage) return;
    var img = document.getElementById("probe-img");
    var svg = document.getElementById("probe-boxes");
    var naturalW = parseFloat(stage.dataset.width), naturalH = parseFloat(stage.dataset.height);
    function fitBoxes() {
      // Edits (rotation) may change the image size: the boxes are in the displayed image's pixels.
      if (img.naturalWidth && !stage.classList.contains("previewing")) {
        naturalW = img.naturalWidth; naturalH = img.naturalHeight;
        svg.setAttribute("viewBox", "0 0 " + naturalW + " " + naturalH);
      }
    }
    if (img.complete) fitBoxes(); else img.addEventListener("load", fitBoxes);

    function select(number) {
      svg.querySelectorAll(".face").forEach(function (g) {
        g.classList.toggle("selected", g.dataset.face === String(number));
      });
      var radio = document.querySelector('input[name="face"][value="' + number + '"]');
      if (radio && !radio.disabled) radio.checked = true;
    }
    svg.querySelectorAll(".face").forEach(function (g) {
      g.addEventListener("click", function () { if (!drawing) select(g.dataset.face); });
    });
    document.querySelectorAll('input[name="face"]').forEach(function (r) {
      r.addEventListener("change", function () { select(r.value); });
    });
    var checked = document.querySelector('input[name="face"]:checked');
    if (checked) select(checked.value);

    // Enhancement preview: CSS only, the original is untouched and the search uses it.
    var b = document.getElementById("edit-brightness"), c = document.getElementById("edit-contrast"),
        rot = document.getElementById("edit-rotate"), reset = document.getElementById("edit-reset");
    function applyEdits() {
      img.style.filter = "brightness(" + b.value / 100 + ") contrast(" + c.value / 100 + ")";
      img.style.transform = "rotate(" + rot.value + "deg)";
    }
    if (b && c && rot) {
      [b, c, rot].forEach(function (el) { el.addEventListener("input", applyEdits); });
      if (reset) reset.addEventListener("click", function () { b.value = 100; c.value = 100; rot.value = 0; applyEdits(); });
    }

    // Case probes: live preview of the edit list, rendered by the server from the original (nothing saved).
    var editForm = document.getElementById("edit-form");
    if (editForm && img.dataset.preview) {
      var timer = null;
      editForm.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var params = new URLSearchParams();
          ["brightness", "contrast", "rotate", "sharpen"].forEach(function (name) {
            params.set(name, editForm.elements[name].value);
          });
          params.set("equalize", editForm.elements.equalize.checked ? "true" : "false");
          stage.classList.add("previewing");
          img.src = img.dataset.preview + "?" + params.toString();
        }, 250);
      });
    }

    // Draw a box around a face the detector missed.
    var drawing = false, start = null;
    var draft = document.getElementById("draft-box");
    var drawBtn = document.getElementById("draw-box");
    var status = document.getElementById("draw-status");
    if (!drawBtn) return;
    function toImage(ev) {
      var r = stage.getBoundingClientRect();
      return [(ev.clientX - r.left) * naturalW / r.width, (ev.clientY - r.top) * naturalH / r.height];
    }
    drawBtn.addEventListener("click", function () {
      drawing = !drawing;
      stage.classList.toggle("drawing", drawing);
      drawBtn.setAttribute("aria-pressed", String(drawing));
      status.textContent = drawing ? "Drag a box around the face on the image." : "";
    });
    stage.addEventListener("pointerdown", function (ev) {
      if (!drawing) return;
      start = toImage(ev);
      stage.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    stage.addEventListener("pointermove", function (ev) {
      if (!drawing || !start) return;
      var p = toImage(ev);
      draft.setAttribute("x", Math.min(start[0], p[0]));
      draft.setAttribute("y", Math.min(start[1], p[1]));
      draft.setAttribute("width", Math.abs(p[0] - start[0]));
      draft.setAttribute("height", Math.abs(p[1] - start[1]));
    });
    stage.addEventListener("pointerup", function (ev) {
      if (!drawing || !start) return;
      var p = toImage(ev);
      var box = [Math.max(0, Math.min(start[0], p[0])), Math.max(0, Math.min(start[1], p[1])),
                 Math.min(naturalW, Math.max(start[0], p[0])), Math.min(naturalH, Math.max(start[1], p[1]))];
      start = null;
      status.textContent = "Looking for a face in the box…";
      fetch(drawBtn.dataset.endpoint || ("/probes/" + drawBtn.dataset.probe + "/box"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ box: box })
      }).then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      }).then(function (res) {
        if (res.ok) { window.location.reload(); }
        else { status.textContent = res.body.detail || "No face found in the box."; }
      }).catch(function () { status.textContent = "The request failed."; });
    });
  }

  // ---- results page: score floor filter ----
  function initResults() {
    var floor = document.getElementById("score-floor");
    if (!floor) return;
    var out = document.getElementById("score-floor-out"), count = document.getElementById("shown-count");
    var cards = document.querySelectorAll(".candidate");
    function apply() {
      var min = parseFloat(floor.value), shown = 0;
      cards.forEach(function (card) {
        var hide = parseFloat(card.dataset.score) < min;
        card.classList.toggle("hidden", hide);
        if (!hide) shown += 1;
      });
      out.textContent = min <= -0.2 ? "none" : min.toFixed(2);
      count.textContent = shown + " of " + cards.length + " candidates shown";
    }
    floor.addEventListener("input", apply);
    apply();
  }

  // ---- comparison: synchronised zoom and pan, landmarks, blend and flicker ----
  function initCompare() {
    var root = document.getElementById("compare");
    if (!root) return;
    var layers = root.querySelectorAll(".layer");
    var viewports = root.querySelectorAll(".viewport");
    var state = { s: 1, x: 0, y: 0 };
    function apply() {
      layers.forEach(function (l) {
        l.style.transform = "translate(" + state.x + "px," + state.y + "px) scale(" + state.s + ")";
      });
    }
    function zoomAt(factor, cx, cy) {
      var s = Math.min(8, Math.max(1, state.s * factor));
      var k = s / state.s;
      state.x = cx - (cx - state.x) * k;
      state.y = cy - (cy - state.y) * k;
      state.s = s;
      if (s === 1) { state.x = 0; state.y = 0; }
      apply();
    }
    viewports.forEach(function (vp) {
      vp.addEventListener("wheel", function (ev) {
        ev.preventDefault();
        var r = vp.getBoundingClientRect();
        zoomAt(ev.deltaY < 0 ? 1.2 : 1 / 1.2, ev.clientX - r.left, ev.clientY - r.top);
      }, { passive: false });
      var last = null;
      vp.addEventListener("pointerdown", function (ev) {
        last = [ev.clientX, ev.clientY];
        vp.setPointerCapture(ev.pointerId);
        vp.classList.add("dragging");
      });
      vp.addEventListener("pointermove", function (ev) {
        if (!last) return;
        state.x += ev.clientX - last[0];
        state.y += ev.clientY - last[1];
        last = [ev.clientX, ev.clientY];
        apply();
      });
      function end() { last = null; vp.classList.remove("dragging"); }
      vp.addEventListener("pointerup", end);
      vp.addEventListener("pointercancel", end);
    });
    function centre() { var r = viewports[0].getBoundingClientRect(); return [r.width / 2, r.height / 2]; }
    document.getElementById("zoom-in").addEventListener("click", function () { var c = centre(); zoomAt(1.25, c[0], c[1]); });
    document.getElementById("zoom-out").addEventListener("click", function () { var c = centre(); zoomAt(0.8, c[0], c[1]); });
    document.getElementById("zoom-reset").addEventListener("click", function () { state = { s: 1, x: 0, y: 0 }; apply(); });

    var lm = document.getElementById("toggle-landmarks");
    lm.addEventListener("click", function () {
      var on = root.classList.toggle("show-landmarks");
      lm.setAttribute("aria-pressed", String(on));
    });
    var over = document.getElementById("cand-crop");
    var blend = document.getElementById("blend");
    blend.addEventListener("input", function () { over.style.opacity = String(1 - blend.value / 100); });
    var flick = document.getElementById("flicker"), timer = null;
    flick.addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; over.style.visibility = "visible"; }
      else { timer = setInterval(function () { over.style.visibility = over.style.visibility === "hidden" ? "visible" : "hidden"; }, 500); }
      flick.setAttribute("aria-pressed", String(!!timer));
    });
  }

  // ---- bulk job page: live progress ----
  function initJob() {
    var job = document.getElementById("job");
    if (!job) return;
    function poll() {
      fetch(job.dataset.statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
        document.getElementById("job-status").textContent = s.status;
        document.getElementById("job-count").textContent = s.done + "/" + s.total;
        document.getElementById("job-progress").value = s.progress;
        document.getElementById("job-error").textContent = s.error || "";
        if (s.report && s.report.batch_id !== undefined) {
          document.getElementById("job-report").textContent = "enrolled " + s.report.enrolled + ", skipped " +
            s.report.skipped + ", errors " + s.report.errors + ", warnings " + s.report.warnings;
        }
        document.getElementById("job-errors-link").hidden = !s.has_error_report;
        if (s.status === "queued" || s.status === "running") setTimeout(poll, 1000);
      }).catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initProbe(); initResults(); initCompare(); initJob();
  });
})();
