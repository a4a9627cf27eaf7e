// Datasets and Import pages: send the form to the API, then follow the job until it finishes.
(function () {
  const form = document.getElementById("dataset-form");
  if (!form) return;
  const status = document.getElementById("dataset-status");
  const bar = document.getElementById("dataset-bar");
  const fill = bar.querySelector("div");
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";

  function show(text, kind) { status.textContent = text; status.className = kind || ""; }

  async function follow(job) {
    bar.hidden = false;
    for (;;) {
      const response = await fetch(`/api/jobs/${job.id}/`, { credentials: "same-origin" });
      job = await response.json();
      fill.style.width = job.percent + "%";
      if (job.state === "succeeded") {
        show(form.dataset.done.replace("{result}", JSON.stringify(job.result)), "ok");
        if (form.dataset.reload) setTimeout(() => window.location.reload(), 800);
        return;
      }
      if (job.state === "failed" || job.state === "cancelled") {
        show(`${job.state}: ${job.error || job.message}`, "error");
        return;
      }
      show(`${job.message}${job.progress_total ? ` (${job.progress_done}/${job.progress_total})` : ""}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    let body;
    const headers = { "X-CSRFToken": csrf };
    if (form.enctype === "multipart/form-data") {
      body = new FormData(form);
      body.set("create_labels", form.elements.create_labels.checked ? "true" : "false");
    } else {
      const data = Object.fromEntries(new FormData(form).entries());
      data.include_images = form.elements.include_images.checked;
      data.predictions = form.elements.predictions.checked;
      const labels = [...form.elements.labels.selectedOptions].map((o) => o.value);
      data.labels = labels.length ? labels : null;
      body = JSON.stringify(data);
      headers["Content-Type"] = "application/json";
    }
    show("Starting…");
    try {
      const response = await fetch(form.dataset.api, { method: "POST", credentials: "same-origin", headers, body });
      const job = await response.json().catch(() => ({}));
      if (response.status !== 202) { show(job.detail || response.statusText, "error"); return; }
      await follow(job);
    } catch (e) {
      show("The server could not be reached.", "error");
    } finally {
      button.disabled = false;
    }
  });
})();
