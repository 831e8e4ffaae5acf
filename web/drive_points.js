// Track Object (DRIVE): a canvas to pick the object by clicking on a frame of the clip.
//
// It shows frame `frame_index` of the clip: the file Load Video (DRIVE) reads, scaled and cropped as its
// size_policy / longer_side do (drive_ops/core/frame_plan.py), or, once Track Object has run, the exact
// frame it tracked from. Click = positive point, Shift+click (or the mode button) = negative point, drag
// on the frame = the box; drag a point to move it, click a point to delete it. Everything is written to
// Track Object's own widgets (positive_points, negative_points, box, picked_frame_size) in pixels of the
// frames the tracker receives, so a saved workflow keeps the pick and the server checks the size.
const app = window.comfyAPI?.app?.app ?? window.app;
const api = window.comfyAPI?.api?.api ?? app.api;

const NODE_TYPE = 'DRIVE_TrackObject';
const LOADER_TYPE = 'DRIVE_LoadVideo';
const MULTIPLE = 8;
const FILE_FPS = 12;  // frame -> time in the file before a run (the demo clip's rate; a run shows the exact frame)
const MARGIN = 0.04;  // share of the frame drawn around it: clicks there are outside the frame
const HIT_PX = 9;     // display pixels within which a click grabs a point
const DRAG_PX = 6;    // display pixels of movement that turn a click into a drag

