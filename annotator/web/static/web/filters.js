// Buttons that only matter without JavaScript: a select marked data-autosubmit sends its form
// itself (web/page.js), so its submit button is hidden.
(function () {
  for (const button of document.querySelectorAll(".js-hidden")) button.hidden = true;
})();
