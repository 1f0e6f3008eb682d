// latchkey's only script: dialogs in place and copy buttons. Pages work
// without it: every dialog's opener is a link to a page with that dialog
// already open, and its Cancel a link back. No inline script exists (the
// CSP forbids it).
"use strict";

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.open);
    // A click meant for another tab or window follows the link.
    if (dialog && typeof dialog.showModal === "function" && !elsewhere(event)) {
      event.preventDefault();
      dialog.showModal();
    }
    return;
  }
  const closer = event.target.closest("[data-close]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog && dialog.open && !elsewhere(event)) {
      event.preventDefault();
      dialog.close();
    }
    return;
  }
  const copier = event.target.closest("[data-copy]");
  if (copier) {
    copy(copier);
  }
});

function elsewhere(event) {
  return event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey;
}

// A dialog that arrived open at its own address (a link followed in a new
// tab, a reload) leaves that address when it closes, however it closes, so
// a reload shows the page without it.
document.addEventListener("close", (event) => {
  const dialog = event.target;
  const back = dialog instanceof HTMLDialogElement && !dialog.open && dialog.querySelector("a[data-close]");
  if (back && back.href !== location.href) {
    history.replaceState(null, "", back.href);
  }
}, true);

async function copy(button) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) {
    return;
  }
  const text = source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // No clipboard API (plain http on another host): select the text and
    // use the older command.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => {
    button.textContent = label;
  }, 1500);
}

// Dialogs that must be seen at once (a password shown once, a form with
// errors) arrive already open, so they show even without this script; with
// it they become modal.
document.addEventListener("DOMContentLoaded", () => {
  for (const dialog of document.querySelectorAll("dialog[data-show-on-load]")) {
    if (typeof dialog.showModal === "function") {
      dialog.close();
      dialog.showModal();
    }
  }
});
