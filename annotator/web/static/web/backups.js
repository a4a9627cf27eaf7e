// Backups and Restore pages: each form posts to the REST API, then follows its job (bar and status line).
(function () {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The bar and status line of the card a form sits in.
  function widgets(form) {
    const card = form.closest("section") || document;
    return { bar: card.querySelector("[data-bar]"), status: card.querySelector("[data-status]") };
  }

  function say(status, text, kind) {
    if (!status) return;
    status.textContent = text;
    status.className = kind || "";
  }

  async function send(url, method, body) {
    const headers = { "X-CSRFToken": csrf };
    let payload = body;
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(url, { method, credentials: "same-origin", headers, body: payload });
    const data = await response.json().catch(() => ({}));
    return { response, data };
  }

  // Poll a job until it ends; `gone` answers when the job is no longer visible (a deleted project's job).
  async function follow(job, { bar, status }, gone) {
    const fill = bar ? bar.querySelector("div") : null;
    if (bar) bar.hidden = false;
    for (;;) {
      const response = await fetch(`/api/jobs/${job.id}/`, { credentials: "same-origin" });
      if (response.status === 404 && gone) return gone();
      if (!response.ok) { say(status, "The job's progress could not be read.", "error"); return null; }
      job = await response.json();
      if (fill) fill.style.width = (job.state === "succeeded" ? 100 : job.percent) + "%";
      if (job.state === "succeeded") return job;
      if (job.state === "failed" || job.state === "cancelled") {
        say(status, `${job.state === "failed" ? "Failed" : "Cancelled"}: ${job.error || job.message}`, "error");
        return null;
      }
      say(status, `${job.message}${job.progress_total ? ` (${job.percent}%)` : ""}`);
      if (window.annotatorRefreshJobs) window.annotatorRefreshJobs();
      await sleep(700);
    }
  }

  function size(bytes) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let n = bytes, u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u += 1; }
    return `${u ? n.toFixed(1) : n} ${units[u]}`;
  }

  function projectLink(result, text) {
    const link = document.createElement("a");
    link.href = `/projects/${result.project}/`;
    link.textContent = text || result.name;
    link.dataset.testid = "new-project-link";
    return link;
  }

  // One handler for every job-starting form: build the body, send, follow, report.
  function jobForm(form, { method = "POST", body, done, gone }) {
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const w = widgets(form);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      say(w.status, "Starting…");
      try {
        const { response, data } = await send(form.dataset.api, method, body(form));
        if (response.status !== 202) { say(w.status, data.detail || response.statusText, "error"); return; }
        const job = await follow(data, w, gone);
        if (job) done(job, w);
      } catch (e) {
        say(w.status, "The server could not be reached.", "error");
      } finally {
        button.disabled = false;
      }
    });
  }

  const checked = (form, name) => !!form.elements[name] && form.elements[name].checked;

  jobForm(document.getElementById("backup-form"), {
    body: (form) => ({ images: checked(form, "images"), models: checked(form, "models"), datasets: checked(form, "datasets") }),
    done: (job, w) => {
      say(w.status, `Backed up: ${size(job.result.size)}, sha256 ${job.result.sha256.slice(0, 16)}…`, "ok");
      setTimeout(() => window.location.reload(), 900);
    },
  });

  jobForm(document.getElementById("duplicate-form"), {
    body: (form) => ({ name: form.elements.name.value.trim() }),
    done: (job, w) => {
      say(w.status, "Duplicated: ", "ok");
      w.status.append(projectLink(job.result));
    },
  });

  const restore = document.getElementById("restore-form");
  jobForm(restore, {
    body: (form) => {
      const data = new FormData(form);
      data.set("create_users", checked(form, "create_users") ? "true" : "false");
      return data;
    },
    done: (job, w) => {
      const created = job.result.users_created || [];
      say(w.status, `Restored${created.length ? ` (users created, inactive: ${created.join(", ")})` : ""}: `, "ok");
      w.status.append(projectLink(job.result));
    },
  });

  const remove = document.getElementById("delete-form");
  if (remove) {
    const input = remove.elements.confirm;
    const button = remove.querySelector("button[type=submit]");
    input.addEventListener("input", () => { button.disabled = input.value !== remove.dataset.name; });
    jobForm(remove, {
      method: "DELETE",
      body: (form) => ({ confirm: form.elements.confirm.value }),
      done: (job, w) => { say(w.status, "Deleted.", "ok"); window.location.href = "/"; },
      // Once the project is gone its job belongs to nobody's project: the deletion is over.
      gone: () => { window.location.href = "/"; return null; },
    });
  }

  const schedule = document.getElementById("schedule-form");
  if (schedule) {
    schedule.addEventListener("submit", async (event) => {
      event.preventDefault();
      const { status } = widgets(schedule);
      const body = {
        enabled: checked(schedule, "enabled"), with_images: checked(schedule, "with_images"), with_models: checked(schedule, "with_models"),
        every_hours: Number(schedule.elements.every_hours.value), keep: Number(schedule.elements.keep.value),
      };
      const { response, data } = await send(schedule.dataset.api, "PUT", body);
      if (!response.ok) { say(status, data.detail || response.statusText, "error"); return; }
      say(status, data.enabled ? `Saved: a backup every ${data.every_hours} h, the newest ${data.keep} kept.` : "Saved: scheduled backups are off.", "ok");
    });
  }

  for (const button of document.querySelectorAll("[data-archive]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const status = document.getElementById("archive-status");
      const { response, data } = await send(button.dataset.archive, "POST", null);
      if (!response.ok) { say(status, data.detail || response.statusText, "error"); button.disabled = false; return; }
      window.location.reload();
    });
  }

  const listStatus = document.getElementById("backups-status");
  for (const button of document.querySelectorAll("[data-delete-backup]")) {
    button.addEventListener("click", async () => {
      if (!window.confirm("Delete this backup archive?")) return;
      const response = await fetch(`/api/backups/${button.dataset.deleteBackup}/`, {
        method: "DELETE", credentials: "same-origin", headers: { "X-CSRFToken": csrf },
      });
      if (response.status === 204) button.closest("tr").remove();
      else say(listStatus, "The backup could not be deleted.", "error");
    });
  }

  for (const form of document.querySelectorAll("[data-restore-backup]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      say(listStatus, "Restoring…");
      try {
        const { response, data } = await send(form.dataset.restoreBackup, "POST", { name: form.elements.name.value.trim() });
        if (response.status !== 202) { say(listStatus, data.detail || response.statusText, "error"); return; }
        const job = await follow(data, { bar: null, status: listStatus });
        if (job) { say(listStatus, "Restored: ", "ok"); listStatus.append(projectLink(job.result)); }
      } finally {
        button.disabled = false;
      }
    });
  }
})();
