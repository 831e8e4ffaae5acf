// Drive ComfyUI's real frontend in headless Chromium (playwright-core, Debian's /usr/bin/chromium).
//
//   node tools/frontend.js build URL SPECS.json OUT_DIR
//     Each spec (see tools/build_workflows.py) becomes a graph made by the frontend itself:
//     nodes created by type, widgets set by name, links made by slot name, groups and modes set;
//     each column stacked in spec order, file-previewing loaders (Load Video, Load Image) last.
//     Writes OUT_DIR/<name>.json (UI format, graph.serialize()) and OUT_DIR/<name>.api.json
//     (graphToPrompt().output), so both are exactly what a user's frontend would save and send;
//     OUT_DIR/<name>.jpg, the template thumbnail (the whole graph); and for each of the spec's
//     "pictures" (a title and node ids) OUT_DIR/<picture name>.png, those nodes at full scale.
//     A node spec's "models" list becomes its properties.models (the Missing Models panel's source).
//   node tools/frontend.js check URL WORKFLOW_DIR SHOT_DIR
//     Loads every workflow file, reports missing node types, widget values the frontend
//     rejected or changed, the API prompt the frontend makes of it, Load Video's height before and
//     after its video preview loaded, the nodes that overlap then, a screenshot per workflow,
//     and the node types the search for "DRIVE" finds; then drops each PNG of PNG_DIR (optional)
//     onto the canvas as a user would and reports the graph it restored. Prints one JSON report on stdout.
//   node tools/frontend.js canvas URL [SHOT_DIR]
//     Drives Track Object's pick canvas at two display scales and reports the widget values (see canvas()).
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

async function openFrontend(url) {
  const ctx = await chromium.launchPersistentContext(fs.mkdtempSync('/tmp/drive-chromium-'), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });

  // A fresh ComfyUI user folder opens the templates browser over the canvas on first load; mark the
  // tutorial done and hide the minimap (over the pictures) before the page reads its settings.
  const saved = await fetch(new URL('settings', url), { method: 'POST',
    body: JSON.stringify({ 'Comfy.TutorialCompleted': true, 'Comfy.Minimap.Visible': false }) });
  if (!saved.ok) throw new Error(`POST ${url}settings answered ${saved.status}`);
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'networkidle' });
  await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph &&
    Object.keys(window.LiteGraph.registered_node_types || {}).length > 50, null, { timeout: 90000 });
  await page.keyboard.press('Escape');
  return { ctx, page, errors };
}

