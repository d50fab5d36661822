/* The invitation landing page: accept/decline through the token API and play the narration. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("player-config").textContent);
  var segmentsList = document.getElementById("segments");
  var preparing = document.getElementById("narration-preparing");
  var preparingText = document.getElementById("preparing-text");
  var playAll = document.getElementById("play-all");
  var duration = document.getElementById("narration-duration");
  var actions = document.getElementById("invite-actions");
  var acceptButton = document.getElementById("accept-button");
  var declineButton = document.getElementById("decline-button");
  var errorBox = document.getElementById("action-error");
  var audios = [];

  function formatDuration(ms) {
    var seconds = Math.round((ms || 0) / 1000);
    var minutes = Math.floor(seconds / 60);
    return minutes + ":" + String(seconds % 60).padStart(2, "0");
  }

  function renderNarration(narration) {
    segmentsList.innerHTML = "";
    audios = [];
    if (!narration || narration.status !== "ready") {
      preparing.hidden = false;
      playAll.hidden = true;
      return;
    }
    preparing.hidden = true;
    (narration.segments || []).forEach(function (segment, i) {
      var item = document.createElement("li");
      item.className = "segment";
      item.dataset.index = String(segment.index != null ? segment.index : i);
      var speaker = document.createElement("div");
      speaker.className = "speaker" + (/^narrator$/i.test(segment.speaker || "") ? " narrator" : "");
      speaker.textContent = segment.speaker || "Narrator";
      var line = document.createElement("p");
      line.textContent = segment.text;
      item.appendChild(speaker);
      item.appendChild(line);
      if (segment.audio_url) {
        var audio = document.createElement("audio");
        audio.controls = true;
        audio.preload = "none";
        audio.src = segment.audio_url;
        audio.addEventListener("play", function () { highlight(item); });
        item.appendChild(audio);
        audios.push({ audio: audio, item: item });
      }
      segmentsList.appendChild(item);
    });
    playAll.hidden = audios.length === 0;
    duration.textContent = narration.total_duration_ms ? "Total length " + formatDuration(narration.total_duration_ms) : "";
  }

  function highlight(item) {
    Array.prototype.forEach.call(segmentsList.children, function (li) { li.classList.toggle("playing", li === item); });
  }

  function playFrom(position) {
    if (position >= audios.length) {
      highlight(null);
      playAll.textContent = "▶ Play all";
      return;
    }
    var entry = audios[position];
    audios.forEach(function (other) { if (other !== entry) other.audio.pause(); });
    entry.audio.currentTime = 0;
    entry.audio.onended = function () { entry.audio.onended = null; playFrom(position + 1); };
    entry.item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    playAll.textContent = "■ Stop";
    entry.audio.play().catch(function () { playFrom(position + 1); });
  }

  playAll.addEventListener("click", function () {
    var playing = audios.some(function (e) { return !e.audio.paused; });
    if (playing) {
      audios.forEach(function (e) { e.audio.onended = null; e.audio.pause(); });
      highlight(null);
      playAll.textContent = "▶ Play all";
    } else {
      playFrom(0);
    }
  });

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function post(url) {
    return fetch(url, { method: "POST", headers: { "Accept": "application/json" }, credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
      });
  }

  function setBusy(busy) {
    acceptButton.disabled = busy;
    declineButton.disabled = busy;
  }

  acceptButton.addEventListener("click", function () {
    showError("");
    setBusy(true);
    acceptButton.textContent = "Preparing your narration…";
    if (preparing.hidden === false) preparingText.textContent = "Preparing your narration…";
    post(config.acceptUrl).then(function (result) {
      if (result.ok) {
        actions.hidden = true;
        document.getElementById("accepted-banner").hidden = false;
        renderNarration(result.body.narration);
      } else {
        showError(result.body.detail || "Something went wrong. Please try again.");
      }
    }).catch(function () {
      showError("Network error. Please try again.");
    }).then(function () {
      setBusy(false);
      acceptButton.textContent = "Accept and listen";
    });
  });

  declineButton.addEventListener("click", function () {
    showError("");
    setBusy(true);
    post(config.declineUrl).then(function (result) {
      if (result.ok) {
        actions.hidden = true;
        document.getElementById("declined-banner").hidden = false;
      } else {
        showError(result.body.detail || "Something went wrong. Please try again.");
      }
    }).catch(function () {
      showError("Network error. Please try again.");
    }).then(function () { setBusy(false); });
  });

  renderNarration(config.narration);
})();
