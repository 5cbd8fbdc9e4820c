// Small behaviours shared by every page.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  field.select();
  navigator.clipboard?.writeText(field.value);
  button.innerHTML = '<i class="bi bi-check2"></i> Copied';
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
