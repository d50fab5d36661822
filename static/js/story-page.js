/* Story page: a new link for a pending invitation (copied, or sent again) and the delivery progress. */
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  var result = document.getElementById("reissue-result");

  function say(message) {
    if (!result) return;
    result.textContent = message;
    result.hidden = false;
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-reissue]"), function (button) {
    button.addEventListener("click", function () {
      var send = button.getAttribute("data-send") === "true";
      var question = send
        ? "Send this invitation again? A new link goes out and the earlier one stops working."
        : "Make a new link to copy? The link sent earlier stops working.";
      if (!window.confirm(question)) return;
      button.disabled = true;
      fetch("/api/v1/invitations/" + button.getAttribute("data-reissue") + "/reissue/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ send: send })
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          button.disabled = false;
          if (!response.ok) { say(body.detail || "That did not work."); return; }
          if (send) { say("Sent again with a new link."); return; }
          var done = function () { say("New link copied: " + body.invite_url); };
          if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(body.invite_url).then(done, function () { say("New link: " + body.invite_url); });
          } else {
            say("New link: " + body.invite_url);
          }
        });
      });
    });
  });

  var progress = document.getElementById("delivery-progress");
  var batchText = progress && progress.querySelector("[data-batch-text]");
  var batchActive = function (job) { return job && (job.status === "pending" || job.status === "processing"); };
  if (progress && (Number(progress.getAttribute("data-waiting")) > 0
      || (batchText && batchActive({ status: batchText.getAttribute("data-status") })))) {
    var bar = progress.querySelector("progress");
    var label = progress.querySelector("[data-progress-text]");
    var timer = window.setInterval(function () {
      fetch(progress.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) return;
          bar.max = p.total;
          bar.value = p.done;
          label.textContent = p.waiting ? "Delivering: " + p.done + " of " + p.total + " messages out"
            : "All " + p.total + " messages handed to the providers";
          var job = p.batch_job;
          if (batchText && job) {
            batchText.textContent = "Latest batch: " + job.processed_count + " of " + job.total_count + " invitees processed · "
              + job.success_count + " reached · " + job.failed_count + " failed (" + job.status + ")";
            batchText.setAttribute("data-status", job.status);
          }
          if (!p.waiting && !batchActive(job)) window.clearInterval(timer);
        });
    }, 3000);
  }
})();
