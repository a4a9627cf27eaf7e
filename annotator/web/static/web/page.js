/* What the pages would otherwise do with style="" attributes and inline handlers, which the
 * Content-Security-Policy forbids: bar widths (data-percent), colour swatches (data-color) and
 * filter selects that submit their form on change (data-autosubmit). Setting element.style from
 * a script file is allowed. Markup added later (jobs.js rewrites its table) is handled too. */
(function () {
  function apply(root) {
    const all = (selector) => [...(root.matches && root.matches(selector) ? [root] : []), ...root.querySelectorAll(selector)];
    for (const el of all("[data-percent]")) el.style.width = Number(el.dataset.percent) + "%";
    for (const el of all("[data-color]")) el.style.background = el.dataset.color;
  }
  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) target.form.submit();
  });
  function start() {
    apply(document);
    new MutationObserver((changes) => {
      for (const change of changes) for (const node of change.addedNodes) if (node instanceof Element) apply(node);
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
