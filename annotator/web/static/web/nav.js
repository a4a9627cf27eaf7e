// The site header keeps to one line at any width: project links that do not fit move into the
// "More" menu beside the menu (last links first) and come back when there is room. The link of
// the page you are on is marked (aria-current), also inside "More", which is then marked too.
(function () {
  const nav = document.querySelector(".topbar > .projnav");
  const more = document.querySelector(".topbar > .nav-more");
  if (!nav || !more) return;
  const menu = more.querySelector(".nav-more-menu");
  const links = [...nav.children];

  for (const link of links) if (link.pathname === window.location.pathname) link.setAttribute("aria-current", "page");

  function fit() {
    nav.append(...links); // all back on the line, in their order
    more.hidden = true;
    if (nav.scrollWidth <= nav.clientWidth) return more.classList.remove("current");
    more.hidden = false;
    while (nav.scrollWidth > nav.clientWidth && nav.children.length) menu.prepend(nav.lastElementChild);
    more.classList.toggle("current", !!menu.querySelector('[aria-current="page"]'));
  }

  // Only a change of width matters (the header's height follows its one line).
  let width = -1;
  new ResizeObserver(([entry]) => {
    const now = Math.round(entry.contentRect.width);
    if (now !== width) {
      width = now;
      fit();
    }
  }).observe(nav.parentElement);
  document.fonts?.ready.then(fit);
  document.addEventListener("click", (event) => {
    if (more.open && !more.contains(event.target)) more.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && more.open) {
      more.open = false;
      more.querySelector("summary").focus();
    }
  });
})();
