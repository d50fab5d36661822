/* "Turn on notifications": Web Push subscription through the service worker (VAPID). */
(function () {
  "use strict";

  var button = document.getElementById("push-toggle");
  if (!button) return;
  var key = button.dataset.vapidKey;
  // Without a VAPID key or browser support the control stays hidden.
  if (!key || !("serviceWorker" in navigator) || !("PushManager" in window) || !window.Notification) return;
  var status = document.getElementById("push-status");

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function register(method, body) {
    return fetch("/api/v1/push-subscriptions/", {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
    });
  }

  function applicationServerKey(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function show(subscribed, message) {
    button.dataset.subscribed = subscribed ? "true" : "false";
    button.textContent = subscribed ? "Turn off notifications" : "Turn on notifications";
    if (status) status.textContent = message || "";
  }

  navigator.serviceWorker.register(button.dataset.workerUrl).then(function (registration) {
    return registration.pushManager.getSubscription().then(function (existing) {
      button.hidden = false;
      show(Boolean(existing));
      button.addEventListener("click", function () {
        button.disabled = true;
        registration.pushManager.getSubscription().then(function (current) {
          if (current) {
            var endpoint = current.endpoint;
            return current.unsubscribe().then(function () {
              return register("DELETE", { endpoint: endpoint });
            }).then(function () { show(false, "Notifications are off on this device."); });
          }
          return window.Notification.requestPermission().then(function (permission) {
            if (permission !== "granted") { show(false, "Notifications are blocked in this browser."); return null; }
            return registration.pushManager.subscribe({
              userVisibleOnly: true, applicationServerKey: applicationServerKey(key)
            }).then(function (subscription) {
              return register("POST", subscription.toJSON());
            }).then(function () { show(true, "Notifications are on for this device."); });
          });
        }).catch(function () {
          show(false, "Notifications could not be changed. Try again later.");
        }).then(function () { button.disabled = false; });
      });
    });
  }).catch(function () {});
})();
