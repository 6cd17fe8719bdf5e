// Runs before first paint (a blocking script in <head>), so the page never
// flashes the other theme: the user's pick if there is one, else the system's.
(() => {
  let t = null;
  try { t = localStorage.getItem("theme"); } catch (e) {}
  document.documentElement.dataset.theme = t || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
})();
