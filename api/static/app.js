// The streamrec console: plain JS over the API (no build step). The token stays in this tab.
"use strict";
const $ = (sel) => document.querySelector(sel);
const tokenInput = $("#token");
tokenInput.value = sessionStorage.getItem("streamrec-token") || "";

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + tokenInput.value } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(r.status + ": " + (body.detail || r.statusText));
  return body;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}

function status(text, error) {
  $("#status").textContent = text;
  $("#status").className = error ? "error" : "muted";
}

async function refreshStats() {
  const s = await api("/v1/stats");
  $("#events-per-s").textContent = s.events_per_s === null ? "…" : s.events_per_s.toFixed(1);
  $("#consumer-lag").textContent = s.consumer_lag;
  $("#events-total").textContent = s.events_total;
}

async function refreshModels() {
  const m = await api("/v1/models");
  fill($("#models table"), m.versions.slice().reverse().map((v) => [
    cell(v.version), cell(new Date(v.created * 1000).toISOString().slice(0, 19).replace("T", " ")), cell(v.parent || "–"),
    cell(Object.entries(v.metrics || {}).filter(([, x]) => typeof x === "number")
      .map(([k, x]) => k + " " + x.toFixed(4)).join(", ")),
    cell(v.served ? "served" : "", v.served ? "served" : ""),
  ]));
}

async function showFeed(user) {
  try {
    const f = await api("/v1/feeds/" + encodeURIComponent(user));
    const arm = f.arm ? `, experiment arm ${f.arm}` : "";
    $("#feed-meta").textContent = `model ${f.model_version}${arm}, ${f.age_s.toFixed(1)} s old, after event ${f.event_id}`;
    fill($("#feed"), f.items.map((it, i) => [cell(i + 1, "num"), cell(it.item_id), cell(it.score.toFixed(4), "num")]));
  } catch (e) {
    $("#feed-meta").textContent = e.message;
    fill($("#feed"), []);
  }
}

async function searchItems(q) {
  const r = await api("/v1/items?q=" + encodeURIComponent(q));
  fill($("#items"), r.items.map((it) => [cell(it.item_id), cell(it.title), cell(it.category), cell(it.available)]));
}

async function refreshDeadLetters() {
  const r = await api("/v1/dead-letters?limit=20");
  fill($("#dead-letters"), r.dead_letters.map((d) => [cell(d.offset, "num"), cell(d.reason), cell(d.key),
    cell((d.value || "").slice(0, 120))]));
}

async function tick() {
  if (!tokenInput.value) return;
  try {
    await Promise.all([refreshStats(), refreshModels(), refreshDeadLetters()]);
    status("updated " + new Date().toLocaleTimeString());
  } catch (e) {
    status(e.message, true);
  }
}

tokenInput.addEventListener("change", () => { sessionStorage.setItem("streamrec-token", tokenInput.value); tick(); });
$("#feed-form").addEventListener("submit", (ev) => { ev.preventDefault(); showFeed($("#user-id").value); });
$("#item-form").addEventListener("submit", (ev) => { ev.preventDefault(); searchItems($("#item-q").value); });
tick();
setInterval(tick, 2000);
