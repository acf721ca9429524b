// The per-interval bar chart: GET /series for the form's org and range, drawn as inline SVG.
// While the live count runs (app.js dispatches "live-count"), the series is fetched again, at
// most once a second, so the bar holding "now" rises with each new record. No build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFETCH_MS = 1000;
const WIDTH = 760;
const HEIGHT = 280;
const PAD = { left: 48, right: 12, top: 22, bottom: 46 };
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const chart = { asked: 0, shown: 0, timer: null, last: 0 };

// "2026-03-01T00:00:00+01:00" -> its local parts (the API writes bounds in the zone's offset).
function parts(stamp) {
  const [date, time] = stamp.split("T");
  const [y, m, d] = date.split("-").map(Number);
  return { y, m, d, hh: time.slice(0, 2), mm: time.slice(3, 5) };
}

function isoWeek({ y, m, d }) {
  const day = new Date(Date.UTC(y, m - 1, d));
  const weekday = (day.getUTCDay() + 6) % 7; // Monday 0
  day.setUTCDate(day.getUTCDate() - weekday + 3); // the Thursday of this week decides its year
  const firstThursday = new Date(Date.UTC(day.getUTCFullYear(), 0, 4));
  const days = (day - firstThursday) / 86400000 - 3 + ((firstThursday.getUTCDay() + 6) % 7);
  const week = 1 + Math.round(days / 7);
  return { week, year: day.getUTCFullYear() };
}

// Axis label of a bucket, in the chosen zone's calendar.
function label(interval, stamp) {
  const p = parts(stamp);
  switch (interval) {
    case "hour": return `${p.hh}:${p.mm}`;
    case "day": return `${p.d} ${MONTHS[p.m - 1]}`;
    case "week": { const w = isoWeek(p); return `W${w.week} ${w.year}`; }
    case "month": return `${MONTHS[p.m - 1]} ${p.y}`;
    case "quarter": return `Q${Math.floor((p.m - 1) / 3) + 1} ${p.y}`;
    default: return String(p.y);
  }
}

// A date line under hour labels where the day changes, so a day of hours reads on its own.
function dateLine(interval, stamp, previous) {
  if (interval !== "hour") return "";
  const p = parts(stamp);
  return previous && parts(previous).d === p.d ? "" : `${p.d} ${MONTHS[p.m - 1]}`;
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const k of [1, 1.5, 2, 2.5, 5, 10]) if (k * step >= value) return k * step;
  return 10 * step;
}

function node(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function draw(series) {
  const buckets = series.buckets;
  const now = Date.now();
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const top = niceMax(Math.max(0, ...buckets.map((b) => b.record_count)));
  const slot = plotW / buckets.length;
  const svg = node("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": `${series.record_count} records per ${series.interval} in ${series.tz}`,
  });
  for (const tick of [0, top / 2, top]) {
    const y = PAD.top + plotH - (tick / top) * plotH;
    svg.appendChild(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: "grid" }));
    svg.appendChild(node("text", { x: PAD.left - 6, y: y + 4, class: "y-label" }, String(tick)));
  }
  const every = Math.ceil(buckets.length / 12);
  buckets.forEach((bucket, i) => {
    const h = (bucket.record_count / top) * plotH;
    const x = PAD.left + i * slot;
    const holdsNow = Date.parse(bucket.start) <= now && now < Date.parse(bucket.end) + 1000;
    const group = node("g", { class: holdsNow ? "bar now" : "bar" });
    const rect = node("rect", {
      x: x + slot * 0.1,
      y: PAD.top + plotH - h,
      width: Math.max(slot * 0.8, 1),
      height: Math.max(h, bucket.record_count ? 1 : 0),
      "data-start": bucket.start,
      "data-end": bucket.end,
      "data-count": bucket.record_count,
    });
    rect.appendChild(node("title", {}, `${bucket.start} – ${bucket.end}: ${bucket.record_count} record(s)`));
    group.appendChild(rect);
    if (buckets.length <= 40) {
      group.appendChild(node("text", { x: x + slot / 2, y: PAD.top + plotH - h - 4, class: "bar-count" }, String(bucket.record_count)));
    }
    if (i % every === 0) {
      const lx = x + slot / 2;
      group.appendChild(node("text", { x: lx, y: HEIGHT - PAD.bottom + 16, class: "x-label" }, label(series.interval, bucket.start)));
      const line = dateLine(series.interval, bucket.start, i >= every ? buckets[i - every].start : null);
      if (line) group.appendChild(node("text", { x: lx, y: HEIGHT - PAD.bottom + 32, class: "x-label" }, line));
    }
    svg.appendChild(group);
  });
  $("chart").replaceChildren(svg);
  const state = series.is_complete ? "complete" : "not complete yet";
  $("chart-total").textContent =
    `Total: ${series.record_count} record(s) in ${buckets.length} ${series.interval} interval(s), ${series.tz} (${state}).`;
}

async function drawSeries() {
  const params = query();
  params.set("interval", $("interval").value);
  params.set("tz", $("tz").value.trim() || "UTC");
  const asked = ++chart.asked;
  chart.last = Date.now();
  try {
    const response = await fetch(`${BASE}/series?${params}`);
    const body = await response.json();
    if (asked < chart.shown) return; // a later answer is on screen already
    chart.shown = asked;
    if (!response.ok) {
      $("chart-status").textContent = `Cannot draw: ${body.detail}`;
      return;
    }
    $("chart-status").textContent = `As of ${body.computed_at}.`;
    draw(body);
  } catch (error) {
    $("chart-status").textContent = `Cannot draw (${error.message}).`;
  }
}

// At most one fetch a second however fast counts arrive; the last change is always fetched.
function refetchSoon() {
  if (chart.timer) return;
  const wait = Math.max(0, chart.last + REFETCH_MS - Date.now());
  chart.timer = setTimeout(() => {
    chart.timer = null;
    drawSeries();
  }, wait);
}

function zones() {
  const list = $("zones");
  const names = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  for (const name of ["UTC", ...names]) list.appendChild(new Option(name, name));
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (own) $("tz").value = own;
}

$("pick").addEventListener("submit", () => drawSeries());
$("draw").addEventListener("click", () => {
  if ($("pick").reportValidity()) drawSeries();
});
$("interval").addEventListener("change", () => drawSeries());
$("tz").addEventListener("change", () => drawSeries());
document.addEventListener("live-count", refetchSoon);
zones();