async function build(url, specsPath, outDir) {
  const specs = JSON.parse(fs.readFileSync(specsPath, 'utf8'));
  const { ctx, page } = await openFrontend(url);
  fs.mkdirSync(outDir, { recursive: true });
  for (const spec of specs) {
    const result = await page.evaluate(async (spec) => {
      const app = window.app, LG = window.LiteGraph, graph = app.graph;
      graph.clear();
      const made = {};
      for (const n of spec.nodes) {
        const node = LG.createNode(n.type);
        if (!node) throw new Error(`unknown node type ${n.type} (is the pack loaded?)`);
        graph.add(node);
        if (n.size) node.size = n.size;
        if (n.title) node.title = n.title;
        for (const [name, value] of Object.entries(n.widgets || {})) {
          const w = (node.widgets || []).find((w) => w.name === name);
          if (!w) throw new Error(`${n.type} has no widget ${name}`);
          w.value = value;
        }
        if (n.color) node.color = n.color;
        if (n.bgcolor) node.bgcolor = n.bgcolor;
        if (n.models) node.properties = { ...(node.properties || {}), models: n.models };
        made[n.id] = node;
      }
      // Columns left to right, nodes stacked top to bottom by their real sizes. A node that previews
      // its picked file grows downward once the file loads (Load Video by its video), so it goes last.
      const GAP_X = 120, GAP_Y = 60, TITLE = 40;
      const SHOWS_FILE = new Set(['DRIVE_LoadVideo', 'LoadImage', 'LoadImageMask']);
      const columns = [...new Set(spec.nodes.map((n) => n.col))].sort((a, b) => a - b);
      let x = 0;
      for (const col of columns) {
        const members = spec.nodes.filter((n) => n.col === col)
          .sort((a, b) => SHOWS_FILE.has(a.type) - SHOWS_FILE.has(b.type));
        let y = 0;
        for (const n of members) {
          made[n.id].pos = [x, y + TITLE];
          y += made[n.id].size[1] + TITLE + GAP_Y + (n.gap_after || 0);
        }
        x += Math.max(...members.map((n) => made[n.id].size[0])) + GAP_X;
      }
      for (const [src, out, dst, inp] of spec.links) {
        const a = made[src], b = made[dst];
        const slot = typeof out === 'number' ? out : a.outputs.findIndex((o) => o.name === out || o.type === out);
        const target = b.inputs.findIndex((i) => i.name === inp);
        if (slot < 0 || target < 0) throw new Error(`cannot link ${src}.${out} -> ${dst}.${inp}`);
        if (!a.connect(slot, b, target)) throw new Error(`frontend refused link ${src}.${out} -> ${dst}.${inp}`);
      }
      for (const n of spec.nodes) if (n.mode) made[n.id].mode = n.mode;
      for (const g of spec.groups || []) {
        const group = new LG.LGraphGroup(g.title);
        group.color = g.color || group.color;
        graph.add(group);
        const members = g.nodes.map((id) => made[id]);
        const pad = 30;
        const x0 = Math.min(...members.map((m) => m.pos[0])) - pad;
        const y0 = Math.min(...members.map((m) => m.pos[1])) - pad - 40;
        const x1 = Math.max(...members.map((m) => m.pos[0] + m.size[0])) + pad;
        const y1 = Math.max(...members.map((m) => m.pos[1] + m.size[1])) + pad;
        group.pos = [x0, y0];
        group.size = [x1 - x0, y1 - y0];
      }
      app.canvas.ds.scale = 0.75;  // the view the file opens with, the same on every build
      app.canvas.ds.offset = [60, 60];
      graph.setDirtyCanvas(true, true);
      const ui = graph.serialize();
      const api = (await app.graphToPrompt()).output;
      const ids = Object.fromEntries(Object.entries(made).map(([k, node]) => [k, node.id]));
      return { ui, api, ids };
    }, spec);
    fs.writeFileSync(path.join(outDir, `${spec.name}.json`), JSON.stringify(result.ui, null, 2) + '\n');
    fs.writeFileSync(path.join(outDir, `${spec.name}.api.json`), JSON.stringify(result.api, null, 2) + '\n');
    await shoot(page, null, 0.6, { path: path.join(outDir, `${spec.name}.jpg`), type: 'jpeg', quality: 85 },
      [1024, 768]);
    for (const pic of spec.pictures || []) {
      await shoot(page, pic.nodes.map((id) => result.ids[id]), 1.0, { path: path.join(outDir, `${pic.name}.png`) });
    }
    console.error(`built ${spec.name}`);
  }
  await ctx.close();
}

// Screenshot the nodes `ids` (all nodes and groups when null) at canvas `scale`, cropped to them;
// `fit` [w, h] instead scales the whole box down to fit that size (thumbnails).
async function shoot(page, ids, scale, options, fit = null) {
  await page.evaluate(() => window.app.canvas.draw(true, true));  // sizes settle on the first draw
  await page.waitForTimeout(300);
  const bounds = await page.evaluate((ids) => {
    const graph = window.app.graph;
    const nodes = ids ? ids.map((id) => graph.getNodeById(id)) : graph._nodes;
    const boxes = nodes.map((n) => [n.pos[0], n.pos[1] - 40, n.size[0], n.size[1] + 40]);
    const inside = (g, n) => n.pos[0] >= g.pos[0] && n.pos[1] >= g.pos[1] &&
      n.pos[0] <= g.pos[0] + g.size[0] && n.pos[1] <= g.pos[1] + g.size[1];
    for (const g of graph._groups || []) {  // a group shows whole when any of its nodes is pictured
      if (!ids || nodes.some((n) => inside(g, n))) boxes.push([g.pos[0], g.pos[1], g.size[0], g.size[1]]);
    }
    return boxes.reduce((acc, [x, y, w, h]) => [Math.min(acc[0], x), Math.min(acc[1], y),
      Math.max(acc[2], x + w), Math.max(acc[3], y + h)], [1e9, 1e9, -1e9, -1e9]);
  }, ids);
  const margin = 30, left = 160, top = 140;
  let [x0, y0, x1, y1] = bounds;
  if (fit) {  // pad the box to the thumbnail's aspect, so template cards show it whole and centred
    const aspect = fit[0] / fit[1], w = x1 - x0, h = y1 - y0;
    if (w / h > aspect) { const pad = (w / aspect - h) / 2; y0 -= pad; y1 += pad; }
    else { const pad = (h * aspect - w) / 2; x0 -= pad; x1 += pad; }
  }
  if (fit) scale = Math.min(fit[0] / (x1 - x0 + 2 * margin), fit[1] / (y1 - y0 + 2 * margin), 1.5);
  const width = Math.ceil((x1 - x0) * scale) + 2 * margin, height = Math.ceil((y1 - y0) * scale) + 2 * margin;
  await page.setViewportSize({ width: Math.min(width + left + 300, 4000), height: Math.min(height + top + 300, 3000) });
  await page.evaluate(([x0, y0, scale, margin, left, top]) => {
    const ds = window.app.canvas.ds;
    ds.scale = scale;
    ds.offset = [-x0 + (left + margin) / scale, -y0 + (top + margin) / scale];
    window.app.graph.setDirtyCanvas(true, true);
  }, [x0, y0, scale, margin, left, top]);
  await page.waitForTimeout(800);
  const rect = await page.evaluate(() => {  // the canvas sits right of the side bar, below the menu
    const r = window.app.canvas.canvas.getBoundingClientRect();
    return [r.left, r.top];
  });
  await page.screenshot({ ...options, clip: { x: rect[0] + left, y: rect[1] + top, width, height } });
  await page.setViewportSize({ width: 1600, height: 1000 });
}

