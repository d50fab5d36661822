/* The "Invite collaborators" dialog on the story page: rows of invitees, one JSON POST. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("invite-config").textContent);
  var dialog = document.getElementById("invite-dialog");
  var form = document.getElementById("invite-form");
  var rows = document.getElementById("invite-rows");
  var template = document.getElementById("invitee-row-template");
  var editor = document.getElementById("invite-editor");
  var success = document.getElementById("invite-success");
  var formError = document.getElementById("invite-form-error");
  var submit = document.getElementById("invite-submit");
  var cancel = document.getElementById("invite-cancel");
  var count = document.getElementById("invite-count");
  var styleByCode = {};
  config.styles.forEach(function (s) { styleByCode[s.code] = s; });

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function text(tag, value, className) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (className) el.className = className;
    return el;
  }

  function updateCount() {
    var n = rows.children.length;
    count.textContent = n === 1 ? "1 person" : n + " people";
    Array.prototype.forEach.call(rows.querySelectorAll("[data-remove]"), function (b) { b.disabled = n === 1; });
  }

  function showStyleHelp(row) {
    var select = row.querySelector('[data-field="conversation_style"]');
    var style = styleByCode[select.value];
    row.querySelector("[data-style-help]").textContent = style ? style.description : "";
    var sample = row.querySelector("[data-style-sample]");
    if (sample) sample.textContent = style && style.sample ? "\u201C" + style.sample + "\u201D" : "";
  }

  function addRow(values) {
    var row = template.content.firstElementChild.cloneNode(true);
    var styleSelect = row.querySelector('[data-field="conversation_style"]');
    config.styles.forEach(function (s) {
      var option = text("option", s.label);
      option.value = s.code;
      option.title = s.description;
      styleSelect.appendChild(option);
    });
    var characterSelect = row.querySelector('[data-field="character_id"]');
    config.characters.forEach(function (c) {
      var option = text("option", c.name);
      option.value = String(c.id);
      characterSelect.appendChild(option);
    });
    if (!config.characters.length) characterSelect.disabled = true;
    if (values && values.style) styleSelect.value = values.style;
    styleSelect.addEventListener("change", function () { showStyleHelp(row); });
    row.querySelector("[data-remove]").addEventListener("click", function () {
      row.remove();
      updateCount();
    });
    rows.appendChild(row);
    showStyleHelp(row);
    updateCount();
    return row;
  }

  function rowNumber(row) {
    return Array.prototype.indexOf.call(rows.children, row) + 1;
  }

  function setRowError(row, messages) {
    var box = row.querySelector("[data-row-error]");
    if (messages && messages.length) {
      // People count from 1: the server's "(item 0)" is the first row.
      box.textContent = "Person " + rowNumber(row) + ": " + messages.join(" ").replace(/\(item (\d+)\)/g, function (_, n) {
        return "(person " + (Number(n) + 1) + ")";
      });
      box.hidden = false;
      row.classList.add("has-error");
    } else {
      box.textContent = "";
      box.hidden = true;
      row.classList.remove("has-error");
    }
  }

  function setFormError(message) {
    formError.textContent = message || "";
    formError.hidden = !message;
  }

  function reset() {
    rows.innerHTML = "";
    document.getElementById("general-message").value = "";
    editor.hidden = false;
    success.hidden = true;
    success.innerHTML = "";
    submit.hidden = false;
    submit.disabled = false;
    cancel.textContent = "Cancel";
    setFormError("");
    addRow();
  }

  function collect() {
    var items = [];
    var valid = true;
    Array.prototype.forEach.call(rows.children, function (row) {
      var contact = row.querySelector('[data-field="contact"]').value.trim();
      var item = { conversation_style: row.querySelector('[data-field="conversation_style"]').value };
      var characterId = row.querySelector('[data-field="character_id"]').value;
      var message = row.querySelector('[data-field="message"]').value.trim();
      if (characterId) item.character_id = Number(characterId);
      if (message) item.message = message;
      if (!contact) {
        setRowError(row, ["Enter an email address or a phone number."]);
        valid = false;
      } else if (contact.indexOf("@") !== -1) {
        item.email = contact;
        setRowError(row, []);
      } else {
        item.phone = contact.replace(/[\s().-]/g, "");
        setRowError(row, []);
      }
      items.push(item);
    });
    return valid ? items : null;
  }

  function messagesOf(errors) {
    var out = [];
    Object.keys(errors).forEach(function (field) {
      var list = Array.isArray(errors[field]) ? errors[field] : [String(errors[field])];
      list.forEach(function (m) { out.push(m); });
    });
    return out;
  }

  function showServerErrors(body) {
    var generic = [];
    if (body && body.invitations && !Array.isArray(body.invitations) && typeof body.invitations === "object") {
      Object.keys(body.invitations).forEach(function (index) {
        var row = rows.children[Number(index)];
        if (row) setRowError(row, messagesOf(body.invitations[index]));
      });
      var numbers = Object.keys(body.invitations).map(function (i) { return Number(i) + 1; }).sort(function (a, b) { return a - b; });
      generic.push("Some invitations need a fix: " + (numbers.length === 1 ? "person " : "people ") + numbers.join(", ") + ".");
    } else if (body && Array.isArray(body.invitations)) {
      generic = generic.concat(body.invitations);
    }
    if (body && body.message) generic = generic.concat(body.message);
    if (body && body.detail) generic.push(body.detail);
    setFormError(generic.join(" ") || "The invitations could not be sent.");
    // The summary sits at the top of the dialog: bring it (and then the first bad row) into view.
    formError.scrollIntoView({ block: "nearest" });
    var first = rows.querySelector(".has-error");
    if (first) {
      var input = first.querySelector('[data-field="contact"]');
      if (input) input.focus({ preventScroll: true });
    }
  }

  function showSuccess(body) {
    editor.hidden = true;
    success.hidden = false;
    submit.hidden = true;
    cancel.textContent = "Done";
    var invited = body.invitations.length;
    success.appendChild(text("h3", invited === 1 ? "1 invitation sent" : invited + " invitations sent"));
    var list = document.createElement("ul");
    list.id = "invited-list";
    body.invitations.forEach(function (inv) {
      var style = styleByCode[inv.conversation_style];
      list.appendChild(text("li", (inv.email || inv.phone) + " — " + (style ? style.label : inv.conversation_style)));
    });
    success.appendChild(list);
    if (body.skipped && body.skipped.length) {
      success.appendChild(text("p", "Not invited:", "muted"));
      var skipped = document.createElement("ul");
      skipped.id = "skipped-list";
      var why = {
        already_pending: "already invited, the invitation is still pending",
        opted_out: "asked not to receive invitations"
      };
      body.skipped.forEach(function (s) {
        skipped.appendChild(text("li", (s.email || s.phone) + " — " + (why[s.reason] || s.reason)));
      });
      success.appendChild(skipped);
    }
    if (body.narrations.length) {
      success.appendChild(text("h3", "Narrations"));
      var narrations = document.createElement("ul");
      narrations.id = "narration-list";
      body.narrations.forEach(function (n) {
        var style = styleByCode[n.conversation_style];
        var label = (style ? style.label : n.conversation_style) + " narration — " +
          (n.status === "ready" ? "ready" : (n.created ? "being prepared" : n.status));
        narrations.appendChild(text("li", label));
      });
      success.appendChild(narrations);
      success.appendChild(text("p", "Everyone invited in the same style shares one narration, prepared in the background.", "muted"));
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    setFormError("");
    var items = collect();
    if (!items) {
      setFormError("Some rows need a fix — see the highlighted rows.");
      return;
    }
    var payload = { invitations: items };
    var general = document.getElementById("general-message").value.trim();
    if (general) payload.message = general;
    submit.disabled = true;
    submit.textContent = "Sending…";
    fetch("/api/v1/stories/" + config.storyId + "/invitations/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 201) showSuccess(body);
        else showServerErrors(body);
      });
    }).catch(function () {
      setFormError("Network error: the invitations were not sent. Try again.");
    }).then(function () {
      submit.disabled = false;
      submit.textContent = "Send invitations";
    });
  });

  document.getElementById("add-row").addEventListener("click", function () {
    var last = rows.lastElementChild;
    var style = last ? last.querySelector('[data-field="conversation_style"]').value : null;
    addRow({ style: style }).querySelector('[data-field="contact"]').focus();
  });

  document.getElementById("open-invite").addEventListener("click", function () {
    reset();
    dialog.showModal();
    rows.querySelector('[data-field="contact"]').focus();
  });

  function filled() {
    if (!success.hidden) return false;
    if (document.getElementById("general-message").value.trim()) return true;
    return Array.prototype.some.call(rows.querySelectorAll('[data-field="contact"], [data-field="message"]'), function (input) {
      return input.value.trim() !== "";
    });
  }

  // Esc (the dialog's "cancel") must not throw away people typed in without asking.
  dialog.addEventListener("cancel", function (event) {
    if (filled() && !window.confirm("Discard the invitations you have not sent?")) event.preventDefault();
  });

  Array.prototype.forEach.call(dialog.querySelectorAll("[data-close]"), function (button) {
    button.addEventListener("click", function () {
      if (filled() && !window.confirm("Discard the invitations you have not sent?")) return;
      var sent = !success.hidden;
      dialog.close();
      if (sent) window.location.reload();
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-revoke]"), function (button) {
    button.addEventListener("click", function () {
      if (!window.confirm("Revoke this invitation? Its link will stop working.")) return;
      button.disabled = true;
      fetch("/api/v1/invitations/" + button.getAttribute("data-revoke") + "/revoke/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
      }).then(function (response) {
        if (response.ok) window.location.reload();
        else { button.disabled = false; window.alert("The invitation could not be revoked."); }
      });
    });
  });
})();
