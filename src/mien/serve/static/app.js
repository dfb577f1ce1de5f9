// mien serve page: uploads, the job list (live progress by server-sent events), the live view.
// Plain JavaScript, no libraries, nothing from outside this server. Text from the server is
// always set with textContent, never as HTML.
"use strict";

const COLORS = { neutral: "#7f8c8d", happiness: "#e0a400", surprise: "#8e44ad", sadness: "#2471a3",
  anger: "#c0392b", disgust: "#1e8449", fear: "#d35400", contempt: "#5d6d7e" };
const FINISHED = new Set(["done", "failed", "cancelled"]);
const LINKS = [["report", "Report"], ["results.parquet", "Parquet"], ["results.csv", "CSV"],
  ["manifest.json", "Manifest"], ["annotated.mp4", "Annotated video"]];
const sources = new Map();  // job id -> EventSource

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail : (Array.isArray(detail) ? detail.map(d => d.msg).join("; ") : response.statusText);
    throw new Error(text || `HTTP ${response.status}`);
  }
  return body;
}

function say(id, text, isError = false) {
  const node = document.getElementById(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// ------------------------------------------------------------------------------------ jobs
function jobRow(job) {
  const names = job.inputs.map(i => i.name).join(", ");
  const row = el("tr", { id: `job-${job.id}`, "data-status": job.status });
  const thumb = el("td", { class: "thumb" });
  if (job.outputs["thumbnail.jpg"]) {
    thumb.append(el("img", { src: job.outputs["thumbnail.jpg"], alt: "first face, blurred", loading: "lazy" }));
  } else {
    thumb.append(el("span", { "aria-hidden": "true" }));
  }
  const status = el("td", {}, el("span", { class: `st-${job.status}`, text: job.status }));
  if (job.error) status.append(el("div", { class: "err", text: job.error }));
  for (const w of job.warnings || []) status.append(el("div", { class: "err", text: `warning: ${w}` }));
  const prog = el("td");
  if (!FINISHED.has(job.status)) {
    prog.append(el("progress", { max: "1", value: String(job.progress || 0),
      "aria-label": `progress of ${names}` }));
    const bits = [`${Math.round(100 * (job.progress || 0))}%`];
    if (job.frames_per_s) bits.push(`${job.frames_per_s} frames/s`);
    if (job.eta_s !== null && job.eta_s !== undefined) bits.push(`about ${fmtSeconds(job.eta_s)} left`);
    prog.append(el("div", { class: "hint", text: bits.join(" · ") }));
  } else if (job.status === "done") {
    prog.append(el("span", { class: "hint", text: `${job.frames_analysed} frames` +
      (job.started && job.finished ? ` in ${fmtSeconds(job.finished - job.started)}` : "") }));
  }
  const results = el("td", { class: "results" });
  for (const [key, label] of LINKS) {
    if (job.outputs[key]) {
      const attrs = { href: job.outputs[key] };
      if (key === "report") { attrs.target = "_blank"; attrs.rel = "noopener"; attrs.class = "report-link"; }
      results.append(el("a", { ...attrs, text: label }));
    }
  }
  const del = el("button", { type: "button", class: "danger", text: "Delete",
    "aria-label": `delete the job ${names}` });
  del.addEventListener("click", () => deleteJob(job, names));
  row.append(thumb, el("td", { class: "name", text: names + (job.kind === "stream" ? " (live)" : "") }),
             status, prog, results, el("td", {}, del));
  return row;
}

function showJob(job) {
  const body = document.querySelector("#jobs tbody");
  const row = jobRow(job);
  const old = document.getElementById(`job-${job.id}`);
  if (old) old.replaceWith(row); else body.prepend(row);
  document.getElementById("no-jobs").hidden = body.children.length > 0;
  if (!FINISHED.has(job.status)) follow(job.id);
}

function follow(id) {
  if (sources.has(id)) return;
  const es = new EventSource(`/api/jobs/${id}/events`);
  sources.set(id, es);
  es.onmessage = (ev) => {
    const job = JSON.parse(ev.data);
    showJob(job);
    if (FINISHED.has(job.status)) { es.close(); sources.delete(id); }
  };
  es.addEventListener("deleted", () => { es.close(); sources.delete(id); });
  es.onerror = () => { es.close(); sources.delete(id); setTimeout(() => refreshOne(id), 2000); };
}

async function refreshOne(id) {
  try { showJob(await api(`/api/jobs/${id}`)); } catch (e) { /* deleted meanwhile */ }
}

async function loadJobs() {
  try {
    const { jobs } = await api("/api/jobs");
    const body = document.querySelector("#jobs tbody");
    body.replaceChildren();
    for (const job of jobs.slice().reverse()) showJob(job);
    document.getElementById("no-jobs").hidden = jobs.length > 0;
  } catch (e) {
    say("upload-status", `Cannot list the jobs: ${e.message}`, true);
  }
}

async function deleteJob(job, names) {
  if (!window.confirm(`Delete the job "${names}" and all its files?`)) return;
  try {
    await api(`/api/jobs/${job.id}`, { method: "DELETE" });
    const es = sources.get(job.id); if (es) { es.close(); sources.delete(job.id); }
    document.getElementById(`job-${job.id}`)?.remove();
    document.getElementById("no-jobs").hidden = document.querySelector("#jobs tbody").children.length > 0;
    say("upload-status", `Deleted ${names}.`);
  } catch (e) { say("upload-status", `Delete failed: ${e.message}`, true); }
}

let server = null;  // what /api/server says this server accepts

async function loadLimits() {
  try {
    server = await api("/api/server");
    document.getElementById("limits").textContent =
      `Up to ${Math.round(server.max_upload_bytes / 1e6)} MB and ${server.max_files} files per job; ` +
      `${server.workers} job(s) analysed at a time, the others wait in the queue.`;
  } catch (e) { /* the page still works without it */ }
}

function setupUpload() {
  const form = document.getElementById("upload");
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const chosen = () => {
    const n = input.files.length;
    document.getElementById("chosen").textContent = n ? [...input.files].map(f => f.name).join(", ") : "No file chosen.";
  };
  input.addEventListener("change", chosen);
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files.length) { input.files = ev.dataTransfer.files; chosen(); }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!input.files.length) { say("upload-status", "Choose at least one video or image first.", true); return; }
    const total = [...input.files].reduce((n, f) => n + f.size, 0);
    if (server && total > server.max_upload_bytes) {
      say("upload-status", `Not queued: ${Math.round(total / 1e6)} MB is more than this server takes ` +
        `(${Math.round(server.max_upload_bytes / 1e6)} MB); send fewer or smaller files.`, true);
      return;
    }
    const data = new FormData();
    for (const f of input.files) data.append("files", f, f.name);
    data.append("stride", document.getElementById("stride").value || "1");
    const fps = document.getElementById("fps").value;
    if (fps) data.append("fps", fps);
    data.append("annotate", document.getElementById("annotate").checked ? "true" : "false");
    data.append("blur_faces", document.getElementById("blur_faces").checked ? "true" : "false");
    const events = document.getElementById("events").files[0];
    if (events) data.append("events", events, events.name);
    const button = document.getElementById("submit");
    button.disabled = true;
    say("upload-status", "Uploading…");
    try {
      const { id } = await api("/api/jobs", { method: "POST", body: data });
      say("upload-status", "Queued. Progress is shown in the jobs table.");
      showJob(await api(`/api/jobs/${id}`));
      form.reset(); chosen();
    } catch (e) {
      say("upload-status", `Not queued: ${e.message}`, true);
    } finally { button.disabled = false; }
  });
}

