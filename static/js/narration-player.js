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

  // One player for the whole narration; the segment list chooses what it plays.
  var player = document.getElementById("narration-audio");
  var current = -1;
  var playingAll = false;

  function renderNarration(narration) {
    segmentsList.innerHTML = "";
    audios = [];
    current = -1;
    if (!narration || narration.status !== "ready") {
      preparing.hidden = false;
      playAll.hidden = true;
      player.hidden = true;
      return;
    }
    preparing.hidden = true;
    (narration.segments || []).forEach(function (segment, i) {
      var item = document.createElement("li");
      item.className = "segment" + (config.highlightSpeaker && segment.speaker === config.highlightSpeaker ? " mine" : "");
      item.dataset.index = String(segment.index != null ? segment.index : i);
      var speaker = document.createElement("div");
      speaker.className = "speaker" + (/^narrator$/i.test(segment.speaker || "") ? " narrator" : "");
      speaker.textContent = segment.speaker || "Narrator";
      var line = document.createElement("p");
      line.textContent = segment.text;
      item.appendChild(speaker);
      item.appendChild(line);
      if (segment.audio_url) {
        var position = audios.length;
        item.dataset.src = segment.audio_url;
        item.classList.add("playable");
        item.tabIndex = 0;
        item.setAttribute("role", "button");
        item.setAttribute("aria-label", "Play from here: " + (segment.speaker || "Narrator"));
        var go = function () { playingAll = true; playAt(position); };
        item.addEventListener("click", go);
        item.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); go(); }
        });
        audios.push({ src: segment.audio_url, item: item });
      }
      segmentsList.appendChild(item);
    });
    playAll.hidden = audios.length === 0;
    player.hidden = audios.length === 0;
    if (audios.length) player.src = audios[0].src;
    duration.textContent = narration.total_duration_ms ? "Total length " + formatDuration(narration.total_duration_ms) : "";
  }

  function highlight(item) {
    Array.prototype.forEach.call(segmentsList.children, function (li) { li.classList.toggle("playing", li === item); });
  }

  function stop() {
    playingAll = false;
    player.pause();
    highlight(null);
    playAll.textContent = "▶ Play all";
  }

  function playAt(position) {
    if (position >= audios.length) { stop(); current = -1; return; }
    current = position;
    var entry = audios[position];
    if (player.getAttribute("src") !== entry.src) player.src = entry.src;
    player.currentTime = 0;
    highlight(entry.item);
    entry.item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    playAll.textContent = "■ Stop";
    player.play().catch(function () { if (playingAll) playAt(position + 1); });
  }

  player.addEventListener("ended", function () {
    if (playingAll) playAt(current + 1);
    else highlight(null);
  });

  playAll.addEventListener("click", function () {
    if (!player.paused) stop();
    else { playingAll = true; playAt(current >= 0 ? current : 0); }
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
