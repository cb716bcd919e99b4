// cmdb web UI: the little script the pages need, as a module (no inline script, no eval).
// Confirmation before destructive actions: buttons with data-confirm ask first.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopPropagation();
  }
}, true);