// ------------------------------------------------------------------------------------ live
const live = { id: null, es: null, history: [], labels: [] };

function drawFaces(snap) {
  const canvas = document.getElementById("live-faces");
  const ctx = canvas.getContext("2d");
  const w = snap.width || 16, h = snap.height || 9;
  canvas.height = Math.round(canvas.width * h / w);
  const s = canvas.width / w;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "13px system-ui, sans-serif";
  for (const f of snap.faces) {
    const [x1, y1, x2, y2] = f.box.map(v => v * s);
    ctx.strokeStyle = f.abstain ? "#999" : (COLORS[f.top_label] || "#333");
    ctx.lineWidth = 2;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = ctx.strokeStyle;
    const text = f.abstain ? `#${f.track_id} abstained` : `#${f.track_id} ${f.top_label} ${Math.round(100 * f.top_prob)}%`;
    ctx.fillText(text, x1, Math.max(12, y1 - 4));
  }
  const list = document.getElementById("live-list");
  list.replaceChildren(...(snap.faces.length ? snap.faces.map(f => el("li", {
    text: f.abstain ? `face #${f.track_id}: abstained (${f.abstain_reason})`
      : `face #${f.track_id}: ${f.top_label} ${Math.round(100 * f.top_prob)}%` })) : [el("li", { class: "hint", text: "No face in view." })]));
  document.getElementById("live-latency").textContent =
    snap.latency_ms === null ? "–" : `${Math.round(snap.latency_ms)} ms` + (snap.frames_per_s ? ` · ${snap.frames_per_s} frames/s` : "");
}

