// Filter forms (image list): a select marked data-autosubmit sends its form as soon as it changes.
(function () {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
})();
// Buttons that only matter without JavaScript (the select sends the form itself).
for (const button of document.querySelectorAll(".js-hidden")) button.hidden = true;
