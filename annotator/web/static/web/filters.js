// Filter forms (image list): a select marked data-autosubmit sends its form as soon as it changes.
(function () {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
})();
