// Light and dark themes: follow the system until the user picks one, then
// remember the pick. The inline script in the page sets data-theme before
// the first paint; this keeps it current.

const media = window.matchMedia("(prefers-color-scheme: dark)");

function stored() {
  try { return localStorage.getItem("theme"); } catch (e) { return null; }
}

export function currentTheme() {
  return document.documentElement.dataset.theme;
}

export function initTheme(button, onChange) {
  const render = () => {
    const theme = currentTheme();
    button.dataset.theme = theme;
    button.setAttribute("aria-label", theme === "dark" ? "Switch to light theme" : "Switch to dark theme");
    button.title = button.getAttribute("aria-label");
  };
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("theme", next); } catch (e) { /* private mode: not remembered */ }
    render();
    onChange(next);
  });
  media.addEventListener("change", () => {
    if (stored()) return; // the user's pick wins over the system
    document.documentElement.dataset.theme = media.matches ? "dark" : "light";
    render();
    onChange(currentTheme());
  });
  render();
}
