// The compose page's diagram: the step rows are POSTed, as they stand, to the diagram endpoint
// whenever they change, and its answer (an SVG, or what is wrong) replaces the drawing.
(() => {
  "use strict";
  const frame = document.getElementById("composer-diagram");
  if (!frame) return;
  const form = frame.closest("form");
  let timer = null;
  let latest = 0;

  const refresh = async () => {
    const ticket = ++latest;
    let text;
    try {
      const response = await fetch(frame.dataset.url, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
      });
      text = response.ok ? await response.text() : `<p class="errornote">The diagram could not be drawn (${response.status}).</p>`;
    } catch (error) {
      text = '<p class="errornote">The diagram could not be drawn: the server did not answer.</p>';
    }
    // An older answer arriving after a newer one is dropped.
    if (ticket === latest) frame.innerHTML = text;
  };

  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  };
  const onStepRows = (event) => {
    if (event.target.closest && event.target.closest("#steps-group")) later();
  };
  form.addEventListener("input", onStepRows);
  form.addEventListener("change", onStepRows);
  document.addEventListener("formset:added", later);
  document.addEventListener("formset:removed", later);
  refresh();
})();
