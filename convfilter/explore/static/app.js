// convfilter explore: the controls write the URL query, the server runs the real layer, the page shows it.
// Plain JavaScript, no build step, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const MAX_PAD_SHOWN = 64; // padding drawn around the input, per side (more is marked as cut)
let meta = null;
let current = null; // the summary of the view on screen
let sequence = 0; // the newest request; older answers are dropped
let hoverAt = null;
let hoverBusy = false;
let hoverWanted = null;
window.convfilterTimings = []; // ms from a change to the new output on screen

function api(path, query) {
  const q = new URLSearchParams(query || {});
  q.set("token", token);
  return `${path}?${q.toString()}`;
}

async function getJSON(path, query) {
  const response = await fetch(api(path, query));
  const data = await response.json().catch(() => ({ error: `Error: the server answered ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `Error: the server answered ${response.status}`);
  return data;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// --- the controls <-> the URL query --------------------------------------------------------------

function pair(idY, idX) {
  const y = $(idY).value.trim(), x = $(idX).value.trim();
  if (!y && !x) return "";
  return `${y || x},${x || y}`;
}

function setPair(idY, idX, text, fallback) {
  const parts = (text || fallback || "").split(",");
  $(idY).value = parts[0] || "";
  $(idX).value = parts.length > 1 ? parts[1] : parts[0] || "";
}

function readControls() {
  const q = {};
  const image = $("image").value;
  if (image && image !== meta.default_image) q.image = image;
  const mode = $("mode").value;
  if (mode !== "conv") {
    q.pool = mode;
  } else {
    q.kernel = $("kernel").value === "custom" ? gridSpec() : $("kernel").value;
    const opts = kernelOptions();
    for (const key of ["sigma", "seed"]) {
      if (opts.includes(key) && $(key).value.trim()) q[key] = $(key).value.trim();
    }
    if ($("kernel").value === "custom" && $("normalize").checked) q.normalize = "1";
    const dilation = pair("dilation-y", "dilation-x");
    if (dilation && dilation !== "1,1") q.dilation = dilation;
    if ($("border").value !== "zero") q.border = $("border").value;
    if ($("convolve").checked) q.convolve = "1";
    const bias = $("bias").value.trim();
    if (bias && Number(bias) !== 0) q.bias = bias;
    if ($("range").value !== "auto") q.range = $("range").value;
    if ($("transpose").checked) {
      q.transpose = "1";
      const op = pair("output-padding-y", "output-padding-x");
      if (op) q.output_padding = op;
    }
  }
  if ((mode !== "conv" || kernelOptions().includes("size")) && $("size").value.trim()) q.size = $("size").value.trim();
  const stride = pair("stride-y", "stride-x");
  if (stride && (stride !== "1,1" || mode !== "conv")) q.stride = stride;
  const padding = $("padding").value.trim();
  if (padding && padding !== "valid") q.padding = padding;
  return q;
}

function writeControls(q) {
  $("image").value = q.image || meta.default_image;
  $("mode").value = q.pool || "conv";
  const named = q.kernel === undefined || q.kernel in meta.kernels;
  $("kernel").value = named ? q.kernel || "blur" : "custom";
  for (const key of ["size", "sigma", "seed"]) $(key).value = q[key] || "";
  $("normalize").checked = q.normalize === "1";
  setPair("stride-y", "stride-x", q.stride, q.pool ? "" : "1,1");
  $("padding").value = q.padding || "valid";
  setPair("dilation-y", "dilation-x", q.dilation, "1,1");
  $("border").value = q.border || "zero";
  $("convolve").checked = q.convolve === "1";
  $("bias").value = q.bias || "0";
  $("range").value = q.range || "auto";
  $("transpose").checked = q.transpose === "1";
  setPair("output-padding-y", "output-padding-x", q.output_padding, "");
  if (!named) drawGrid(parseSpec(q.kernel), true);
  enableControls();
}

function kernelOptions() {
  const k = meta.kernels[$("kernel").value];
  return k ? k.options : [];
}

function enableControls() {
  const conv = $("mode").value === "conv";
  for (const el of document.querySelectorAll(".conv-only")) el.classList.toggle("disabled", !conv);
  for (const el of document.querySelectorAll(".conv-only input, .conv-only select")) el.disabled = !conv;
  const opts = kernelOptions();
  const sizeOn = !conv || opts.includes("size");
  $("size").disabled = !sizeOn;
  $("size-label").classList.toggle("disabled", !sizeOn);
  for (const key of ["sigma", "seed"]) {
    const on = conv && opts.includes(key);
    $(key).disabled = !on;
    $(`${key}-label`).classList.toggle("disabled", !on);
  }
  $("normalize").disabled = !conv || $("kernel").value !== "custom";
  const transposed = conv && $("transpose").checked;
  for (const id of ["output-padding-y", "output-padding-x"]) $(id).disabled = !transposed;
}

// --- the kernel grid -----------------------------------------------------------------------------

function parseSpec(spec) {
  return String(spec).split(";").map((row) => row.split(/[ ,]+/).filter((v) => v !== "").map(Number));
}

function gridSpec() {
  return Array.from($("grid").rows)
    .map((row) => Array.from(row.querySelectorAll("input")).map((input) => input.value.trim() || "0").join(","))
    .join(";");
}

function drawGrid(weights, editable) {
  const table = $("grid");
  table.innerHTML = "";
  (weights || []).forEach((row, a) => {
    const tr = table.insertRow();
    row.forEach((value, b) => {
      const input = document.createElement("input");
      input.value = Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
      input.dataset.testid = `weight-${a}-${b}`;
      input.setAttribute("data-testid", `weight-${a}-${b}`);
      input.addEventListener("change", () => {
        $("kernel").value = "custom";
        enableControls();
        update();
      });
      tr.insertCell().appendChild(input);
    });
  });
  table.dataset.editable = editable ? "1" : "0";
}

// --- running a view ------------------------------------------------------------------------------

async function update(fromState) {
  const started = performance.now();
  const mine = ++sequence;
  const q = fromState || readControls();
  let view;
  try {
    view = await getJSON("/api/view", q);
  } catch (err) {
    if (mine === sequence) showError(err.message);
    return;
  }
  if (mine !== sequence) return;
  showError("");
  const url = new URLSearchParams(view.query);
  url.set("token", token);
  history.replaceState(null, "", `?${url.toString()}`);
  document.body.dataset.view = view.key; // the output shows it once its dataset.key is the same
  const output = $("output");
  output.onload = () => {
    if (mine !== sequence) return;
    const ms = performance.now() - started;
    window.convfilterTimings.push(ms);
    output.dataset.updateMs = ms.toFixed(1);
    output.dataset.key = view.key;
  };
  fit(output, view.output_shape[0], view.output_shape[1]);
  fit($("diverging"), view.output_shape[0], view.output_shape[1]);
  output.src = `data:image/png;base64,${view.png}`; // the PNG the server computed, inline
  $("diverging").src = api(`/api/diverging/${view.key}.png`);
  const inputChanged = !current || current.image !== view.image || JSON.stringify(current.pads) !== JSON.stringify(view.pads);
  current = view;
  writeControls(view.query);
  if (view.kernel_grid) drawGrid(view.kernel_grid, $("kernel").value === "custom");
  $("output-shape").textContent = `${view.output_shape[0]} × ${view.output_shape[1]}`;
  $("input-shape").textContent = `${view.input_shape[0]} × ${view.input_shape[1]}`;
  $("range-used").textContent = `(--range ${view.range}: ${view.range_mode})`;
  $("value-range").textContent = view.minimum === null ? "" : `(${fmt(view.minimum)} … ${fmt(view.maximum)})`;
  $("shape-text").textContent = view.shape_text;
  $("command").textContent = view.command;
  $("keras-code").textContent = view.keras_code;
  $("dot-product").hidden = true;
  if (inputChanged) await drawInput(view);
  clearOverlay();
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(7)));
}

// --- the input with its padding ------------------------------------------------------------------

let frameShown = null; // {top, left, rows, cols}: what the canvas shows, in input coordinates

function drawInput(view) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const pads = view.pads;
      const top = Math.min(pads.top, MAX_PAD_SHOWN), bottom = Math.min(pads.bottom, MAX_PAD_SHOWN);
      const left = Math.min(pads.left, MAX_PAD_SHOWN), right = Math.min(pads.right, MAX_PAD_SHOWN);
      const [h, w] = view.input_shape;
      const canvas = $("input"), overlay = $("overlay");
      canvas.width = overlay.width = w + left + right;
      canvas.height = overlay.height = h + top + bottom;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--pad") || "#f2c14e";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, left, top);
      frameShown = { top, left, rows: canvas.height, cols: canvas.width };
      fitOverlay();
      resolve();
    };
    img.src = api(`/api/input/${view.image}.png`);
  });
}

const FRAME = 360; // CSS pixels of each picture's frame

function fit(element, height, width) {
  // Scale a picture to fill its frame, whole pixels kept square (pixelated), small pictures enlarged.
  const scale = Math.min(FRAME / width, FRAME / height);
  element.style.width = `${width * scale}px`;
  element.style.height = `${height * scale}px`;
}

function fitOverlay() {
  const canvas = $("input"), overlay = $("overlay");
  fit(canvas, canvas.height, canvas.width);
  fit(overlay, canvas.height, canvas.width);
}

function clearOverlay() {
  const overlay = $("overlay");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
}

function highlight(taps) {
  // Each tap as a square at least 3 CSS pixels wide, the window's extent as a frame around them.
  clearOverlay();
  if (!frameShown || !taps.length) return;
  const overlay = $("overlay");
  const ctx = overlay.getContext("2d");
  const scale = overlay.width / Math.max(1, overlay.clientWidth); // canvas pixels per CSS pixel
  const mark = Math.max(1, 3 * scale);
  ctx.fillStyle = "rgba(228, 87, 46, 0.85)";
  const rows = [], cols = [];
  for (const t of taps) {
    const y = t.row + frameShown.top, x = t.col + frameShown.left;
    if (y < 0 || x < 0 || y >= frameShown.rows || x >= frameShown.cols) continue;
    rows.push(y);
    cols.push(x);
    ctx.fillRect(x + 0.5 - mark / 2, y + 0.5 - mark / 2, mark, mark);
  }
  if (!rows.length) return;
  const y0 = Math.min(...rows), x0 = Math.min(...cols);
  ctx.strokeStyle = "rgba(228, 87, 46, 1)";
  ctx.lineWidth = 2 * scale;
  const margin = mark / 2 + ctx.lineWidth;
  ctx.strokeRect(x0 + 0.5 - margin, y0 + 0.5 - margin, Math.max(...cols) - x0 + 2 * margin, Math.max(...rows) - y0 + 2 * margin);
}

// --- hovering an output pixel --------------------------------------------------------------------

function pixelAt(img, event) {
  const box = img.getBoundingClientRect();
  const col = Math.floor(((event.clientX - box.left) / box.width) * img.naturalWidth);
  const row = Math.floor(((event.clientY - box.top) / box.height) * img.naturalHeight);
  if (row < 0 || col < 0 || row >= img.naturalHeight || col >= img.naturalWidth) return null;
  return [row, col];
}

function onHover(event) {
  if (!current) return;
  const at = pixelAt(event.currentTarget, event);
  if (!at || (hoverAt && at[0] === hoverAt[0] && at[1] === hoverAt[1])) return;
  hoverAt = at;
  hoverWanted = { key: current.key, row: at[0], col: at[1] };
  if (!hoverBusy) fetchHover();
}

async function fetchHover() {
  hoverBusy = true;
  while (hoverWanted) {
    const wanted = hoverWanted;
    hoverWanted = null;
    try {
      const data = await getJSON("/api/pixel", wanted);
      if (current && wanted.key === current.key) showWindow(data);
    } catch (err) {
      showError(err.message);
    }
  }
  hoverBusy = false;
}

function showWindow(data) {
  const box = $("dot-product");
  const taps = data.taps;
  const pool = data.kind.startsWith("pool");
  const terms = taps.map((t) => (pool ? fmt(t.value) : `${fmt(t.value)}×${fmt(t.weight)}`));
  let line;
  if (data.kind === "pool-max") line = `max(${terms.join(", ")})`;
  else if (data.kind === "pool-avg") {
    const counted = taps.filter((t) => t.inside);
    line = `mean of ${counted.length}: (${counted.map((t) => fmt(t.value)).join(" + ")}) / ${counted.length}`;
  } else {
    line = terms.length ? terms.join(" + ") : "(no input pixel scatters here)";
    if (data.bias) line += ` + ${fmt(data.bias)} (bias)`;
  }
  const what = data.kind === "transpose" ? "input pixels scattering into" : "window of";
  box.innerHTML = "";
  const head = document.createElement("div");
  head.textContent = `Output row ${data.row}, col ${data.col} (${what} it, ${taps.length} taps):`;
  const sum = document.createElement("div");
  sum.className = "sum";
  sum.textContent = `${line} = ${data.value_text}`;
  box.append(head, sum, tapTable(data));
  box.hidden = false;
  highlight(taps);
}

function tapTable(data) {
  // The window as it lies on the input: taps, dilation gaps between them, padding cells hatched.
  const table = document.createElement("table");
  const taps = data.taps;
  if (!taps.length) return table;
  const rows = taps.map((t) => t.row), cols = taps.map((t) => t.col);
  const r0 = Math.min(...rows), c0 = Math.min(...cols);
  const height = Math.max(...rows) - r0 + 1, width = Math.max(...cols) - c0 + 1;
  if (height > 15 || width > 15) {
    const list = document.createElement("table");
    for (const t of taps.slice(0, 60)) {
      const tr = list.insertRow();
      tr.insertCell().textContent = `row ${t.row}, col ${t.col}`;
      tr.insertCell().textContent = t.weight === undefined ? fmt(t.value) : `${fmt(t.value)}×${fmt(t.weight)}`;
    }
    return list;
  }
  const at = new Map(taps.map((t) => [`${t.row},${t.col}`, t]));
  for (let r = r0; r < r0 + height; r++) {
    const tr = table.insertRow();
    for (let c = c0; c < c0 + width; c++) {
      const td = tr.insertCell();
      const t = at.get(`${r},${c}`);
      if (!t) {
        td.className = "gap";
        td.textContent = "·";
        continue;
      }
      td.className = t.inside ? "tap" : "pad";
      td.title = `input row ${t.row}, col ${t.col}${t.inside ? "" : " (padding)"}`;
      td.textContent = t.weight === undefined ? fmt(t.value) : `${fmt(t.value)}×${fmt(t.weight)}`;
    }
  }
  return table;
}

// --- uploads -------------------------------------------------------------------------------------

async function upload(file) {
  if (!file) return;
  let response, data;
  try {
    response = await fetch(api("/api/upload"), { method: "POST", body: file });
    data = await response.json();
  } catch (err) {
    showError(`Error: ${file.name}: the upload failed (${err.message})`);
    return;
  }
  if (!response.ok) {
    showError(data.error);
    return;
  }
  meta = await getJSON("/api/meta");
  fillImages();
  $("image").value = data.image;
  update();
}

// --- start ---------------------------------------------------------------------------------------

function fillSelect(select, values, labels) {
  select.innerHTML = "";
  values.forEach((value, i) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = labels ? labels[i] : value;
    select.appendChild(option);
  });
}

function fillImages() {
  const keep = $("image").value;
  fillSelect($("image"), meta.images.map((i) => i.key), meta.images.map((i) => i.name));
  if (keep) $("image").value = keep;
}

async function start() {
  try {
    meta = await getJSON("/api/meta");
  } catch (err) {
    showError(err.message);
    return;
  }
  fillImages();
  const names = Object.keys(meta.kernels);
  fillSelect($("kernel"), [...names, "custom"], [...names, "custom (your weights)"]);
  fillSelect($("border"), meta.borders);
  fillSelect($("range"), meta.ranges);
  const q = Object.fromEntries(new URLSearchParams(location.search));
  delete q.token;
  writeControls(q);
  for (const el of document.querySelectorAll("#controls input, #controls select")) {
    if (el.id === "upload" || el.closest("#grid")) continue;
    el.addEventListener("change", () => {
      if (el.id === "kernel" && el.value !== "custom") $("size").value = "";
      if (el.id === "mode") $("stride-y").value = $("stride-x").value = "";
      enableControls();
      update();
    });
  }
  $("upload").addEventListener("change", (e) => upload(e.target.files[0]));
  for (const id of ["output", "diverging"]) {
    $(id).addEventListener("mousemove", onHover);
    $(id).addEventListener("mouseleave", () => { hoverAt = null; clearOverlay(); });
  }
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
  drop.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    upload(e.dataTransfer.files[0]);
  });
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($(button.dataset.copy).textContent));
  }
  window.addEventListener("resize", fitOverlay);
  await update(q);
}

start();
