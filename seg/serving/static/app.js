// FastSAM2 browser UI: plain JS, no build step, no network access beyond this server.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $('view');
  const ctx = canvas.getContext('2d');
  const ui = {
    sid: null, kind: null, width: 0, height: 0, numFrames: 0, frame: 0,
    objects: [], current: null,
    masks: {},      // frame -> obj_id -> {data: Uint8Array (column-major), area}
    clicks: {},     // "frame:obj" -> [{x, y, label}] drawn on the canvas
    boxes: {},      // "frame:obj" -> [x1, y1, x2, y2]
    undoStack: [],  // "frame:obj" keys of the prompts sent, for undo
    images: {}, pending: 0, ws: null, playing: null, drag: null,
  };
  window.fastsam2 = ui;  // for tests and debugging

  // ------------------------------------------------------------------ colours (DAVIS palette)
  function paletteColor(id) {
    const rgb = [0, 0, 0];
    let bits = id;
    for (let shift = 7; shift >= 0; shift--) {
      for (let c = 0; c < 3; c++) { rgb[c] |= (bits & 1) << shift; bits >>= 1; }
    }
    return rgb;
  }

  // ------------------------------------------------------------------ COCO RLE
  function decodeRle(rle) {
    const [h, w] = rle.size;
    let counts = rle.counts;
    if (typeof counts === 'string') {  // COCO's compressed string -> run lengths
      const s = counts, out = [];
      let p = 0;
      while (p < s.length) {
        let x = 0, k = 0, more = 1;
        while (more) {
          const c = s.charCodeAt(p) - 48;
          x |= (c & 0x1f) << (5 * k);
          more = c & 0x20; p++; k++;
          if (!more && (c & 0x10)) x |= -1 << (5 * k);
        }
        if (out.length > 2) x += out[out.length - 2];
        out.push(x);
      }
      counts = out;
    }
    const data = new Uint8Array(h * w);  // column-major, as COCO
    let pos = 0, val = 0;
    for (const n of counts) { if (val) data.fill(1, pos, pos + n); pos += n; val ^= 1; }
    return data;
  }

  // ------------------------------------------------------------------ status and requests
  function status(text, state) {
    $('status').textContent = text;
    if (state) document.body.dataset.state = state;
  }

  async function api(method, url, body) {
    ui.pending++;
    try {
      const opts = { method, headers: {} };
      if (body instanceof FormData) opts.body = body;
      else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers['Content-Type'] = 'application/json'; }
      const r = await fetch(url, opts);
      const isJson = (r.headers.get('content-type') || '').includes('json');
      const data = isJson ? await r.json() : null;
      if (!r.ok) throw new Error((data && data.detail) || `${r.status} ${r.statusText}`);
      return data;
    } finally { ui.pending--; }
  }

  function fail(e) { status(`Error: ${e.message}`, 'error'); }

  // ------------------------------------------------------------------ sessions
  async function openSession(info) {
    if (ui.sid) { try { await api('DELETE', `/sessions/${ui.sid}`); } catch (e) { /* expired */ } }
    if (ui.ws) ui.ws.close();
    Object.assign(ui, { sid: info.session_id, kind: info.kind, width: info.width, height: info.height,
      numFrames: info.num_frames, frame: 0, objects: [], current: null, masks: {}, clicks: {},
      boxes: {}, undoStack: [], images: {} });
    canvas.width = info.width; canvas.height = info.height;
    $('frame').max = Math.max(0, info.num_frames - 1); $('frame').value = 0;
    $('track').disabled = info.kind !== 'video';
    for (const fmt of ['davis', 'coco', 'mp4']) {
      const a = $(`export-${fmt}`);
      a.href = `/sessions/${ui.sid}/export?format=${fmt}`;
      a.classList.remove('disabled');
    }
    connect();
    addObject();
    await showFrame(0);
    status(`${info.kind} ${info.width}x${info.height}, ${info.num_frames} frame(s): click the object`, 'ready');
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${proto}://${location.host}/sessions/${ui.sid}/ws`);
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === 'masks') {
        storeMasks(msg.frame, msg.objects, true);
        if (msg.progress) showProgress(msg.progress);
        if (msg.frame === ui.frame) draw();
      } else if (msg.type === 'progress') {
        showProgress(msg);
      } else if (msg.type === 'error') {
        fail(new Error(msg.detail));
      }
    };
    ui.ws = ws;
  }

  function showProgress(p) {
    $('progress').max = Math.max(1, p.total); $('progress').value = p.done;
    if (p.state === 'done') status(`tracked ${p.done} frame(s)`, 'tracked');
    else if (p.state === 'failed') status(`tracking failed: ${p.error}`, 'error');
    else if (p.state === 'running') status(`tracking… ${p.done} / ${p.total}`, 'tracking');
  }

  function storeMasks(frame, objects, replace) {
    const byObj = replace ? {} : (ui.masks[frame] || {});
    for (const o of objects) byObj[o.obj_id] = { data: decodeRle(o.segmentation), area: o.area };
    ui.masks[frame] = byObj;
  }

  // ------------------------------------------------------------------ objects
  function addObject() {
    const id = (ui.objects.length ? Math.max(...ui.objects) : 0) + 1;
    if (id > 254) { fail(new Error('at most 254 objects')); return; }
    ui.objects.push(id); ui.current = id; renderObjects();
  }

  async function removeObject(id) {
    try {
      await api('DELETE', `/sessions/${ui.sid}/objects/${id}`);
    } catch (e) { if (!/unknown object/.test(e.message)) { fail(e); return; } }
    ui.objects = ui.objects.filter((o) => o !== id);
    for (const f in ui.masks) delete ui.masks[f][id];
    for (const k of Object.keys(ui.clicks)) if (k.endsWith(`:${id}`)) delete ui.clicks[k];
    for (const k of Object.keys(ui.boxes)) if (k.endsWith(`:${id}`)) delete ui.boxes[k];
    ui.undoStack = ui.undoStack.filter((k) => !k.endsWith(`:${id}`));
    if (ui.current === id) ui.current = ui.objects[0] || null;
    renderObjects(); draw();
  }

  function renderObjects() {
    const ul = $('objects');
    ul.innerHTML = '';
    for (const id of ui.objects) {
      const li = document.createElement('li');
      li.dataset.obj = id;
      if (id === ui.current) li.classList.add('selected');
      const [r, g, b] = paletteColor(id);
      li.innerHTML = `<span class="swatch" style="background: rgb(${r},${g},${b})"></span>object ${id}` +
        '<button class="remove" title="remove">×</button>';
      li.onclick = (ev) => {
        if (ev.target.classList.contains('remove')) removeObject(id);
        else { ui.current = id; renderObjects(); }
      };
      ul.appendChild(li);
    }
  }

  // ------------------------------------------------------------------ drawing
  function frameImage(i) {
    if (!ui.images[i]) {
      ui.images[i] = new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error(`cannot load frame ${i}`));
        img.src = `/sessions/${ui.sid}/frames/${i}`;
      });
    }
    return ui.images[i];
  }

  async function showFrame(i) {
    ui.frame = i;
    $('frame').value = i;
    $('frame-label').textContent = `${i} / ${Math.max(0, ui.numFrames - 1)}`;
    ui.currentImage = await frameImage(i);
    draw();
  }

  function draw() {
    if (!ui.currentImage) return;
    const w = ui.width, h = ui.height;
    ctx.drawImage(ui.currentImage, 0, 0, w, h);
    const masks = ui.masks[ui.frame] || {};
    const ids = Object.keys(masks).map(Number).filter((id) => ui.objects.includes(id));
    if (ids.length) {
      const alpha = $('opacity').value / 100;
      const img = ctx.getImageData(0, 0, w, h);
      const px = img.data;
      for (const id of ids) {
        const m = masks[id].data, [r, g, b] = paletteColor(id);
        for (let x = 0; x < w; x++) {
          for (let y = 0; y < h; y++) {
            if (!m[x * h + y]) continue;
            const p = (y * w + x) * 4;
            px[p] = (1 - alpha) * px[p] + alpha * r;
            px[p + 1] = (1 - alpha) * px[p + 1] + alpha * g;
            px[p + 2] = (1 - alpha) * px[p + 2] + alpha * b;
          }
        }
      }
      ctx.putImageData(img, 0, 0);
    }
    const size = Math.max(4, Math.round(Math.max(w, h) / 120));
    for (const [key, clicks] of Object.entries(ui.clicks)) {
      if (!key.startsWith(`${ui.frame}:`)) continue;
      for (const c of clicks) {
        ctx.fillStyle = c.label ? '#39d353' : '#ff4d4f';
        ctx.strokeStyle = '#fff'; ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.arc(c.x, c.y, size, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      }
    }
    for (const [key, b] of Object.entries(ui.boxes)) {
      if (!key.startsWith(`${ui.frame}:`)) continue;
      ctx.strokeStyle = '#ffd60a'; ctx.lineWidth = 2;
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
    if (ui.drag && ui.drag.moved) {
      ctx.setLineDash([6, 4]); ctx.strokeStyle = '#ffd60a';
      ctx.strokeRect(ui.drag.x0, ui.drag.y0, ui.drag.x - ui.drag.x0, ui.drag.y - ui.drag.y0);
      ctx.setLineDash([]);
    }
  }

  // ------------------------------------------------------------------ prompts
  async function sendPrompt(body, key) {
    if (!ui.sid) return;
    if (ui.current === null) addObject();
    body.obj_id = ui.current; body.frame = ui.frame;
    status('segmenting…', 'busy');
    try {
      const res = await api('POST', `/sessions/${ui.sid}/prompts`, body);
      ui.undoStack.push(key || `${ui.frame}:${ui.current}`);
      storeMasks(res.frame, res.objects, false);
      draw();
      const o = res.objects.find((x) => x.obj_id === body.obj_id);
      status(`object ${body.obj_id}: ${o ? o.area : 0} px`, 'segmented');
      return true;
    } catch (e) { fail(e); return false; }
  }

  function toImage(ev) {
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) * ui.width / r.width;
    const y = (ev.clientY - r.top) * ui.height / r.height;
    return { x: Math.min(Math.max(x, 0), ui.width), y: Math.min(Math.max(y, 0), ui.height) };
  }

  canvas.addEventListener('contextmenu', (ev) => ev.preventDefault());
  canvas.addEventListener('mousedown', (ev) => {
    if (!ui.sid) return;
    const p = toImage(ev);
    ui.drag = { x0: p.x, y0: p.y, x: p.x, y: p.y, button: ev.button, moved: false };
  });
  canvas.addEventListener('mousemove', (ev) => {
    if (!ui.drag) return;
    const p = toImage(ev);
    ui.drag.x = p.x; ui.drag.y = p.y;
    ui.drag.moved = Math.hypot(p.x - ui.drag.x0, p.y - ui.drag.y0) > Math.max(5, ui.width / 100);
    if (ui.drag.moved) draw();
  });
  canvas.addEventListener('mouseup', async (ev) => {
    const d = ui.drag;
    ui.drag = null;
    if (!d) return;
    if (ui.current === null) addObject();
    const key = `${ui.frame}:${ui.current}`;
    if (d.moved) {
      const box = [Math.min(d.x0, d.x), Math.min(d.y0, d.y), Math.max(d.x0, d.x), Math.max(d.y0, d.y)];
      const prev = ui.boxes[key];
      ui.boxes[key] = box;
      if (!(await sendPrompt({ box }, key))) { if (prev) ui.boxes[key] = prev; else delete ui.boxes[key]; }
    } else {
      const label = (d.button === 2 || $('negative').checked) ? 0 : 1;
      (ui.clicks[key] = ui.clicks[key] || []).push({ x: d.x0, y: d.y0, label });
      if (!(await sendPrompt({ points: [[d.x0, d.y0]], labels: [label] }, key))) ui.clicks[key].pop();
    }
    draw();
  });

  $('send-text').onclick = () => {
    const text = $('text').value.trim();
    if (text) sendPrompt({ text });
  };

  $('undo').onclick = async () => {
    if (!ui.sid || !ui.undoStack.length) return;
    try {
      const res = await api('POST', `/sessions/${ui.sid}/undo`);
      const key = ui.undoStack.pop();
      // the last prompt was a click if that (frame, object) has clicks drawn; else a box / text
      if (ui.clicks[key] && ui.clicks[key].length) ui.clicks[key].pop(); else delete ui.boxes[key];
      storeMasks(res.frame, res.objects, true);
      draw();
      status('undone', 'ready');
    } catch (e) { fail(e); }
  };

  $('add-object').onclick = () => { if (ui.sid) addObject(); };
  $('opacity').oninput = draw;
  $('frame').oninput = () => showFrame(Number($('frame').value)).catch(fail);
  $('play').onclick = () => {
    if (ui.playing) { clearInterval(ui.playing); ui.playing = null; $('play').textContent = 'Play'; return; }
    $('play').textContent = 'Pause';
    ui.playing = setInterval(() => showFrame((ui.frame + 1) % Math.max(1, ui.numFrames)).catch(fail), 150);
  };

  $('track').onclick = async () => {
    if (!ui.sid || ui.kind !== 'video') return;
    status('tracking…', 'tracking');
    $('progress').value = 0;
    try {
      const p = await api('POST', `/sessions/${ui.sid}/propagate`, { direction: 'both' });
      showProgress(p);
    } catch (e) { fail(e); }
  };

  // ------------------------------------------------------------------ loading
  $('upload').onclick = async () => {
    const f = $('file').files[0];
    if (!f) { fail(new Error('choose a file first')); return; }
    const form = new FormData();
    form.append('file', f, f.name);
    status(`uploading ${f.name}…`, 'busy');
    try { await openSession(await api('POST', '/sessions', form)); } catch (e) { fail(e); }
  };

  $('open-path').onclick = async () => {
    const path = $('path').value.trim();
    if (!path) { fail(new Error('type a server path first')); return; }
    status(`opening ${path}…`, 'busy');
    try { await openSession(await api('POST', '/sessions/path', { path })); } catch (e) { fail(e); }
  };

  window.addEventListener('beforeunload', () => {
    if (ui.sid) navigator.sendBeacon && fetch(`/sessions/${ui.sid}`, { method: 'DELETE', keepalive: true });
  });
})();
