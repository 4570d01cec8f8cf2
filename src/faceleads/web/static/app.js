// faceleads web app: small, dependency-free scripts. Loaded with `defer` from 'self' only (the
// Content-Security-Policy forbids inline script). Every page works without them; they add: forms that keep what
// was typed when the server refuses, confirmations, announcements for screen readers, the face picker, the
// comparison tools and keyboard shortcuts.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function isTyping(ev) {
    var t = ev.target;
    if (!t || !t.tagName) return false;
    var tag = t.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || t.isContentEditable;
  }

  function modified(ev) { return ev.ctrlKey || ev.metaKey || ev.altKey; }

  // ---- live announcements (aria-live region in the page header) ----
  // Screen-reader announcements of what a script did (visually hidden); the server's success messages stay
  // visible as they are in the same live region.
  function announce(text, visible) {
    var region = document.getElementById("announcer");
    if (!region) return;
    region.querySelectorAll(".sr-only").forEach(function (el) { el.remove(); });
    if (visible) region.textContent = "";
    window.setTimeout(function () {
      var p = document.createElement("p");
      p.className = visible ? "flash" : "sr-only";
      p.textContent = text;
      region.appendChild(p);
    }, 60);
  }

  function labelText(input) {
    var label = input.closest("label");
    if (!label) return input.value;
    var copy = label.cloneNode(true);
    copy.querySelectorAll("kbd, input").forEach(function (el) { el.remove(); });
    return copy.textContent.trim();
  }

  function initFlash() {
    // A success message rendered with the page is re-inserted so that screen readers announce it.
    var region = document.getElementById("announcer");
    var flash = region && region.querySelector(".flash");
    if (flash) announce(flash.textContent, true);
  }

  // ---- confirmation dialog for irreversible actions ----
  function confirmAction(text, okLabel) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(text));
    document.getElementById("confirm-text").textContent = text;
    var ok = document.getElementById("confirm-ok");
    ok.textContent = okLabel || "Confirm";
    return new Promise(function (resolve) {
      function closed() {
        dialog.removeEventListener("close", closed);
        resolve(dialog.returnValue === "confirm");
      }
      dialog.addEventListener("close", closed);
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("confirm-cancel").focus();
    });
  }

  // ---- forms: submitted by script so that an error keeps everything typed ----
  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid=true]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
    });
    form.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
  }

  function errorBox(form) {
    var box = form.querySelector(".form-error");
    if (!box) {
      box = document.createElement("div");
      box.className = "form-error";
      box.setAttribute("role", "alert");
      box.id = (form.id || "form") + "-error";
      form.insertBefore(box, form.firstChild);
    }
    return box;
  }

  function showProblem(form, problem, status) {
    clearErrors(form);
    var box = errorBox(form);
    var text = (problem && problem.detail) || ("The server answered " + status + ". Nothing was changed; try again.");
    box.textContent = text;
    var first = null;
    ((problem && problem.fields) || []).forEach(function (f) {
      var el = form.elements[f.field];
      if (!el || !el.setAttribute) return;
      el.setAttribute("aria-invalid", "true");
      var note = document.createElement("p");
      note.className = "field-error";
      note.id = form.id + "-" + f.field + "-error";
      note.textContent = f.message;
      el.setAttribute("aria-describedby", note.id);
      el.insertAdjacentElement("afterend", note);
      if (!first) first = el;
    });
    if (first) { first.focus(); return; }
    box.setAttribute("tabindex", "-1");
    box.focus();
  }

  // Follow a redirect; when only the #fragment differs from the current address, reload (assigning the same
  // address with another fragment would only scroll, leaving the page as it was before the change).
  function go(url) {
    var target = new URL(url, window.location.href);
    if (target.pathname + target.search === window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", target.href);
      window.location.reload();
    } else {
      window.location.assign(target.href);
    }
  }

  function submitByScript(form, submitter) {
    var data = submitter ? new FormData(form, submitter) : new FormData(form);
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    buttons.forEach(function (b) { b.disabled = true; });
    form.setAttribute("aria-busy", "true");
    var slow = window.setTimeout(function () { announce("Working…"); }, 1500);
    fetch(form.getAttribute("action") || window.location.pathname, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrfToken(), "Accept": "application/json" }
    }).then(function (resp) {
      var type = resp.headers.get("content-type") || "";
      if (type.indexOf("json") >= 0) {
        return resp.json().then(function (body) { return { resp: resp, body: body }; });
      }
      return resp.text().then(function (text) { return { resp: resp, html: text }; });
    }).then(function (res) {
      window.clearTimeout(slow);
      if (res.body && res.body.redirect) { go(res.body.redirect); return; }
      if (res.html !== undefined && res.resp.ok) {
        // A page answered in place (e.g. recovery codes shown once): show it as the new document.
        document.open(); document.write(res.html); document.close(); return;
      }
      buttons.forEach(function (b) { b.disabled = false; });
      form.removeAttribute("aria-busy");
      if (res.resp.status === 401 && res.body && res.body.redirect) { go(res.body.redirect); return; }
      showProblem(form, res.body, res.resp.status);
    }).catch(function () {
      window.clearTimeout(slow);
      buttons.forEach(function (b) { b.disabled = false; });
      form.removeAttribute("aria-busy");
      showProblem(form, { detail: "Could not reach the server: check the connection and try again. Nothing you typed was lost." }, 0);
    });
  }

  function initForms() {
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      // A form with its own script (live alert decisions, recorded without leaving the page) is left to it.
      if (form.hasAttribute("data-own-script")) return;
      form.addEventListener("submit", function (ev) {
        var submitter = ev.submitter || null;
        var message = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
        var plain = form.hasAttribute("data-plain");
        if (!message && plain) return;
        ev.preventDefault();
        var go = function () {
          if (plain) { if (submitter && submitter.name) { var h = document.createElement("input"); h.type = "hidden"; h.name = submitter.name; h.value = submitter.value; form.appendChild(h); } form.submit(); }
          else submitByScript(form, submitter);
        };
        if (message) {
          confirmAction(message, (submitter && submitter.dataset.confirmLabel) || form.dataset.confirmLabel).then(function (yes) {
            if (yes) go();
          });
        } else go();
      });
    });
  }

  // ---- face picker (probe page and quick search): click a box or a thumbnail to choose the face ----
  function thumbnail(img, box, size) {
    var canvas = document.createElement("canvas");
    canvas.width = size; canvas.height = size;
    canvas.setAttribute("aria-hidden", "true");
    var w = box[2] - box[0], h = box[3] - box[1], side = Math.max(w, h) * 1.5;
    var cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
    var sx = img.naturalWidth / (img.dataset.boxWidth ? parseFloat(img.dataset.boxWidth) : img.naturalWidth);
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#222"; ctx.fillRect(0, 0, size, size);
    try { ctx.drawImage(img, (cx - side / 2) * sx, (cy - side / 2) * sx, side * sx, side * sx, 0, 0, size, size); }
    catch (e) { /* an image that cannot be drawn leaves the grey square */ }
    return canvas;
  }

  function addThumbnails(img, buttons) {
    function draw() {
      buttons.forEach(function (btn) {
        if (btn.querySelector("canvas")) return;
        var box = (btn.dataset.box || "").split(",").map(parseFloat);
        if (box.length === 4 && box.every(isFinite)) btn.insertBefore(thumbnail(img, box, 96), btn.firstChild);
      });
    }
    if (img.complete && img.naturalWidth) draw(); else img.addEventListener("load", draw);
  }

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
    var picks = Array.prototype.slice.call(document.querySelectorAll("#face-form .face-pick:not(.low)"));
    addThumbnails(img, picks);
    var lowFaces = document.querySelector("#face-form details.low-faces");
    if (lowFaces) {
      var showLow = function () {
        stage.classList.toggle("show-low", lowFaces.open);
        if (lowFaces.open) addThumbnails(img, Array.prototype.slice.call(lowFaces.querySelectorAll(".face-pick")));
      };
      lowFaces.addEventListener("toggle", showLow);
      showLow();
    }
    svg.querySelectorAll(".face[data-face]").forEach(function (g) {
      g.addEventListener("click", function () {
        if (drawing) return;
        var btn = document.querySelector('#face-form .face-pick[value="' + g.dataset.face + '"]');
        if (btn) btn.click();
      });
    });

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
          var status = document.getElementById("preview-status");
          if (status) status.textContent = "Previewing unsaved edits: face boxes are hidden until you save.";
        }, 250);
      });
    }

    // Draw a box around a face the detector missed.
    var drawing = false, start = null;
    var draft = document.getElementById("draft-box");
    var drawBtn = document.getElementById("draw-box");
    var status = document.getElementById("draw-status");
    if (!drawBtn) return;
    function say(text) { status.textContent = text; }
    function toImage(ev) {
      var r = stage.getBoundingClientRect();
      return [(ev.clientX - r.left) * naturalW / r.width, (ev.clientY - r.top) * naturalH / r.height];
    }
    drawBtn.addEventListener("click", function () {
      drawing = !drawing;
      stage.classList.toggle("drawing", drawing);
      drawBtn.setAttribute("aria-pressed", String(drawing));
      say(drawing ? "Drag a box around the whole face on the image (forehead to chin)." : "");
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
      var w = Math.round(box[2] - box[0]), h = Math.round(box[3] - box[1]);
      if (w < 20 || h < 20) {
        say("The box is " + w + " × " + h + " pixels: too small to hold a face. Drag a larger box around the whole face.");
        return;
      }
      say("Looking for a face in the " + w + " × " + h + " box…");
      fetch(drawBtn.dataset.endpoint, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), "X-Requested-With": "fetch" },
        body: JSON.stringify({ box: box })
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) { return { resp: resp, body: body }; });
      }).then(function (res) {
        if (res.resp.ok) { window.location.reload(); return; }
        var why = res.body.detail || "";
        if (res.resp.status === 422) say("No face was found in that box. " + why + " Try a box a little larger than the face, or enhance the image first.");
        else if (res.resp.status === 403) say("Not allowed: " + why);
        else if (res.resp.status === 401) say("Your session has ended: sign in again (the box is not saved).");
        else say("The box could not be used (" + res.resp.status + "): " + (why || "try again."));
      }).catch(function () { say("Could not reach the server, so the box was not used: check the connection and draw it again."); });
    });
  }

  // Quick search: detect the faces of the chosen photo and pick one the same way as on the probe page.
  function initQuickPicker() {
    var form = document.getElementById("quick-search");
    var input = form && form.querySelector("input[name=probe]");
    var holder = document.getElementById("quick-picker");
    if (!form || !input || !holder) return;
    var faceInput = form.querySelector("input[name=face]");
    var numberLabel = document.getElementById("face-number-label");
    var status = document.getElementById("quick-picker-status");
    input.addEventListener("change", function () {
      holder.innerHTML = "";
      if (!input.files || !input.files.length) return;
      var file = input.files[0];
      var data = new FormData();
      data.append("image", file);
      status.textContent = "Finding the faces in " + file.name + "…";
      fetch(holder.dataset.endpoint, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken(), "X-Requested-With": "fetch" }
      }).then(function (resp) {
        return resp.json().then(function (body) { return { resp: resp, body: body }; });
      }).then(function (res) {
        if (!res.resp.ok) { status.textContent = res.body.detail || "The photo could not be read."; return; }
        var faces = res.body.faces || [];
        if (!faces.length) { status.textContent = "No face found in this photo: add it to a case and draw a box around the face instead."; return; }
        buildPicker(file, faces, res.body.width, res.body.height);
        status.textContent = faces.length === 1 ? "One face found and chosen." : faces.length + " faces found: click the one to search.";
      }).catch(function () { status.textContent = "Could not reach the server to find the faces."; });
    });

    function buildPicker(file, faces, width, height) {
      var floor = parseFloat(holder.dataset.floor || "0");
      var url = URL.createObjectURL(file);
      var stage = document.createElement("div");
      stage.className = "probe-stage";
      var img = document.createElement("img");
      img.alt = "the photo to search, with its faces boxed";
      img.src = url;
      img.dataset.boxWidth = String(width);
      stage.appendChild(img);
      var ns = "http://www.w3.org/2000/svg";
      var svg = document.createElementNS(ns, "svg");
      svg.setAttribute("class", "boxes");
      svg.setAttribute("viewBox", "0 0 " + width + " " + height);
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("aria-hidden", "true");
      var list = document.createElement("ul");
      list.className = "face-picker";
      var lowList = document.createElement("ul");
      lowList.className = "face-picker";
      var font = Math.max(14, Math.round(Math.max(width, height) / 45));
      faces.forEach(function (f) {
        var q = f.quality && f.quality.overall !== undefined ? f.quality.overall : 0;
        var isLow = q < floor;
        var g = document.createElementNS(ns, "g");
        g.setAttribute("class", isLow ? "face low" : "face");
        var r = document.createElementNS(ns, "rect");
        r.setAttribute("x", f.box[0]); r.setAttribute("y", f.box[1]);
        r.setAttribute("width", f.box[2] - f.box[0]); r.setAttribute("height", f.box[3] - f.box[1]);
        var tag = document.createElementNS(ns, "rect");
        tag.setAttribute("class", "tag"); tag.setAttribute("x", f.box[0]); tag.setAttribute("y", Math.max(0, f.box[1] - font * 1.3));
        tag.setAttribute("width", font * 1.6); tag.setAttribute("height", font * 1.3);
        var t = document.createElementNS(ns, "text");
        t.setAttribute("x", f.box[0] + font * 0.3); t.setAttribute("y", Math.max(font, f.box[1] - font * 0.3));
        t.setAttribute("font-size", font);
        t.textContent = String(f.number);
        g.appendChild(r); g.appendChild(tag); g.appendChild(t);
        svg.appendChild(g);
        var li = document.createElement("li");
        var btn = document.createElement("button");
        btn.type = "button";
        btn.className = isLow ? "face-pick low" : "face-pick";
        btn.dataset.box = f.box.join(",");
        btn.dataset.face = String(f.number);
        btn.setAttribute("aria-pressed", "false");
        var label = document.createElement("span");
        label.className = "q";
        label.textContent = "Face " + f.number + " · quality " + q.toFixed(2) + (isLow ? " (below the floor)" : "");
        btn.appendChild(label);
        btn.addEventListener("click", function () { choose(f.number); });
        g.addEventListener("click", function () { choose(f.number); });
        li.appendChild(btn);
        (isLow ? lowList : list).appendChild(li);
      });
      stage.appendChild(svg);
      holder.appendChild(stage);
      holder.appendChild(list);
      if (lowList.children.length) {
        var details = document.createElement("details");
        details.className = "low-faces";
        var summary = document.createElement("summary");
        summary.textContent = lowList.children.length + " more face(s) below the quality floor (shown on the image while open)";
        details.appendChild(summary);
        details.appendChild(lowList);
        details.open = !list.children.length;
        var toggleLow = function () {
          stage.classList.toggle("show-low", details.open);
          if (details.open) addThumbnails(img, Array.prototype.slice.call(lowList.querySelectorAll(".face-pick")));
        };
        details.addEventListener("toggle", toggleLow);
        holder.appendChild(details);
        toggleLow();
      }
      addThumbnails(img, Array.prototype.slice.call(list.querySelectorAll(".face-pick")));
      function choose(n) {
        faceInput.value = String(n);
        holder.querySelectorAll(".face-pick").forEach(function (b) {
          var on = b.dataset.face === String(n);
          b.classList.toggle("chosen", on);
          b.setAttribute("aria-pressed", String(on));
        });
        svg.querySelectorAll(".face").forEach(function (g, i) { g.classList.toggle("chosen", i + 1 === n); });
        announce("Face " + n + " chosen.");
      }
      if (numberLabel) numberLabel.hidden = true;
      faceInput.value = "";
      if (faces.length === 1 || (list.children.length === 1 && faces[0].quality && faces[0].quality.overall >= floor)) choose(1);
    }
    form.addEventListener("submit", function (ev) {
      if (faceInput.value === "" && holder.querySelector(".face-pick")) {
        ev.preventDefault(); ev.stopImmediatePropagation();
        status.textContent = "Choose the face to search: click its box or its thumbnail.";
        holder.querySelector(".face-pick").focus();
      }
    }, true);
  }

  // ---- candidate grid: display-only score filter, keyboard moves between candidates ----
  function initResults() {
    document.querySelectorAll(".scorebar .fill[data-width]").forEach(function (el) { el.style.width = el.dataset.width + "%"; });
    document.querySelectorAll(".scorebar .threshold[data-left]").forEach(function (el) { el.style.left = el.dataset.left + "%"; });
    var floor = document.getElementById("score-floor");
    var cards = Array.prototype.slice.call(document.querySelectorAll(".candidate"));
    if (floor) {
      var out = document.getElementById("score-floor-out"), count = document.getElementById("shown-count");
      var apply = function () {
        var min = parseFloat(floor.value), shown = 0;
        cards.forEach(function (card) {
          var hide = parseFloat(card.dataset.score) < min;
          card.classList.toggle("hidden", hide);
          if (!hide) shown += 1;
        });
        out.textContent = min <= -0.2 ? "none" : min.toFixed(2);
        count.textContent = shown + " of " + cards.length + " candidates shown";
      };
      floor.addEventListener("input", apply);
      floor.addEventListener("change", function () { announce(count.textContent); });
      apply();
    }
    if (!document.getElementById("candidates")) return;
    document.addEventListener("keydown", function (ev) {
      if (isTyping(ev) || modified(ev)) return;
      var links = cards.filter(function (c) { return !c.classList.contains("hidden"); }).map(function (c) { return c.querySelector("a"); });
      var i = links.indexOf(document.activeElement);
      if (ev.key === "j" || ev.key === "k") {
        ev.preventDefault();
        var next = ev.key === "j" ? Math.min(links.length - 1, i + 1) : Math.max(0, i - 1);
        if (links[next]) links[next].focus();
      } else if (ev.key === "/" && floor) { ev.preventDefault(); floor.focus(); }
      else if (ev.key === "e") {
        var reason = document.querySelector("#exclude-form select[name=reason_code]");
        if (reason) { ev.preventDefault(); reason.focus(); }
      }
    });
  }

  // ---- comparison: aligned crops or full-resolution originals, linked zoom and pan (mouse and keyboard),
  //      landmarks, blend, wipe, flicker, brightness and contrast per side, filmstrip of the candidate's photos ----
  function parseJSON(text, fallback) { try { return text ? JSON.parse(text) : fallback; } catch (e) { return fallback; } }

  function drawLandmarks(svg, points) {
    if (!svg) return;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var ns = "http://www.w3.org/2000/svg";
    var vb = (svg.getAttribute("viewBox") || "0 0 384 384").split(" ").map(parseFloat);
    var r = Math.max(3, Math.max(vb[2], vb[3]) / 110);
    (points || []).forEach(function (p) {
      var c = document.createElementNS(ns, "circle");
      c.setAttribute("cx", p[0]); c.setAttribute("cy", p[1]); c.setAttribute("r", r);
      svg.appendChild(c);
    });
  }

  function initCompare() {
    var root = document.getElementById("compare");
    if (!root) return;
    var layers = root.querySelectorAll(".layer");
    var viewports = root.querySelectorAll(".viewport");
    var state = { s: 1, x: 0, y: 0 };
    var probe = parseJSON(root.dataset.probe, {});
    var cand = parseJSON(root.dataset.candidate, {});
    var probeCropSvg = root.querySelector('[data-pane=probe] svg.landmarks.crop');
    var candCropSvg = root.querySelector('[data-pane=candidate] svg.landmarks.crop');
    var probeOrig = document.getElementById("probe-orig"), candOrig = document.getElementById("cand-orig");
    var probeOrigSvg = root.querySelector('[data-pane=probe] svg.landmarks.orig');
    var candOrigSvg = root.querySelector('[data-pane=candidate] svg.landmarks.orig');
    var over = document.getElementById("cand-crop");
    drawLandmarks(probeCropSvg, probe.landmarks);
    drawLandmarks(candCropSvg, cand.landmarks);

    function apply() {
      layers.forEach(function (l) {
        l.style.transform = "translate(" + state.x + "px," + state.y + "px) scale(" + state.s + ")";
      });
    }
    function zoomAt(factor, cx, cy) {
      var s = Math.min(16, Math.max(1, state.s * factor));
      var k = s / state.s;
      state.x = cx - (cx - state.x) * k;
      state.y = cy - (cy - state.y) * k;
      state.s = s;
      if (s === 1) { state.x = 0; state.y = 0; }
      apply();
    }
    function pan(dx, dy) { state.x += dx; state.y += dy; apply(); }
    function reset() { state = { s: 1, x: 0, y: 0 }; apply(); }
    function centre() { var r = viewports[0].getBoundingClientRect(); return [r.width / 2, r.height / 2]; }
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
        pan(ev.clientX - last[0], ev.clientY - last[1]);
        last = [ev.clientX, ev.clientY];
      });
      function end() { last = null; vp.classList.remove("dragging"); }
      vp.addEventListener("pointerup", end);
      vp.addEventListener("pointercancel", end);
      vp.addEventListener("keydown", function (ev) {
        var step = ev.shiftKey ? 96 : 24, c = centre();
        var keys = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
        if (keys[ev.key]) { ev.preventDefault(); pan(keys[ev.key][0], keys[ev.key][1]); }
        else if (ev.key === "+" || ev.key === "=") { ev.preventDefault(); zoomAt(1.25, c[0], c[1]); }
        else if (ev.key === "-" || ev.key === "_") { ev.preventDefault(); zoomAt(0.8, c[0], c[1]); }
        else if (ev.key === "0") { ev.preventDefault(); reset(); }
      });
    });
    document.getElementById("zoom-in").addEventListener("click", function () { var c = centre(); zoomAt(1.25, c[0], c[1]); });
    document.getElementById("zoom-out").addEventListener("click", function () { var c = centre(); zoomAt(0.8, c[0], c[1]); });
    document.getElementById("zoom-reset").addEventListener("click", reset);

    function toggle(button, cls, on) {
      var value = root.classList.toggle(cls, on);
      if (button) button.setAttribute("aria-pressed", String(value));
      return value;
    }
    var lm = document.getElementById("toggle-landmarks");
    lm.addEventListener("click", function () { toggle(lm, "show-landmarks"); });

    // Full-resolution originals: each image placed so that its face box fills the middle of the viewport, at
    // the same size in both panes, then zoomed and panned together like the crops.
    function placeOriginal(img, svg, info) {
      if (!img || !info || !info.box || !img.naturalWidth) return;
      var v = viewports[0].getBoundingClientRect().width;
      var w = img.naturalWidth, h = img.naturalHeight, b = info.box;
      var ref = info.width || w;  // the box is in the pixels of an image of this width
      var k = w / ref;
      var side = Math.max(b[2] - b[0], b[3] - b[1]) * k;
      var s0 = v / (2 * side);
      var cx = (b[0] + b[2]) / 2 * k, cy = (b[1] + b[3]) / 2 * k;
      [img, svg].forEach(function (el) {
        if (!el) return;
        el.style.width = (w * s0) + "px"; el.style.height = (h * s0) + "px";
        el.style.left = (v / 2 - cx * s0) + "px"; el.style.top = (v / 2 - cy * s0) + "px";
      });
      if (svg) {
        svg.setAttribute("viewBox", "0 0 " + w + " " + h);
        drawLandmarks(svg, (info.landmarks_original || []).map(function (p) { return [p[0] * k, p[1] * k]; }));
      }
    }
    function loadOriginal(img, svg, info) {
      if (!img || !info.orig) return;
      if (img.getAttribute("src") !== info.orig) {
        img.addEventListener("load", function once() { img.removeEventListener("load", once); placeOriginal(img, svg, info); });
        img.setAttribute("src", info.orig);
      } else placeOriginal(img, svg, info);
    }
    var origBtn = document.getElementById("toggle-originals");
    var mixers = [document.getElementById("blend"), document.getElementById("wipe"), document.getElementById("flicker")];
    if (origBtn) origBtn.addEventListener("click", function () {
      var on = toggle(origBtn, "originals");
      if (on) { loadOriginal(probeOrig, probeOrigSvg, probe); loadOriginal(candOrig, candOrigSvg, cand); }
      mixers.forEach(function (m) { if (m) m.disabled = on; });
      announce(on ? "Showing the full-resolution images, framed on each face." : "Showing the aligned crops.");
    });
    window.addEventListener("resize", function () {
      if (root.classList.contains("originals")) { placeOriginal(probeOrig, probeOrigSvg, probe); placeOriginal(candOrig, candOrigSvg, cand); }
    });

    // Blend, wipe (split) and flicker overlay the candidate on the probe in the right-hand pane.
    var blend = document.getElementById("blend"), wipe = document.getElementById("wipe");
    var wipeLine = root.querySelector(".wipe-line");
    function mix() {
      var b = blend ? blend.value / 100 : 0, w = wipe ? parseFloat(wipe.value) : 0;
      over.style.opacity = String(1 - b);
      over.style.clipPath = w > 0 ? "inset(0 0 0 " + w + "%)" : "";
      root.classList.toggle("wiping", w > 0);
      if (wipeLine) wipeLine.style.left = w + "%";
    }
    if (blend) blend.addEventListener("input", mix);
    if (wipe) wipe.addEventListener("input", mix);
    var flick = document.getElementById("flicker"), timer = null;
    function flicker() {
      if (timer) { clearInterval(timer); timer = null; over.style.visibility = "visible"; }
      else { timer = setInterval(function () { over.style.visibility = over.style.visibility === "hidden" ? "visible" : "hidden"; }, 500); }
      flick.setAttribute("aria-pressed", String(!!timer));
    }
    if (flick) flick.addEventListener("click", flicker);

    // Brightness and contrast per side (display only: the evidence and the search are not changed).
    function adjust(side) {
      var b = document.getElementById(side + "-brightness"), c = document.getElementById(side + "-contrast");
      if (!b || !c) return;
      var f = function () {
        var filter = "brightness(" + b.value / 100 + ") contrast(" + c.value / 100 + ")";
        root.querySelectorAll("img[data-side=" + side + "]").forEach(function (img) { img.style.filter = filter; });
      };
      b.addEventListener("input", f); c.addEventListener("input", f);
    }
    adjust("probe"); adjust("cand");
    var resetLook = document.getElementById("reset-adjust");
    if (resetLook) resetLook.addEventListener("click", function () {
      ["probe", "cand"].forEach(function (side) {
        var b = document.getElementById(side + "-brightness"), c = document.getElementById(side + "-contrast");
        if (b) { b.value = 100; b.dispatchEvent(new Event("input")); }
        if (c) { c.value = 100; c.dispatchEvent(new Event("input")); }
      });
    });

    // Filmstrip: every held photo of the candidate, newest booking first; choosing one shows it in the pane.
    var caption = document.getElementById("cand-caption");
    document.querySelectorAll("#filmstrip button[data-crop]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        document.querySelectorAll("#filmstrip button").forEach(function (b) { b.setAttribute("aria-pressed", String(b === btn)); });
        cand = parseJSON(btn.dataset.info, {});
        over.setAttribute("src", btn.dataset.crop);
        drawLandmarks(candCropSvg, cand.landmarks);
        if (caption) caption.textContent = btn.dataset.caption;
        if (root.classList.contains("originals")) loadOriginal(candOrig, candOrigSvg, cand);
        announce("Candidate photo of " + btn.dataset.date + " shown.");
      });
    });

    // Keyboard shortcuts (not while typing): see the list on the page.
    var help = document.getElementById("shortcuts");
    document.addEventListener("keydown", function (ev) {
      if (isTyping(ev) || modified(ev) || ev.target.classList.contains("viewport")) return;
      var radio = function (value) {
        var el = document.querySelector('input[name=conclusion][value="' + value + '"], input[name=result][value="' + value + '"]');
        if (el && !el.disabled) { ev.preventDefault(); el.checked = true; el.dispatchEvent(new Event("change", { bubbles: true })); el.focus(); announce(labelText(el) + " chosen."); }
      };
      var link = function (rel) { var a = document.querySelector("a[rel=" + rel + "]"); if (a) { ev.preventDefault(); a.click(); } };
      var click = function (id) { var b = document.getElementById(id); if (b && !b.disabled) { ev.preventDefault(); b.click(); } };
      switch (ev.key) {
        case "p": radio("possible_lead"); break;
        case "x": radio("excluded"); break;
        case "i": radio("inconclusive"); break;
        case "n": link("next"); break;
        case "b": link("prev"); break;
        case "l": click("toggle-landmarks"); break;
        case "o": click("toggle-originals"); break;
        case "f": click("flicker"); break;
        case "z": ev.preventDefault(); viewports[0].focus(); break;
        case "?": if (help) { ev.preventDefault(); help.open = !help.open; } break;
      }
    });
    document.querySelectorAll("form.conclusion").forEach(function (form) {
      form.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
      });
    });
  }

  // The scene: the probe as searched with the searched face boxed (the box is in the image's own pixels).
  function initScenes() {
    document.querySelectorAll(".scene").forEach(function (scene) {
      var img = scene.querySelector("img"), svg = scene.querySelector("svg");
      function fit() { if (img.naturalWidth) svg.setAttribute("viewBox", "0 0 " + img.naturalWidth + " " + img.naturalHeight); }
      if (img.complete) fit(); else img.addEventListener("load", fit);
    });
  }

  // Reason codes follow the conclusion chosen.
  function initReasons() {
    document.querySelectorAll("select[data-reasons]").forEach(function (select) {
      var form = select.form, all = parseJSON(select.dataset.reasons, {});
      var current = select.value;
      function fill() {
        var checked = form.querySelector("input[name=conclusion]:checked, input[name=result]:checked");
        var options = checked ? (all[checked.value] || []) : [];
        select.innerHTML = "";
        var blank = document.createElement("option");
        blank.value = ""; blank.textContent = checked ? "— choose a reason —" : "— choose a conclusion first —";
        select.appendChild(blank);
        options.forEach(function (o) {
          var opt = document.createElement("option");
          opt.value = o[0]; opt.textContent = o[1];
          if (o[0] === current) opt.selected = true;
          select.appendChild(opt);
        });
      }
      form.querySelectorAll("input[name=conclusion], input[name=result]").forEach(function (r) {
        r.addEventListener("change", function () { current = select.value; fill(); });
      });
      fill();
    });
  }

  // ---- bulk job page: live progress ----
  function initJob() {
    var job = document.getElementById("job");
    if (!job) return;
    var lastStatus = null;
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
        if (s.status !== lastStatus && (s.status === "done" || s.status === "failed")) announce("Bulk job " + s.status + ".");
        lastStatus = s.status;
        if (s.status === "queued" || s.status === "running") setTimeout(poll, 1000);
      }).catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initFlash(); initForms(); initProbe(); initQuickPicker(); initResults(); initCompare(); initScenes();
    initReasons(); initJob();
  });
})();
