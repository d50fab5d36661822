// The template editor's behaviour: language tabs, the live preview and the test send.
// Rendering happens on the server (the engine's own code); this file only sends the form and
// shows the answer, always as text — the email HTML goes into a sandboxed frame that runs nothing.
(function () {
  "use strict";
  var root = document.getElementById("template-editor");
  if (!root) { return; }
  var form = document.getElementById("template-form");
  var localeInput = document.getElementById("preview-locale");
  var channelsBox = document.getElementById("preview-channels");
  var errorsBox = document.getElementById("preview-errors");
  var stateLabel = document.getElementById("preview-state");
  var resultBox = document.getElementById("test-send-result");
  var timer = null;
  var sequence = 0;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function showErrors(list) {
    errorsBox.replaceChildren();
    (list || []).forEach(function (message) { errorsBox.appendChild(el("li", "", message)); });
    errorsBox.hidden = !list || !list.length;
  }

  function card(entry) {
    var box = el("section", "tpl-preview-card");
    box.dataset.previewChannel = entry.channel;
    box.appendChild(el("h3", "", entry.channel + " · " + entry.locale));
    if (entry.subject) { box.appendChild(el("div", "tpl-subject", entry.subject)); }
    if (entry.title && entry.title !== entry.subject) { box.appendChild(el("div", "tpl-subject", entry.title)); }
    if (entry.body) { box.appendChild(el("pre", "tpl-body", entry.body)); }
    if (entry.sms) {
      var sms = entry.sms;
      var line = el("div", "tpl-segments" + (sms.segments > 1 ? " is-multi" : ""),
        sms.segments + (sms.segments === 1 ? " segment" : " segments") + " · " + sms.encoding + " · " + sms.characters + " characters");
      line.dataset.segments = String(sms.segments);
      box.appendChild(line);
    }
    if (entry.body_html) {
      var frame = document.createElement("iframe");
      frame.setAttribute("sandbox", "");
      frame.setAttribute("title", "Email HTML preview");
      frame.setAttribute("referrerpolicy", "no-referrer");
      frame.srcdoc = entry.body_html;
      box.appendChild(frame);
    }
    if (entry.action_label || entry.action_url) {
      box.appendChild(el("div", "tpl-muted", "Button: " + (entry.action_label || "—") + " → " + (entry.action_url || "—")));
    }
    return box;
  }

  function post(url, extra) {
    var body = new FormData(form);
    Object.keys(extra || {}).forEach(function (key) { body.set(key, extra[key]); });
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; },
          function () { return { ok: false, data: { errors: ["The server answered " + response.status + "."] } }; });
      });
  }

  function refresh() {
    var mine = ++sequence;
    stateLabel.textContent = "updating…";
    post(root.dataset.previewUrl).then(function (answer) {
      if (mine !== sequence) { return; }  // a newer keystroke already asked again
      if (!answer.ok) {
        showErrors(answer.data.errors);
        stateLabel.textContent = "not updated";
        return;
      }
      showErrors([]);
      channelsBox.replaceChildren.apply(channelsBox, answer.data.channels.map(card));
      stateLabel.textContent = "up to date";
      root.dataset.previewed = String(mine);
    }).catch(function () { stateLabel.textContent = "offline"; });
  }

  function schedule() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 300);
  }

  function selectLocale(code) {
    root.querySelectorAll("[data-locale-tab]").forEach(function (tab) {
      var active = tab.dataset.localeTab === code;
      tab.classList.toggle("is-active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
    });
    root.querySelectorAll("[data-locale-panel]").forEach(function (panel) {
      panel.hidden = panel.dataset.localePanel !== code;
    });
    localeInput.value = code;
    refresh();
  }

  root.querySelectorAll("[data-locale-tab]").forEach(function (tab) {
    tab.addEventListener("click", function () { selectLocale(tab.dataset.localeTab); });
  });
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);

  root.querySelectorAll("[data-test-send]").forEach(function (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      resultBox.hidden = false;
      resultBox.classList.remove("is-error");
      resultBox.textContent = "Sending…";
      post(root.dataset.testSendUrl, { test_channel: button.dataset.testSend }).then(function (answer) {
        if (answer.ok) {
          resultBox.textContent = "Test " + answer.data.channel + " sent to " + answer.data.to + " through " + answer.data.provider + ".";
        } else {
          resultBox.classList.add("is-error");
          resultBox.textContent = (answer.data.errors || ["The test send failed."]).join(" ");
        }
      }).finally(function () { button.disabled = false; });
    });
  });

  refresh();
}());
