/* Service worker: shows Web Push notifications and opens their link when clicked. */
"use strict";

self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = { body: event.data ? event.data.text() : "" }; }
  var options = { body: data.body || "", data: { url: data.url || "/inbox/" }, tag: data.delivery_id || undefined };
  event.waitUntil(self.registration.showNotification(data.title || "Troubadour", options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = new URL((event.notification.data && event.notification.data.url) || "/inbox/", self.location.origin);
  // Only this site's pages are opened from a notification.
  if (url.origin !== self.location.origin) url = new URL("/inbox/", self.location.origin);
  event.waitUntil(self.clients.openWindow(url.href));
});
