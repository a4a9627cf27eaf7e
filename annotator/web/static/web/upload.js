// The upload page: files chosen or dropped on the drop zone go to the images API with a progress bar.
(function () {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("upload-files");
  const drop = document.getElementById("upload-drop");
  const chosen = document.getElementById("upload-chosen");
  const bar = document.getElementById("upload-bar");
  const fill = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";

  function showChosen() {
    const names = [...input.files].map((f) => f.name);
    chosen.textContent = names.length
      ? `${names.length} file${names.length === 1 ? "" : "s"}: ${names.slice(0, 6).join(", ")}${names.length > 6 ? ", …" : ""}`
      : "";
  }
  input.addEventListener("change", showChosen);
  // Drag and drop: the dropped files become the input's files (then Upload sends them).
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "dragend"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    showChosen();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.files.length) { status.textContent = "Choose at least one file."; status.className = "error"; return; }
    const data = new FormData();
    for (const file of input.files) data.append("files", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    bar.hidden = false; fill.style.width = "0%"; status.className = ""; status.textContent = "Uploading…";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) fill.style.width = (100 * e.loaded / e.total).toFixed(1) + "%"; };
    xhr.upload.onload = () => { status.textContent = "Checking images…"; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201) {
        fill.style.width = "100%";
        const dup = body.duplicates.length ? ` ${body.duplicates.length} duplicate(s) skipped: ${body.duplicates.slice(0, 5).join(", ")}${body.duplicates.length > 5 ? "…" : ""}.` : "";
        status.className = "ok";
        // File names come from the uploader: text nodes only, never HTML.
        const link = document.createElement("a");
        link.href = form.dataset.imagesUrl;
        link.textContent = "See images";
        status.replaceChildren(`${body.created_count} image(s) added.${dup} `, link);
        form.reset();
        showChosen();
      } else {
        status.className = "error";
        status.textContent = "Upload failed, nothing was added: " + (body.detail || xhr.statusText || ("HTTP " + xhr.status));
      }
    };
    xhr.onerror = () => { status.className = "error"; status.textContent = "Upload failed: the server could not be reached."; };
    xhr.send(data);
  });
})();
