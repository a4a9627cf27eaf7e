// Review statistics on the dashboard (reviewers and managers): one fetch of the review-stats API.
(function () {
  const card = document.getElementById("review-stats");
  if (!card) return;
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(0) + "%");
  fetch(`/api/projects/${card.dataset.project}/review-stats/`, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.statusText)))
    .then((s) => {
      const minutes = s.mean_seconds_in_review === null ? "–" : (s.mean_seconds_in_review / 60).toFixed(1) + " min";
      const iou = s.mean_iou_submitted_vs_accepted === null ? "–" : s.mean_iou_submitted_vs_accepted.toFixed(3);
      card.querySelector(".summary").textContent =
        `${s.waiting_for_review} waiting, ${s.in_review} in review · ${s.decisions} decisions, ${pct(s.acceptance_rate)} accepted · ` +
        `${s.objects_changed_by_reviewers} objects changed by reviewers · mean IoU submitted→accepted ${iou} · ${minutes} in review`;
      card.querySelector("tbody").innerHTML = s.annotators.length
        ? s.annotators.map((a) => `<tr><td>${esc(a.annotator || "(imported)")}</td><td>${a.decisions}</td><td>${a.accepted}</td><td>${a.rejected}</td><td>${pct(a.acceptance_rate)}</td></tr>`).join("")
        : '<tr><td colspan="5" class="empty">No review decisions yet.</td></tr>';
    })
    .catch(() => { card.querySelector(".summary").textContent = "Review statistics are not available."; });
})();
