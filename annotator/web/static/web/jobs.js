// Live job progress on the dashboard: polls the jobs API while any job is queued or running.
(function () {
  const table = document.getElementById("jobs");
  if (!table) return;
  const project = table.dataset.project;
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  // The first sentence of an error, at most 100 characters (as the page's short_error filter).
  function shortError(text) {
    let first = String(text || "").trim().split("\n")[0];
    if (first.includes(". ")) first = first.split(". ")[0] + ".";
    else if (first.includes("; ")) first = first.split("; ")[0];
    return first.length <= 100 ? first : first.slice(0, 99).trimEnd() + "…";
  }

  // Managers get the error's first sentence and the whole text folded under it; others a short line.
  function errorHtml(job) {
    if (!job.error) return "";
    if (table.dataset.canManage === "1") {
      return `<details class="job-error" data-testid="job-error"><summary>${esc(shortError(job.error))}</summary><div class="job-error-text">${esc(job.error)}</div></details>`;
    }
    return '<div class="job-error" data-testid="job-error">The job failed; a manager can see why.</div>';
  }

  // "2026-12-01 17:22", as the page first renders it (the server's time zone is UTC).
  const when = (iso) => String(iso || "").slice(0, 16).replace("T", " ");

  function row(job) {
    const finished = ["succeeded", "failed", "cancelled"].includes(job.state);
    const cancel = !finished && table.dataset.canManage === "1" ? `<button data-cancel="${job.id}">Cancel</button>` : "";
    const download = job.result_url ? `<a href="${job.result_url}">Download</a>` : "";
    return `<tr data-job="${job.id}"><td>${esc(job.kind)} #${job.id}<div class="muted">${job.created_by ? `${esc(job.created_by)} · ` : ""}${esc(when(job.created_at))}</div></td>
      <td class="state">${esc(job.state)}</td>
      <td><div class="bar"><div data-percent="${Number(job.percent)}"></div></div><div class="muted job-msg">${esc(job.message)}${job.progress_total ? ` (${job.progress_done}/${job.progress_total})` : ""}</div>${errorHtml(job)}</td>
      <td class="actions">${cancel}${download}</td></tr>`;
  }

  async function refresh() {
    const response = await fetch(`/api/jobs/?project=${project}`, { credentials: "same-origin" });
    if (!response.ok) return false;
    const body = await response.json();
    const jobs = body.results.slice(0, 10);
    table.querySelector("tbody").innerHTML = jobs.length ? jobs.map(row).join("") : '<tr class="none"><td colspan="4" class="empty">No jobs yet.</td></tr>';
    return jobs.some((j) => j.state === "queued" || j.state === "running");
  }

  table.addEventListener("click", async (event) => {
    const id = event.target.dataset && event.target.dataset.cancel;
    if (!id) return;
    event.target.disabled = true;
    const response = await fetch(`/api/jobs/${id}/cancel/`, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf } });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      alert("Could not cancel: " + (body.detail || response.statusText));
    }
    tick();
  });

  let timer = null;
  async function tick() {
    clearTimeout(timer);
    let active = true;
    try { active = await refresh(); } catch (e) { active = true; }
    timer = setTimeout(tick, active ? 1000 : 5000);
  }
  window.annotatorRefreshJobs = tick;
  tick();
})();