const roundHalfEven = (v) => {  // Python's round(), which the loader's size plan uses
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

// The loader's working size of a srcW x srcH clip (drive_ops/core/frame_plan.py: plan_frame_size).
function framePlan(srcW, srcH, policy, longerSide) {
  let rw = srcW, rh = srcH;
  if (policy === 'keep') return { rw, rh, left: 0, top: 0, w: srcW, h: srcH };
  if (policy === 'fit_longer_side') {
    const s = longerSide / Math.max(srcW, srcH);
    rw = Math.max(1, roundHalfEven(srcW * s));
    rh = Math.max(1, roundHalfEven(srcH * s));
  }
  const w = Math.floor(rw / MULTIPLE) * MULTIPLE, h = Math.floor(rh / MULTIPLE) * MULTIPLE;
  return { rw, rh, left: Math.floor((rw % MULTIPLE) / 2), top: Math.floor((rh % MULTIPLE) / 2), w, h };
}

const widget = (node, name) => (node.widgets || []).find((w) => w.name === name);

function parsePoints(text, normalized, size) {
  if (!text || !String(text).trim()) return [];
  try {
    let data = JSON.parse(text);
    if (!Array.isArray(data)) data = [data];
    return data.map((p) => (Array.isArray(p) ? { x: +p[0], y: +p[1] } : { x: +p.x, y: +p.y }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .map((p) => (normalized && size ? { x: p.x * size.w, y: p.y * size.h } : p));
  } catch (e) {
    return null;
  }
}

function parseBox(text) {
  if (!text || !String(text).trim()) return null;
  try {
    const b = JSON.parse(text);
    const box = Array.isArray(b[0]) ? b[0] : b;
    return box.length === 4 && box.every(Number.isFinite) ? box.map(Number) : null;
  } catch (e) {
    return null;
  }
}

function parseSize(text) {
  const m = /^\s*(\d+)\s*x\s*(\d+)\s*$/i.exec(text || '');
  return m ? { w: +m[1], h: +m[2] } : null;
}

// Where the frame comes from: the upstream Load Video's file and settings, or null.
function loaderSource(node) {
  const input = (node.inputs || []).find((i) => i.name === 'images');
  const link = input && input.link != null ? node.graph?.links?.[input.link] ?? node.graph?.links?.get?.(input.link) : null;
  const src = link ? node.graph.getNodeById(link.origin_id) : null;
  if (!src || src.type !== LOADER_TYPE) return null;
  const v = (name) => widget(src, name)?.value;
  const video = v('video');
  if (!video) return null;
  const name = String(video).replace(/\s*\[input\]$/, '');
  const slash = name.lastIndexOf('/');
  const params = new URLSearchParams({ filename: name.slice(slash + 1), type: 'input', subfolder: slash < 0 ? '' : name.slice(0, slash) });
  return { url: api.apiURL(`/view?${params}`), skip: +v('skip_first_frames') || 0, nth: +v('select_every_nth') || 1,
    policy: v('size_policy') || 'keep', longer: +v('longer_side') || 512 };
}

class PickCanvas {
  constructor(node) {
    this.node = node;
    this.negativeMode = false;
    this.size = null;        // {w, h}: the frames the tracker receives
    this.image = null;       // a canvas holding the frame at that size
    this.key = '';
    this.drag = null;
    this.note = '';
    this.ranFrame = null;    // {url, frame, w, h}: the frame of the last run

    this.root = document.createElement('div');
    this.root.className = 'drive-pick';
    this.root.style.cssText = 'display:flex;flex-direction:column;gap:4px;width:100%;height:100%;font:12px sans-serif;color:#ddd';
    const bar = document.createElement('div');
    bar.style.cssText = 'display:flex;gap:4px;align-items:center';
    const button = (text, title, onClick) => {
      const b = document.createElement('button');
      b.textContent = text;
      b.title = title;
      b.style.cssText = 'font:12px sans-serif;padding:1px 6px;cursor:pointer';
      b.addEventListener('click', (e) => { e.stopPropagation(); onClick(); });
      bar.appendChild(b);
      return b;
    };
    this.modeButton = button('+ positive', 'Points the next clicks add (Shift+click adds the other kind)', () => {
      this.negativeMode = !this.negativeMode;
      this.modeButton.textContent = this.negativeMode ? '\u2212 negative' : '+ positive';
    });
    this.modeButton.className = 'drive-pick-mode';
    button('clear box', 'Remove the box', () => { this.write({ box: null }); });
    button('clear all', 'Remove every point and the box', () => { this.write({ positive: [], negative: [], box: null }); });
    this.root.appendChild(bar);
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'drive-pick-canvas';
    this.canvas.style.cssText = 'width:100%;min-height:0;flex:1 1 auto;object-fit:contain;cursor:crosshair;background:#222;touch-action:none';
    this.root.appendChild(this.canvas);
    this.noteLine = document.createElement('div');
    this.noteLine.className = 'drive-pick-note';
    this.noteLine.style.cssText = 'min-height:15px;color:#fc6;white-space:nowrap;overflow:hidden;text-overflow:ellipsis';
    this.root.appendChild(this.noteLine);

    for (const type of ['pointerdown', 'pointermove', 'pointerup']) {
      this.canvas.addEventListener(type, (e) => this[type](e));
    }
    this.canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    for (const name of ['positive_points', 'negative_points', 'box', 'frame_index', 'points_normalized']) {
      const w = widget(node, name);
      if (!w) continue;
      const callback = w.callback;
      w.callback = (...args) => { const r = callback?.apply(w, args); this.refresh(); return r; };
    }
    this.timer = setInterval(() => this.refresh(), 1000);
  }

  setNote(text) {
    this.note = text;
    this.noteLine.textContent = text;
    this.noteLine.title = text;
  }

  // Read the picks from the widgets (pixels of `this.size`).
  state() {
    const n = this.node, normalized = !!widget(n, 'points_normalized')?.value;
    return {
      positive: parsePoints(widget(n, 'positive_points')?.value, normalized, this.size) || [],
      negative: parsePoints(widget(n, 'negative_points')?.value, normalized, this.size) || [],
      box: parseBox(widget(n, 'box')?.value),
    };
  }

  // Write picks into the widgets, as whole pixels of the frames the tracker receives.
  write(change) {
    const n = this.node, s = { ...this.state(), ...change };
    const pts = (list) => JSON.stringify(list.map((p) => ({ x: Math.round(p.x), y: Math.round(p.y) })));
    const set = (name, value) => {
      const w = widget(n, name);
      if (!w || w.value === value) return;
      w.value = value;
    };
    set('points_normalized', false);
    set('positive_points', pts(s.positive));
    set('negative_points', pts(s.negative));
    set('box', s.box ? JSON.stringify(s.box.map(Math.round)) : '');
    if (this.size) set('picked_frame_size', `${this.size.w}x${this.size.h}`);
    n.setDirtyCanvas?.(true, true);
    n.graph?.change?.();
    this.draw();
  }

  // Reload the frame when its source, the frame index or the loader's sizing changed.
  refresh() {
    const frame = +widget(this.node, 'frame_index')?.value || 0;
    const src = loaderSource(this.node);
    const ran = this.ranFrame && this.ranFrame.frame === frame ? this.ranFrame : null;
    const key = JSON.stringify([frame, src, ran && ran.url]);
    if (key !== this.key) {
      this.key = key;
      if ((ran || src) && this.note.startsWith('Connect')) this.setNote('');
      if (ran) this.loadImage(ran.url, ran.w, ran.h);
      else if (src) this.loadVideoFrame(src, frame);
      else { this.image = null; this.setSize(null); this.setNote('Connect Load Video (DRIVE) to images, or run once, to pick on a frame.'); }
    }
    this.draw();
  }

  setSize(size) {
    const old = parseSize(widget(this.node, 'picked_frame_size')?.value);
    this.size = size;
    if (!size || !old || (old.w === size.w && old.h === size.h)) return;
    const { positive, negative, box } = this.state();
    if (!positive.length && !negative.length && !box) { this.write({}); return; }
    const sameShape = Math.abs(old.w / old.h - size.w / size.h) < 0.01;
    if (!sameShape) {  // another shape: moving the points would misplace them; the server refuses the run
      this.setNote(`Picked on ${old.w}x${old.h} frames, these are ${size.w}x${size.h} (another shape): ` +
        'points not moved, pick them again (or clear all).');
      return;
    }
    const sx = size.w / old.w, sy = size.h / old.h;
    const scale = (list) => list.map((p) => ({ x: p.x * sx, y: p.y * sy }));
    this.write({ positive: scale(positive), negative: scale(negative),
      box: box && [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy] });
    this.setNote(`Points rescaled from ${old.w}x${old.h} to ${size.w}x${size.h} frames: check them.`);
  }

  loadImage(url, w, h) {
    const img = new Image();
    img.onload = () => {
      const c = document.createElement('canvas');
      c.width = w || img.naturalWidth;
      c.height = h || img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
      this.image = c;
      this.setNote('');
      this.setSize({ w: c.width, h: c.height });
      this.draw();
    };
    img.src = url;
  }

  loadVideoFrame(src, frame) {
    const video = document.createElement('video');
    video.muted = true;
    video.preload = 'auto';
    video.crossOrigin = 'anonymous';
    video.addEventListener('loadedmetadata', () => {
      const plan = framePlan(video.videoWidth, video.videoHeight, src.policy, src.longer);
      this.plan = plan;
      this.setSize({ w: plan.w, h: plan.h });
      this.draw();
      const t = (src.skip + frame * src.nth) / FILE_FPS;
      video.currentTime = Math.min(t, Math.max(0, video.duration - 1e-3));
    }, { once: true });
    video.addEventListener('seeked', () => {
      const plan = this.plan, c = document.createElement('canvas');
      c.width = plan.w;
      c.height = plan.h;
      const sx = video.videoWidth / plan.rw, sy = video.videoHeight / plan.rh;  // resized px -> source px
      c.getContext('2d').drawImage(video, plan.left * sx, plan.top * sy, plan.w * sx, plan.h * sy, 0, 0, plan.w, plan.h);
      this.image = c;
      this.draw();
    }, { once: true });
    video.addEventListener('error', () => this.setNote('Could not read the video for the canvas.'), { once: true });
    video.src = src.url;
  }

  margin() { return this.size ? Math.round(MARGIN * Math.max(this.size.w, this.size.h)) : 0; }

  // Client coordinates -> frame pixels (display scale and zoom through the element's on-screen box).
  toFrame(e) {
    const r = this.canvas.getBoundingClientRect(), m = this.margin();
    const cw = this.size.w + 2 * m, ch = this.size.h + 2 * m;
    const scale = Math.min(r.width / cw, r.height / ch);  // object-fit: contain
    const ox = r.left + (r.width - cw * scale) / 2, oy = r.top + (r.height - ch * scale) / 2;
    return { x: (e.clientX - ox) / scale - m, y: (e.clientY - oy) / scale - m, perPx: scale };
  }

  inside(p) { return p.x >= 0 && p.y >= 0 && p.x <= this.size.w && p.y <= this.size.h; }

  hit(p) {
    const s = this.state(), radius = HIT_PX / p.perPx;
    for (const kind of ['positive', 'negative']) {
      const i = s[kind].findIndex((q) => Math.hypot(q.x - p.x, q.y - p.y) <= radius);
      if (i >= 0) return { kind, i };
    }
    return null;
  }

  pointerdown(e) {
    if (e.button !== 0 || !this.size) return;
    e.stopPropagation();
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    const p = this.toFrame(e);
    this.drag = { start: p, client: [e.clientX, e.clientY], grabbed: this.hit(p), moved: false, negative: e.shiftKey !== this.negativeMode };
  }

  pointermove(e) {
    const d = this.drag;
    if (!d) return;
    e.stopPropagation();
    if (Math.hypot(e.clientX - d.client[0], e.clientY - d.client[1]) >= DRAG_PX) d.moved = true;
    d.now = this.toFrame(e);
    if (d.moved && d.grabbed) {
      const s = this.state(), p = d.now;
      if (this.inside(p)) { s[d.grabbed.kind][d.grabbed.i] = { x: p.x, y: p.y }; this.write(s); }
    } else this.draw();
  }

  pointerup(e) {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    e.stopPropagation();
    const p = this.toFrame(e), s = this.state();
    if (d.grabbed && !d.moved) {  // a click on a point deletes it
      s[d.grabbed.kind].splice(d.grabbed.i, 1);
      this.write(s);
      this.setNote('');
      return;
    }
    if (d.grabbed) { this.setNote(this.inside(p) ? '' : 'A point cannot leave the frame: kept at its last place.'); this.draw(); return; }
    if (d.moved) {  // a drag draws the box, clipped to the frame
      const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
      const x1 = clip(Math.min(d.start.x, p.x), this.size.w), x2 = clip(Math.max(d.start.x, p.x), this.size.w);
      const y1 = clip(Math.min(d.start.y, p.y), this.size.h), y2 = clip(Math.max(d.start.y, p.y), this.size.h);
      if (x2 - x1 < 1 || y2 - y1 < 1) { this.setNote('The box lies outside the frame: ignored.'); this.draw(); return; }
      this.write({ box: [x1, y1, x2, y2] });
      this.setNote(this.inside(d.start) && this.inside(p) ? '' : 'The box was clipped to the frame.');
      return;
    }
    if (!this.inside(p)) {
      this.setNote(`Click outside the ${this.size.w}x${this.size.h} frame (${Math.round(p.x)}, ${Math.round(p.y)}): ignored.`);
      this.draw();
      return;
    }
    s[d.negative ? 'negative' : 'positive'].push({ x: p.x, y: p.y });
    this.write(s);
    this.setNote('');
  }

  draw() {
    const c = this.canvas, ctx = c.getContext('2d');
    if (!this.size) { c.width = 200; c.height = 120; ctx.fillStyle = '#333'; ctx.fillRect(0, 0, 200, 120); return; }
    const m = this.margin(), { w, h } = this.size;
    if (c.width !== w + 2 * m || c.height !== h + 2 * m) { c.width = w + 2 * m; c.height = h + 2 * m; }
    ctx.fillStyle = '#1a1a1a';
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.save();
    ctx.translate(m, m);
    if (this.image) ctx.drawImage(this.image, 0, 0, w, h);
    else { ctx.fillStyle = '#444'; ctx.fillRect(0, 0, w, h); }
    ctx.strokeStyle = '#888';
    ctx.lineWidth = Math.max(1, w / 400);
    ctx.strokeRect(0, 0, w, h);
    const s = this.state(), r = Math.max(4, Math.max(w, h) / 80);
    const outside = [];
    const dot = (p, colour) => {
      if (!this.inside(p)) { outside.push(p); return; }
      ctx.beginPath();
      ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      ctx.fillStyle = colour;
      ctx.fill();
      ctx.lineWidth = r / 3;
      ctx.strokeStyle = '#000';
      ctx.stroke();
    };
    if (s.box) {
      ctx.strokeStyle = '#4af';
      ctx.lineWidth = r / 2;
      ctx.strokeRect(s.box[0], s.box[1], s.box[2] - s.box[0], s.box[3] - s.box[1]);
    }
    const d = this.drag;
    if (d && d.moved && !d.grabbed && d.now) {
      ctx.setLineDash([r, r]);
      ctx.strokeStyle = '#4af';
      ctx.strokeRect(d.start.x, d.start.y, d.now.x - d.start.x, d.now.y - d.start.y);
      ctx.setLineDash([]);
    }
    s.positive.forEach((p) => dot(p, '#3d3'));
    s.negative.forEach((p) => dot(p, '#e33'));
    ctx.restore();
    if (outside.length && !this.note) {
      this.setNote(`${outside.length} point(s) outside the ${w}x${h} frame are ignored by the canvas and refused by the tracker.`);
    }
  }

  remove() { clearInterval(this.timer); }
}

app.registerExtension({
  name: 'DRIVE.TrackObjectCanvas',
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      const pick = new PickCanvas(this);
      this.drivePick = pick;
      const w = this.addDOMWidget('pick_canvas', 'drive_pick', pick.root, {
        serialize: false, hideOnZoom: false, getMinHeight: () => 260, getHeight: () => 320,
      });
      w.serialize = false;  // not a value of the node: kept out of widgets_values and the prompt
      w.computeSize = (width) => [width, 320];
      this.setSize([Math.max(this.size[0], 360), this.computeSize()[1]]);
      requestAnimationFrame(() => pick.refresh());
      return r;
    };
    const removed = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      this.drivePick?.remove();
      return removed?.apply(this, arguments);
    };
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = configured?.apply(this, arguments);
      if (this.drivePick) { this.drivePick.key = ''; requestAnimationFrame(() => this.drivePick.refresh()); }
      return r;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const r = executed?.apply(this, arguments);
      const f = output?.drive_frame?.[0];
      if (f && this.drivePick) {
        const params = new URLSearchParams({ filename: f.filename, subfolder: f.subfolder || '', type: f.type || 'temp' });
        this.drivePick.ranFrame = { url: api.apiURL(`/view?${params}`), frame: f.frame, w: f.width, h: f.height };
        this.drivePick.refresh();
      }
      return r;
    };
  },
});