// Type a query into the node search box (double-click on empty canvas), as a user would.
async function searchNodes(page, query) {
  await page.evaluate(() => { window.app.graph.clear(); window.app.graph.setDirtyCanvas(true, true); });
  await page.waitForTimeout(300);
  await page.mouse.dblclick(800, 500);
  // 1.27: a search container with a "Search ..." box; 1.49 and newer: a dialog whose box says "Add a node..."
  const box = page.locator('.comfy-vue-node-search-container input, input[placeholder*="Search"], '
    + 'input[placeholder*="Add a node"]').first();
  await box.waitFor({ timeout: 10000 });
  await box.fill(query);
  // the list filters asynchronously (slowly on a loaded machine): read it once it names the query
  // and has stopped changing for a second
  const options = page.locator('.p-autocomplete-option, [role="option"]');
  let items = [], stableSince = Date.now();
  for (const deadline = Date.now() + 20000; Date.now() < deadline;) {
    await page.waitForTimeout(250);
    const now = (await options.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
    if (JSON.stringify(now) !== JSON.stringify(items)) { items = now; stableSince = Date.now(); }
    else if (items.some((t) => t.includes(query)) && Date.now() - stableSince >= 1000) break;
  }
  await page.keyboard.press('Escape');
  return items;
}

// Drop each PNG onto the app the way a user's drag does (app.handleFile); report the graph it restored.
async function dropPictures(page, pngDir) {
  const restored = {};
  for (const file of fs.readdirSync(pngDir).filter((f) => f.endsWith('.png')).sort()) {
    const bytes = [...fs.readFileSync(path.join(pngDir, file))];
    restored[file] = await page.evaluate(async ([bytes, name]) => {
      const app = window.app;
      app.graph.clear();
      await app.handleFile(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
      await new Promise((r) => setTimeout(r, 500));
      return app.graph._nodes.map((n) => [n.id, n.type]).sort((a, b) => a[0] - b[0]);
    }, [bytes, file]);
  }
  return restored;
}

async function check(url, workflowDir, shotDir, pngDir) {
  const { ctx, page, errors } = await openFrontend(url);
  await page.evaluate(() => {
    // Wait (up to 30 s) until node sizes stopped changing, every video preview has its metadata and
    // `ready()` holds: a picked video grows Load Video by its preview, which must not cover the nodes
    // below, and newer frontends (1.49+) add the preview later than 1.27 did.
    window.settle = async (app, ready = () => true) => {
      let last = '';
      for (let i = 0; i < 120; i++) {
        await new Promise((r) => setTimeout(r, 250));
        app.canvas.draw(true, true);
        const now = JSON.stringify(app.graph._nodes.map((n) => n.size));
        if (now === last && ready() && [...document.querySelectorAll('video')].every((v) => v.readyState >= 1)) return;
        last = now;
      }
    };
    // Pairs of nodes whose boxes (title bar included) intersect.
    window.overlappingNodes = (nodes) => {
      const box = (n) => [n.pos[0], n.pos[1] - 40, n.pos[0] + n.size[0], n.pos[1] + n.size[1]];
      const found = [];
      nodes.forEach((a, i) => nodes.slice(i + 1).forEach((b) => {
        const [ax0, ay0, ax1, ay1] = box(a), [bx0, by0, bx1, by1] = box(b);
        const where = (n, [x0, y0, x1, y1]) => `${n.type}#${n.id} (${[x0, y0, x1, y1].map(Math.round).join(',')})`;
        if (ax0 < bx1 && bx0 < ax1 && ay0 < by1 && by0 < ay1) found.push(`${where(a, box(a))} / ${where(b, box(b))}`);
      }));
      return found;
    };
  });
  fs.mkdirSync(shotDir, { recursive: true });
  const report = { workflows: {}, pageErrors: [] };
  const files = fs.readdirSync(workflowDir).filter((f) => f.endsWith('.json') && !f.endsWith('.api.json')).sort();
  for (const file of files) {
    const data = JSON.parse(fs.readFileSync(path.join(workflowDir, file), 'utf8'));
    const result = await page.evaluate(async (data) => {
      const app = window.app, LG = window.LiteGraph;
      const missing = [...new Set(data.nodes.map((n) => n.type).filter((t) => !LG.registered_node_types[t]))];
      await app.loadGraphData(JSON.parse(JSON.stringify(data)), true, true, 'check');
      const widgetIssues = [];
      for (const saved of data.nodes) {
        const node = app.graph.getNodeById(saved.id);
        if (!node) { widgetIssues.push(`node ${saved.id} (${saved.type}) did not load`); continue; }
        const want = saved.widgets_values || [];
        for (const w of node.widgets || []) {
          if (w.type === 'combo' && Array.isArray(w.options?.values) && w.options.values.length &&
              !w.options.values.includes(w.value) && w.name !== 'control_after_generate') {
            widgetIssues.push(`${saved.type}#${saved.id}.${w.name}: value ${JSON.stringify(w.value)} is not among the options`);
          }
        }
        const serialized = node.serialize().widgets_values || [];
        if (JSON.stringify(serialized) !== JSON.stringify(want)) {
          widgetIssues.push(`${saved.type}#${saved.id}: widgets_values changed on load: ${JSON.stringify(want)} -> ${JSON.stringify(serialized)}`);
        }
      }
      const api = (await app.graphToPrompt()).output;
      const loaders = app.graph._nodes.filter((n) => n.type === 'DRIVE_LoadVideo');
      // the height saved in the file: 1.49+ may have grown the node by the time the prompt above is made
      const heights = loaders.map((n) => data.nodes.find((saved) => String(saved.id) === String(n.id)).size[1]);
      await settle(app, () => loaders.every((n, i) => n.size[1] > heights[i]));
      const videoPreview = loaders.map((n, i) => [n.id, heights[i], n.size[1]]);
      const overlaps = overlappingNodes(app.graph._nodes);
      const boxes = [...app.graph._nodes.map((n) => [n.pos[0], n.pos[1] - 40, n.size[0], n.size[1] + 40]),
        ...(app.graph._groups || []).map((g) => [g.pos[0], g.pos[1], g.size[0], g.size[1]])];
      const bounds = boxes.reduce((acc, [x, y, w, h]) => [Math.min(acc[0], x), Math.min(acc[1], y),
        Math.max(acc[2], x + w), Math.max(acc[3], y + h)], [1e9, 1e9, -1e9, -1e9]);
      return { missing, widgetIssues, api, nodeCount: data.nodes.length, bounds, videoPreview, overlaps };
    }, data);
    const [x0, y0, x1, y1] = result.bounds;
    const scale = 0.75, margin = 40;
    await page.setViewportSize({ width: Math.min(Math.ceil((x1 - x0) * scale) + 2 * margin + 160, 3600),
      height: Math.min(Math.ceil((y1 - y0) * scale) + 2 * margin + 200, 2400) });
    await page.evaluate(([x0, y0, scale, margin]) => {
      const ds = window.app.canvas.ds;
      ds.scale = scale;
      ds.offset = [-x0 + (margin + 60) / scale, -y0 + (margin + 60) / scale];
      window.app.graph.setDirtyCanvas(true, true);
    }, [x0, y0, scale, margin]);
    await page.waitForTimeout(800);
    const shot = path.join(shotDir, file.replace(/\.json$/, '.png'));
    await page.screenshot({ path: shot });
    delete result.bounds;
    report.workflows[file] = { ...result, screenshot: shot };
    await page.setViewportSize({ width: 1600, height: 1000 });
  }
  report.driveNodes = await page.evaluate(() => Object.keys(window.LiteGraph.registered_node_types)
    .filter((t) => t.toLowerCase().includes('drive')).sort());
  report.searchDrive = await searchNodes(page, 'DRIVE');
  if (pngDir) report.dropped = await dropPictures(page, pngDir);
  report.pageErrors = errors;
  await ctx.close();
  console.log(JSON.stringify(report, null, 1));
}

// Track Object's pick canvas (web/drive_points.js) as a user drives it: Load Video (drive_demo.mp4 in the
// server's input folder) -> Track Object; at each display scale, clicks, a Shift+click, a drag, a point moved
// and one deleted, a click outside the frame; then the workflow saved and loaded again, the prompt it makes,
// and the loader's size changed. Reports the widgets' values after each step.
async function canvas(url, shotDir) {
  const { ctx, page, errors } = await openFrontend(url);
  const values = () => page.evaluate(() => {
    const t = window.app.graph._nodes.find((n) => n.type === 'DRIVE_TrackObject');
    const v = Object.fromEntries(t.widgets.filter((w) => w.serialize !== false).map((w) => [w.name, w.value]));
    return { ...v, note: t.drivePick.note, size: t.drivePick.size };
  });
  await page.evaluate(() => {
    const app = window.app, LG = window.LiteGraph;
    app.graph.clear();
    const load = LG.createNode('DRIVE_LoadVideo');
    app.graph.add(load);
    load.pos = [0, 100];
    load.widgets.find((w) => w.name === 'video').value = 'drive_demo.mp4';
    const track = LG.createNode('DRIVE_TrackObject');
    app.graph.add(track);
    track.pos = [500, 100];
    load.connect(0, track, track.inputs.findIndex((i) => i.name === 'images'));
  });
  const report = { scales: {} };
  for (const scale of [1.0, 0.6]) {
    await page.evaluate((scale) => {
      const app = window.app, t = app.graph._nodes.find((n) => n.type === 'DRIVE_TrackObject');
      t.drivePick.write({ positive: [], negative: [], box: null });
      t.drivePick.setNote('');
      app.canvas.ds.scale = scale;
      app.canvas.ds.offset = [-t.pos[0] + 60 / scale, -t.pos[1] + 120 / scale];
      app.graph.setDirtyCanvas(true, true);
    }, scale);
    await page.waitForFunction(() => {
      const t = window.app.graph._nodes.find((n) => n.type === 'DRIVE_TrackObject');
      window.app.canvas.draw(true, true);
      return t.drivePick.size && t.drivePick.image;
    }, null, { timeout: 60000 });
    await page.waitForTimeout(600);
    const geo = await page.evaluate(() => {
      const p = window.app.graph._nodes.find((n) => n.type === 'DRIVE_TrackObject').drivePick;
      const r = p.canvas.getBoundingClientRect();
      return { r: [r.left, r.top, r.width, r.height], size: p.size, m: p.margin() };
    });
    // frame pixels -> screen: the frame is drawn `m` px inside the element, contained in its box
    const at = (x, y) => {
      const [l, t, w, h] = geo.r, cw = geo.size.w + 2 * geo.m, ch = geo.size.h + 2 * geo.m;
      const s = Math.min(w / cw, h / ch);
      return [l + (w - cw * s) / 2 + (x + geo.m) * s, t + (h - ch * s) / 2 + (y + geo.m) * s];
    };
    const steps = {};
    await page.mouse.click(...at(128, 256));
    await page.mouse.click(...at(300, 200));
    steps.clicks = await values();
    await page.keyboard.down('Shift');
    await page.mouse.click(...at(400, 64));
    await page.keyboard.up('Shift');
    steps.shiftClick = await values();
    await page.mouse.move(...at(100, 120));
    await page.mouse.down();
    await page.mouse.move(...at(250, 250), { steps: 8 });
    await page.mouse.move(...at(360, 420), { steps: 8 });
    await page.mouse.up();
    steps.drag = await values();
    await page.mouse.move(...at(300, 200));  // move the second positive point
    await page.mouse.down();
    await page.mouse.move(...at(310, 240), { steps: 8 });
    await page.mouse.up();
    steps.moved = await values();
    await page.mouse.click(...at(400, 64));  // delete the negative point
    steps.deleted = await values();
    await page.mouse.click(...at(-geo.m / 2, 50));  // in the margin: outside the frame
    steps.outside = await values();
    report.scales[scale] = { steps, elementWidth: geo.r[2] };
    if (shotDir) await page.screenshot({ path: path.join(shotDir, `canvas-${scale}.png`) });
  }
  report.reloaded = await page.evaluate(async () => {
    const app = window.app;
    const saved = JSON.parse(JSON.stringify(app.graph.serialize()));
    app.graph.clear();
    await app.loadGraphData(saved, true, true, 'canvas-check');
    await new Promise((r) => setTimeout(r, 2500));
    const t = app.graph._nodes.find((n) => n.type === 'DRIVE_TrackObject');
    const prompt = (await app.graphToPrompt()).output[String(t.id)].inputs;
    const pick = t.drivePick.state();
    return { saved: saved.nodes.find((n) => n.type === 'DRIVE_TrackObject').widgets_values,
      widgets: t.serialize().widgets_values, prompt, drawn: [pick.positive.length, pick.negative.length, !!pick.box],
      note: t.drivePick.note, frameShown: !!t.drivePick.image };
  });
  await page.evaluate(() => {
    const load = window.app.graph._nodes.find((n) => n.type === 'DRIVE_LoadVideo');
    load.widgets.find((w) => w.name === 'longer_side').value = 256;
  });
  await page.waitForFunction(() => window.app.graph._nodes.find((n) => n.type === 'DRIVE_TrackObject').drivePick.size?.w === 256,
    null, { timeout: 30000 });
  await page.waitForTimeout(300);
  report.resized = await values();
  report.queuedAlone = await queueMaskPreviewAlone(page);
  report.pageErrors = errors;
  await ctx.close();
  console.log(JSON.stringify(report, null, 1));
}

// Mask Preview (wired to the graph's Load Video and Track Object) selected and queued with the frontend's
// "Queue Selected Output Nodes", beside a Save Video that must not run: the prompt it posts, caught before the server.
async function queueMaskPreviewAlone(page) {
  let posted = null;
  await page.route('**/prompt', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    posted = JSON.parse(route.request().postData());
    await route.fulfill({ status: 200, contentType: 'application/json',
      body: JSON.stringify({ prompt_id: 'drive-check', number: 0, node_errors: {} }) });
  });
  const ids = await page.evaluate(async () => {
    const app = window.app, LG = window.LiteGraph, graph = app.graph;
    const load = graph._nodes.find((n) => n.type === 'DRIVE_LoadVideo');
    const track = graph._nodes.find((n) => n.type === 'DRIVE_TrackObject');
    const preview = LG.createNode('DRIVE_MaskPreview');
    graph.add(preview);
    preview.pos = [track.pos[0] + track.size[0] + 80, track.pos[1]];
    load.connect(0, preview, preview.inputs.findIndex((i) => i.name === 'images'));
    track.connect(0, preview, preview.inputs.findIndex((i) => i.name === 'mask'));
    const save = LG.createNode('DRIVE_SaveVideo');
    graph.add(save);
    save.pos = [preview.pos[0], preview.pos[1] + 400];
    load.connect(0, save, save.inputs.findIndex((i) => i.name === 'images'));
    app.canvas.deselectAll?.();
    if (app.canvas.selectNode) app.canvas.selectNode(preview); else app.canvas.select(preview);
    await app.extensionManager.command.execute('Comfy.QueueSelectedOutputNodes');
    return { preview: String(preview.id), save: String(save.id), track: String(track.id), load: String(load.id) };
  });
  for (let i = 0; i < 40 && !posted; i++) await page.waitForTimeout(250);
  await page.unroute('**/prompt');
  if (!posted) return { ids, posted: null };
  const types = Object.fromEntries(Object.entries(posted.prompt).map(([id, n]) => [id, n.class_type]));
  return { ids, types, targets: posted.partial_execution_targets ?? null };
}

const [cmd, ...rest] = process.argv.slice(2);
const run = { build, check, canvas }[cmd];
if (!run) {
  console.error('usage: frontend.js build URL SPECS.json OUT_DIR | check URL WORKFLOW_DIR SHOT_DIR [PNG_DIR] | canvas URL [SHOT_DIR]');
  process.exit(2);
}
run(...rest).catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
