/* Notification bell (live unread count) and the inbox page. Plain JS, no build step. */
(function () {
  "use strict";

  var API = "/api/v1/notifications/";
  var bell = document.getElementById("notification-bell");
  if (!bell) return;
  var badge = document.getElementById("notification-bell-count");
  var listeners = [];
  var onConnect = [];  // run when a live connection opens: catch up on what came before it

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function api(url, method) {
    return fetch(url, {
      method: method || "GET",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function setCount(count) {
    count = Number(count) || 0;
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
    bell.setAttribute("aria-label", count ? count + " unread notifications" : "Notifications");
    bell.classList.toggle("has-unread", count > 0);
  }

  // --- live count: Server-Sent Events, falling back to polling ------------------------------
  var pollTimer = null;
  function poll() {
    api(bell.dataset.countUrl).then(function (data) { setCount(data.count); }).catch(function () {});
  }
  function startPolling() {
    if (pollTimer) return;
    poll();
    pollTimer = window.setInterval(poll, 15000);
  }

  function received(item) {
    if (typeof item.unread_count === "number") setCount(item.unread_count);
    listeners.forEach(function (fn) { fn(item); });
    if (item.type === "toast") toast(item);
  }

  // Server-Sent Events: the fallback where WebSocket is unavailable.
  function startStream() {
    if (!window.EventSource) { startPolling(); return; }
    var failures = 0;
    var source = new EventSource(bell.dataset.streamUrl);
    source.addEventListener("open", function () {
      failures = 0;
      onConnect.forEach(function (fn) { fn(); });
    });
    source.addEventListener("unread_count", function (e) {
      setCount(JSON.parse(e.data).count);
    });
    source.addEventListener("notification", function (e) { received(JSON.parse(e.data)); });
    source.addEventListener("error", function () {
      failures += 1;
      // EventSource reconnects by itself; after repeated failures, poll instead.
      if (failures >= 3) { source.close(); startPolling(); }
    });
  }

  // WebSocket /ws/notifications/: frames, acknowledgements and presence (API.md "Web tier and realtime").
  function startSocket() {
    if (!window.WebSocket || !bell.dataset.wsUrl) { startStream(); return; }
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + bell.dataset.wsUrl;
    var attempts = 0;
    var everOpened = false;
    var socket = null;

    function presence() {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "presence", status: document.hidden ? "away" : "online" }));
      }
    }
    document.addEventListener("visibilitychange", presence);

    function open() {
      socket = new WebSocket(url);
      socket.addEventListener("open", function () {
        everOpened = true;
        attempts = 0;
        if (document.hidden) presence();
        onConnect.forEach(function (fn) { fn(); });
      });
      socket.addEventListener("message", function (e) {
        var frame;
        try { frame = JSON.parse(e.data); } catch (err) { return; }
        if (frame.type === "unread_count") {
          setCount(frame.count);
        } else if (frame.type === "notification" && frame.notification) {
          socket.send(JSON.stringify({ type: "ack", id: frame.notification.id }));
          received(frame.notification);
        }
      });
      socket.addEventListener("close", function (e) {
        socket = null;
        attempts += 1;
        // Never connected at all: a proxy or browser without WebSocket. Use the stream.
        if (!everOpened && attempts >= 3) { startStream(); return; }
        if (e.code === 4429) { startPolling(); return; }  // too many tabs: this one polls
        // Reconnect with exponential backoff and jitter (1 s, 2 s, 4 s … at most 30 s).
        var delay = Math.min(30000, 1000 * Math.pow(2, attempts - 1)) * (0.5 + Math.random() / 2);
        window.setTimeout(function () { poll(); open(); }, delay);
      });
    }
    open();
  }

  // --- toasts for items of type "toast" ------------------------------------------------------
  function toast(item) {
    var box = document.getElementById("toasts");
    if (!box) {
      box = document.createElement("div");
      box.id = "toasts";
      box.className = "toasts";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    var el = document.createElement("div");
    el.className = "toast";
    var title = document.createElement("strong");
    title.textContent = item.title || item.event_type || "";
    var body = document.createElement("p");
    body.textContent = item.body || "";
    el.appendChild(title);
    el.appendChild(body);
    box.appendChild(el);
    window.setTimeout(function () { el.remove(); }, 6000);
  }

  poll();
  startSocket();

  // --- the inbox page ------------------------------------------------------------------------
  var list = document.getElementById("inbox-list");
  if (!list) return;
  var empty = document.getElementById("inbox-empty");
  var more = document.getElementById("inbox-more");
  var tabs = document.getElementById("inbox-tabs");
  var currentStatus = "";
  var nextUrl = null;

  function timeAgo(iso) {
    var seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 60) return "just now";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return new Date(iso).toLocaleDateString();
  }

  function button(label, action, id) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "inbox-action";
    b.textContent = label;
    b.dataset.action = action;
    b.dataset.id = id;
    return b;
  }

  // Only http(s) links (absolute or relative) become an href; javascript:, data: and the rest
  // are shown as plain text even if such a row reached the inbox (the server refuses them too).
  function safeHref(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function render(item) {
    var li = document.createElement("li");
    li.className = "inbox-item" + (item.read_at ? "" : " unread") + " crit-" + String(item.criticality || "").toLowerCase();
    li.dataset.id = item.id;
    var dot = document.createElement("span");
    dot.className = "inbox-dot";
    var main = document.createElement("div");
    main.className = "inbox-main";
    var href = safeHref(item.action_url);
    var title = document.createElement(href ? "a" : "strong");
    title.className = "inbox-title";
    title.textContent = item.title || item.event_type;
    if (href) { title.href = href; title.dataset.id = item.id; title.dataset.action = "open"; }
    var body = document.createElement("p");
    body.className = "inbox-body";
    body.textContent = item.body || "";
    var meta = document.createElement("span");
    meta.className = "muted inbox-meta";
    meta.textContent = timeAgo(item.created_at) + (item.criticality && item.criticality !== "MEDIUM" && item.criticality !== "LOW" ? " · " + item.criticality : "");
    main.appendChild(title);
    main.appendChild(body);
    main.appendChild(meta);
    var actions = document.createElement("div");
    actions.className = "inbox-actions";
    // The item's own actions (channel_options.IN_APP.actions): navigate, dismiss, custom.
    (item.actions || []).forEach(function (a) {
      if (item.archived_at && a.action !== "navigate") return;
      var b = button(a.label, "item-action", item.id);
      b.dataset.itemAction = a.id;
      b.dataset.kind = a.action;
      if (a.action === "navigate") b.dataset.url = safeHref(a.url) || "";
      actions.appendChild(b);
    });
    if (item.type === "banner") li.className += " inbox-banner";
    if (!item.archived_at) {
      actions.appendChild(item.read_at ? button("Mark unread", "unread", item.id) : button("Mark read", "read", item.id));
      actions.appendChild(button("Archive", "archive", item.id));
    }
    li.appendChild(dot);
    li.appendChild(main);
    li.appendChild(actions);
    return li;
  }

  var loadSeq = 0;
  function load(reset) {
    var url = reset ? API + (currentStatus ? "?status=" + currentStatus : "") : nextUrl;
    if (!url) return;
    // Only the latest request may fill the list (a slow answer for a previous tab is dropped).
    var seq = ++loadSeq;
    api(url).then(function (page) {
      if (seq !== loadSeq) return;
      if (reset) list.textContent = "";
      page.results.forEach(function (item) { list.appendChild(render(item)); });
      nextUrl = page.next;
      more.hidden = !nextUrl;
      empty.hidden = list.children.length > 0;
    }).catch(function () { empty.hidden = false; empty.textContent = "The inbox could not be loaded. Retry in a moment."; });
  }

  tabs.addEventListener("click", function (e) {
    var tab = e.target.closest("button[data-status]");
    if (!tab) return;
    Array.prototype.forEach.call(tabs.children, function (t) { t.classList.toggle("active", t === tab); });
    currentStatus = tab.dataset.status;
    load(true);
  });

  list.addEventListener("click", function (e) {
    var target = e.target.closest("[data-action]");
    if (!target) return;
    var id = target.dataset.id;
    var action = target.dataset.action;
    if (action === "open") { api(API + id + "/read/", "POST").catch(function () {}); return; }
    e.preventDefault();
    if (action === "item-action") {
      var kind = target.dataset.kind;
      var url = target.dataset.url;
      api(API + id + "/actions/" + encodeURIComponent(target.dataset.itemAction) + "/", "POST").then(function (item) {
        if (kind === "navigate" && url) { window.location.href = url; return; }
        var row = list.querySelector('li[data-id="' + id + '"]');
        if (kind === "dismiss" && currentStatus !== "archived") { row.remove(); } else { row.replaceWith(render(item)); }
        empty.hidden = list.children.length > 0;
        poll();
      }).catch(function () {});
      return;
    }
    api(API + id + "/" + action + "/", "POST").then(function (item) {
      var li = list.querySelector('li[data-id="' + id + '"]');
      var leaves = action === "archive" || (currentStatus === "unread" && action === "read") || (currentStatus === "read" && action === "unread");
      if (leaves) { li.remove(); } else { li.replaceWith(render(item)); }
      empty.hidden = list.children.length > 0;
      poll();
    }).catch(function () {});
  });

  document.getElementById("inbox-read-all").addEventListener("click", function () {
    api(API + "read-all/", "POST").then(function () { setCount(0); load(true); }).catch(function () {});
  });
  more.addEventListener("click", function () { load(false); });

  onConnect.push(function () { load(true); });
  listeners.push(function (item) {
    if (currentStatus === "" || currentStatus === "unread") {
      if (!list.querySelector('li[data-id="' + item.id + '"]')) list.insertBefore(render(item), list.firstChild);
      empty.hidden = true;
    }
  });

  load(true);
})();