function drawTimeline() {
  const canvas = document.getElementById("live-timeline");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 28;
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#ccd"; ctx.lineWidth = 1;
  ctx.strokeRect(pad, 4, W - pad - 4, H - pad);
  ctx.fillStyle = "#667"; ctx.font = "11px system-ui, sans-serif";
  ctx.fillText("1", 12, 12); ctx.fillText("0", 12, H - pad + 4); ctx.fillText("−30 s", pad, H - 8); ctx.fillText("now", W - 30, H - 8);
  const points = live.history;
  if (!points.length) return;
  const tNow = points[points.length - 1].t;
  const x = t => pad + (W - pad - 4) * (1 - (tNow - t) / 30);
  const y = p => 4 + (H - pad) * (1 - p);
  live.labels.forEach((label, j) => {
    ctx.strokeStyle = COLORS[label] || "#333"; ctx.lineWidth = 1.5; ctx.beginPath();
    let pen = false;
    for (const pt of points) {
      if (!pt.smooth) { pen = false; continue; }
      if (pen) ctx.lineTo(x(pt.t), y(pt.smooth[j])); else ctx.moveTo(x(pt.t), y(pt.smooth[j]));
      pen = true;
    }
    ctx.stroke();
  });
}

function onSnapshot(snap) {
  if (!live.labels.length) {
    live.labels = snap.labels;
    document.getElementById("live-legend").replaceChildren(...snap.labels.map(l =>
      el("span", {}, el("i", { style: null, class: `key-${l}` }), l)));
    for (const l of snap.labels) for (const i of document.querySelectorAll(`.key-${l}`)) i.style.background = COLORS[l];
  }
  drawFaces(snap);
  const face = snap.faces[0];
  live.history.push({ t: snap.time_s, smooth: face && !face.abstain ? face.smooth : null });
  while (live.history.length && snap.time_s - live.history[0].t > 30) live.history.shift();
  drawTimeline();
}

function liveEnded(job) {
  document.getElementById("live-start").disabled = false;
  document.getElementById("live-stop").disabled = true;
  if (live.es) { live.es.close(); live.es = null; }
  say("live-status", job ? `Live analysis ${job.status}${job.error ? ": " + job.error : ""}; its results are in the jobs table.` : "Stopped.", !!(job && job.error));
  if (job) showJob(job);
  live.id = null;
}

function setupLive() {
  const form = document.getElementById("live");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const source = document.getElementById("source").value.trim();
    const seconds = parseFloat(document.getElementById("live-seconds").value) || null;
    try {
      const { id } = await api("/api/streams", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ source, max_seconds: seconds }) });
      live.id = id; live.history = [];
      document.getElementById("live-start").disabled = true;
      document.getElementById("live-stop").disabled = false;
      say("live-status", "Running…");
      live.es = new EventSource(`/api/streams/${id}/events`);
      live.es.onmessage = (e) => onSnapshot(JSON.parse(e.data));
      live.es.addEventListener("end", (e) => liveEnded(JSON.parse(e.data)));
      live.es.onerror = () => { if (live.es) { live.es.close(); live.es = null; } };
    } catch (e) { say("live-status", `Not started: ${e.message}`, true); }
  });
  document.getElementById("live-stop").addEventListener("click", async () => {
    if (!live.id) return;
    try { liveEnded(await api(`/api/streams/${live.id}`, { method: "DELETE" })); }
    catch (e) { say("live-status", `Stop failed: ${e.message}`, true); }
  });
}

document.addEventListener("DOMContentLoaded", () => { setupUpload(); setupLive(); loadLimits(); loadJobs(); drawTimeline(); });
