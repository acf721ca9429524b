// The live-count page: one EventSource at a time, and the snapshot list. No build step.
"use strict";

const BASE = "/api/v1/period-record-counts";
const TOKEN_KEY = "prc.api-token";
const $ = (id) => document.getElementById(id);
let source = null;

// A datetime-local value ("2026-03-26T10:00" or with seconds) read as UTC.
function toUtc(value) {
  return value.length === 16 ? `${value}:00Z` : `${value}Z`;
}

function fromUtc(instant) {
  return instant.replace(/Z$/, "");
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function query() {
  return new URLSearchParams({
    org_id: $("org").value.trim(),
    start: toUtc($("start").value),
    end: toUtc($("end").value),
  });
}

// An EventSource gives no reason for a refused stream: ask once more to show the problem.
async function explain(url) {
  const controller = new AbortController();
  try {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) {
      const problem = await response.json();
      setStatus(`Refused: ${problem.detail}`, true);
      return;
    }
    setStatus("The stream closed; press Watch live to try again.", true);
  } catch (error) {
    setStatus(`The server cannot be reached (${error.message}).`, true);
  } finally {
    controller.abort();
  }
}

function stop() {
  if (source) {
    source.close();
    source = null;
  }
  $("stop").disabled = true;
}

function watch() {
  stop();
  const url = `${BASE}/stream?${query()}`;
  setStatus("Connecting…");
  source = new EventSource(url);
  $("stop").disabled = false;
  source.onopen = () => setStatus("Live: updates arrive as records are counted.");
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    $("count").textContent = String(data.record_count);
    $("complete").textContent = data.is_complete
      ? "Complete: normal event flow can no longer change it."
      : "Not complete yet: the count may still grow.";
    $("as-of").textContent = `(as of ${data.timestamp})`;
    document.dispatchEvent(new CustomEvent("live-count", { detail: data })); // chart.js
  };
  source.onerror = () => {
    if (source && source.readyState === EventSource.CLOSED) {
      stop();
      explain(url);
    } else {
      setStatus("Connection lost; reconnecting…", true);
    }
  };
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

async function loadSnapshots() {
  const status = $("snapshots-status");
  status.textContent = "Loading…";
  try {
    const response = await fetch(`${BASE}?limit=20`);
    const body = await response.json();
    if (!response.ok) {
      status.textContent = `Could not list snapshots: ${body.detail}`;
      return;
    }
    const rows = $("snapshots");
    rows.replaceChildren();
    for (const snapshot of body.data) {
      const row = document.createElement("tr");
      cell(row, snapshot.org_id);
      cell(row, snapshot.range_start);
      cell(row, snapshot.range_end);
      cell(row, String(snapshot.record_count));
      cell(row, snapshot.is_complete ? "yes" : "no");
      cell(row, snapshot.snapshot_at);
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Watch";
      button.setAttribute("aria-label", `Watch ${snapshot.org_id} ${snapshot.range_start} to ${snapshot.range_end}`);
      button.addEventListener("click", () => {
        $("org").value = snapshot.org_id;
        $("start").value = fromUtc(snapshot.range_start);
        $("end").value = fromUtc(snapshot.range_end);
        watch();
      });
      action.appendChild(button);
      row.appendChild(action);
      rows.appendChild(row);
    }
    status.textContent = `${body.pagination.total} snapshot(s) in all.`;
  } catch (error) {
    status.textContent = `Could not list snapshots (${error.message}).`;
  }
}

// The token lives in sessionStorage: this tab only, gone when it closes. Writes send it.
function writeHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

function keepToken() {
  const token = $("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function saveSnapshot() {
  const form = $("pick");
  if (!form.reportValidity()) return;
  const status = $("snapshots-status");
  const params = query();
  try {
    const response = await fetch(BASE, {
      method: "POST",
      headers: writeHeaders(),
      body: JSON.stringify({
        org_id: params.get("org_id"),
        range: { start: params.get("start"), end: params.get("end") },
      }),
    });
    if (response.status === 401) {
      status.textContent = sessionStorage.getItem(TOKEN_KEY)
        ? "Not saved: the server did not accept this API token."
        : "Not saved: this server needs an API token; enter it under Access.";
      return;
    }
    const body = await response.json();
    if (!response.ok) {
      status.textContent = `Could not save: ${body.detail}`;
      return;
    }
    await loadSnapshots(); // it rewrites the status line: say what was saved after it
    status.textContent = `Snapshot saved: ${body.record_count} record(s). ${status.textContent}`;
  } catch (error) {
    status.textContent = `Could not save (${error.message}).`;
  }
}

function defaults() {
  // Today so far, in UTC, to the second.
  const now = new Date();
  const day = now.toISOString().slice(0, 10);
  $("start").value = `${day}T00:00:00`;
  $("end").value = `${day}T23:59:59`;
}

$("pick").addEventListener("submit", (event) => {
  event.preventDefault();
  watch();
});
$("stop").addEventListener("click", () => {
  stop();
  setStatus("Stopped.");
});
$("save").addEventListener("click", saveSnapshot);
$("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
$("token").addEventListener("input", keepToken);
$("access").addEventListener("submit", (event) => event.preventDefault());
$("refresh").addEventListener("click", loadSnapshots);
defaults();
loadSnapshots();
