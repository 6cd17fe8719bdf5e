// How much room the console has: normal, or wide (a wider column on a desktop,
// a drawer over the whole page on a narrower screen, where the console would
// otherwise sit below every chart). The choice is remembered in localStorage.

const KEY = "console-wide";

function stored() {
  try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
}

export function initConsoleRoom(button, jump, input) {
  const apply = (wide) => {
    if (wide) document.body.dataset.console = "wide";
    else delete document.body.dataset.console;
    button.setAttribute("aria-pressed", String(wide));
    button.textContent = wide ? "Narrow" : "Wide";
    button.title = wide ? "Give the console its usual room" : "Give the console more room (remembered)";
  };
  const set = (wide) => {
    apply(wide);
    try { localStorage.setItem(KEY, wide ? "1" : "0"); } catch (e) { /* not remembered */ }
  };
  button.addEventListener("click", () => set(document.body.dataset.console !== "wide"));
  // The top bar's "Console" (narrow screens): open the drawer and the prompt.
  jump.addEventListener("click", () => {
    set(true);
    if (!input.disabled && !input.closest("[hidden]")) input.focus();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && document.body.dataset.console === "wide" && matchMedia("(max-width: 1100px)").matches) set(false);
  });
  apply(stored());
}
