// Hookyard console: small progressive enhancements over server-rendered pages. Every page works without this
// file; with it, the events table updates live, bodies copy with one click, and replays show their progress.
"use strict";

function liveEvents() {
  const table = document.querySelector("table[data-stream]");
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const status = document.getElementById("live-status");
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("row", (message) => {
    const holder = document.createElement("tbody");
    holder.innerHTML = message.data;
    const row = holder.querySelector("tr");
    if (!row) return;
    row.classList.add("fresh");
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 200) body.deleteRow(-1);
    if (status) status.textContent = "New event: " + (row.cells[2] ? row.cells[2].textContent : "");
  });
  window.addEventListener("pagehide", () => source.close());
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      if (!target) return;
      try {
        await navigator.clipboard.writeText(target.textContent);
        button.textContent = "Copied";
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(target);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
}

function parseEvents(text) {
  // Server-sent events in a fetch body: blocks separated by a blank line, "event:" and "data:" lines.
  const found = [];
  for (const block of text.split("\n\n")) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) found.push({ name, data: JSON.parse(data.join("\n")) });
  }
  return found;
}

function replayProgress() {
  const status = document.getElementById("replay-status");
  const bar = document.getElementById("replay-progress");
  for (const form of document.querySelectorAll("form[data-progress]")) {
    form.addEventListener("submit", async (submit) => {
      const button = submit.submitter;
      const action = button && button.getAttribute("formaction") ? button.getAttribute("formaction") : form.action;
      if (!action.endsWith("/replay")) return; // purges go to their confirmation page
      submit.preventDefault();
      const response = await fetch(action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "text/event-stream" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        status.textContent = await response.text();
        return;
      }
      bar.hidden = false;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        const cut = buffered.lastIndexOf("\n\n");
        if (cut < 0) continue;
        for (const event of parseEvents(buffered.slice(0, cut))) {
          if (event.name === "progress") {
            bar.max = event.data.total;
            bar.value = event.data.done;
            status.textContent = `Replaying ${event.data.done} of ${event.data.total} (in key order)…`;
          } else if (event.name === "done") {
            const replayed = event.data.replayed || 0;
            status.textContent = `Replayed ${replayed} of ${event.data.total}.`;
            const next = new URL(window.location.href);
            next.searchParams.set("notice", `replayed ${replayed} of ${event.data.total}`);
            window.location.assign(next.toString());
          }
        }
        buffered = buffered.slice(cut + 2);
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  liveEvents();
  copyButtons();
  replayProgress();
});
