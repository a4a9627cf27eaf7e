// Datasets and Import pages: send the form to the API, then follow the job until it finishes.
(function () {
  const form = document.getElementById("dataset-form");
  if (!form) return;
  const status = document.getElementById("dataset-status");
  const bar = document.getElementById("dataset-bar");
  const fill = bar.querySelector("div");
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";

  function show(text, kind) { status.textContent = text; status.className = kind || ""; }

  // An import's report in words, with the objects it repaired and what it skipped listed below.
  function showImport(result) {
    const parts = [`${result.created_count} images`];
    if (result.matched_count) parts.push(`${result.matched_count} already in the project`);
    if ("annotation_count" in result) parts.push(`${result.annotation_count} objects`);
    if (result.duplicates && result.duplicates.length) parts.push(`${result.duplicates.length} duplicates skipped`);
    if (result.repaired_count) parts.push(`${result.repaired_count} objects repaired`);
    show(`Imported: ${parts.join(", ")}.`, "ok");
    const report = document.getElementById("dataset-report");
    if (!report) return;
    report.replaceChildren();
    const lists = [
      ["Repaired", result.repairs || [], result.repaired_count || 0, "import-repairs"],
      ["Warnings", result.warnings || [], (result.warnings || []).length, "import-warnings"],
    ];
    for (const [title, lines, total, testid] of lists) {
      if (!lines.length) continue;
      const details = document.createElement("details");
      details.dataset.testid = testid;
      const summary = document.createElement("summary");
      summary.textContent = `${title}: ${total}`;
      const list = document.createElement("ul");
      for (const line of lines) {
        const item = document.createElement("li");
        item.textContent = line;
        list.append(item);
      }
      if (total > lines.length) {
        const more = document.createElement("li");
        more.textContent = `… and ${total - lines.length} more`;
        list.append(more);
      }
      details.append(summary, list);
      report.append(details);
    }
  }

  const size = (bytes) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`);

  // An export's result in words, with a link to the zip (never the raw result object).
  function showExport(job) {
    const r = job.result || {};
    const parts = [];
    if ("images" in r) parts.push(`${r.images} image${r.images === 1 ? "" : "s"}`);
    if ("annotations" in r) parts.push(`${r.annotations} object${r.annotations === 1 ? "" : "s"}`);
    if (r.size) parts.push(size(r.size));
    const text = `Export finished: ${r.name ? `“${r.name}”, ` : ""}${parts.join(", ")}. `;
    status.className = "ok";
    const url = job.result_url || (r.dataset_version ? `/api/datasets/${r.dataset_version}/download/` : null);
    if (!url) return void (status.textContent = text.trim());
    const link = document.createElement("a");
    link.href = url;
    link.textContent = "Download";
    status.replaceChildren(text, link);
  }

  // The new dataset version joins the table without reloading the page (the message stays).
  async function refreshVersions() {
    const table = document.querySelector('[data-testid="dataset-versions"]');
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector('[data-testid="dataset-versions"] tbody');
      if (table && fresh) table.querySelector("tbody").replaceWith(document.importNode(fresh, true));
    } catch (e) {
      /* the list updates on the next visit */
    }
  }

  async function follow(job) {
    bar.hidden = false;
    for (;;) {
      const response = await fetch(`/api/jobs/${job.id}/`, { credentials: "same-origin" });
      job = await response.json();
      fill.style.width = job.percent + "%";
      if (job.state === "succeeded") {
        fill.style.width = "100%";
        if (job.result && "created_count" in job.result) showImport(job.result);
        else showExport(job);
        if (form.dataset.reload) await refreshVersions();
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
