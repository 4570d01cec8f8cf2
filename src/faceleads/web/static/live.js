// Live deployments: the alert stream (server-sent events from our own server) and the expected-rate hint.
// Our own code, no library; loaded from 'self' (the Content-Security-Policy forbids inline script).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function fillCard(card, a) {
    card.id = "alert-" + a.id;
    card.dataset.alert = a.id;
    card.querySelector(".alert-subject").textContent = a.subject_number;
    card.querySelector(".alert-reason").textContent = a.reason;
    card.querySelector(".alert-score").textContent = "score " + Number(a.score).toFixed(3);
    card.querySelector(".alert-time").textContent = (a.seen_at || "").slice(11, 19) + " UTC";
    card.querySelector(".alert-camera").textContent = a.camera;
    if (a.capture_url) card.querySelector(".alert-capture").src = a.capture_url;
    if (a.watchlist_photo_url) card.querySelector(".alert-photo").src = a.watchlist_photo_url;
    var form = card.querySelector("form.alert-decision");
    if (form) form.action = "/live/alerts/" + a.id + "/decision";
  }

  function bindDecision(form) {
    // Record the decision without leaving the page (the stream keeps running); plain form post without script.
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var card = form.closest(".alert-card");
      fetch(form.action, {
        method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)),
        headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() }
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).then(function (res) {
        var out = card.querySelector(".alert-decided");
        if (res.ok) {
          out.textContent = "Decision: " + res.body.decision + " by " + res.body.decided_by;
          form.remove();
          card.classList.remove("new");
        } else {
          out.textContent = (res.body && res.body.detail) || "The decision was not recorded.";
          out.classList.add("error");
        }
      });
    });
  }

  function initAlerts() {
    var box = document.getElementById("alerts");
    if (!box || !window.EventSource) return;
    box.querySelectorAll("form.alert-decision").forEach(bindDecision);
    var template = document.getElementById("alert-template");
    var status = document.getElementById("live-status");
    var source = new EventSource(box.dataset.stream);
    source.addEventListener("alert", function (ev) {
      var a = JSON.parse(ev.data);
      if (document.getElementById("alert-" + a.id)) return;
      var empty = document.getElementById("no-alerts");
      if (empty) empty.remove();
      var card = template.content.firstElementChild.cloneNode(true);
      fillCard(card, a);
      card.classList.add("new");
      box.insertBefore(card, box.firstChild);
      bindDecision(card.querySelector("form.alert-decision"));
    });
    source.addEventListener("status", function (ev) {
      var s = JSON.parse(ev.data);
      status.dataset.status = s.status;
      status.textContent = "Deployment " + s.status + " · frames " + s.frames_processed + " (dropped " +
        s.frames_dropped + ") · faces passing " + s.tracks + " · alerts " + s.alerts + " · until " +
        s.end_at.slice(11, 19) + " UTC";
    });
    source.addEventListener("end", function () {
      source.close();
      status.textContent += " · stream closed";
    });
  }

  function initExpectedRate() {
    var choice = document.getElementById("watchlist-choice");
    var input = document.getElementById("threshold-input");
    var out = document.getElementById("expected-rate");
    if (!choice || !input || !out) return;
    var timer = null;
    function update() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var url = "/live/watchlists/" + encodeURIComponent(choice.value) + "/expected-rate?threshold=" +
          encodeURIComponent(input.value);
        fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            out.textContent = body.sentence ? "Expected false alert rate: " + body.sentence :
              (body.detail || "No calibration is stored for your agency: run `faceleads evaluate calibrate --save`.");
          });
      }, 250);
    }
    choice.addEventListener("change", update);
    input.addEventListener("input", update);
    if (choice.value) update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initAlerts();
    initExpectedRate();
  });
})();
