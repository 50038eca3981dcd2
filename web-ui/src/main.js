// The gatewayd console: one page per thing an operator manages, routed by the URL's hash.
// Plain DOM: the pages are forms and tables, and the console must stay small enough for
// gatewayd to embed.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import * as api from './api.js';

const app = document.getElementById('app');
let timers = [];

/// h('div', {class: 'x', onclick: f}, child, 'text', ...)
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  if (tag === 'table') labelCells(e);
  return e;
}

/// Every cell gets its column's name (data-label): on a phone a table row is shown as a card
/// of "name value" lines (style.css), as a row of eight columns does not fit 420 px.
function labelCells(table) {
  const heads = [...table.querySelectorAll(':scope > thead th')].map((th) => th.textContent);
  if (!heads.length) return;
  for (const tr of table.querySelectorAll(':scope > tbody > tr')) {
    [...tr.children].forEach((td, i) => {
      if (heads[i]) td.dataset.label = heads[i];
    });
  }
}

function every(ms, f) {
  f();
  timers.push(setInterval(f, ms));
}

function clearTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function notice(kind, text) {
  const n = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  document.getElementById('notices')?.replaceChildren(n);
  return n;
}

/// Runs an action from a button or form, showing its error instead of losing it.
async function act(f) {
  try {
    await f();
  } catch (e) {
    notice('error', e.message);
  }
}

function field(label, input) {
  return h('label', {}, h('span', {}, label), input);
}

// ---------------------------------------------------------------------------------------------

function loginPage() {
  clearTimers();
  const user = h('input', { name: 'user', value: 'admin', autocomplete: 'username' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
  const err = h('div', { id: 'login-error', class: 'error-text' });
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await api.login(user.value, password.value);
          location.hash = '#/dashboard';
          route();
        } catch (e) {
          err.textContent = e.message;
        }
      },
    },
    h('h1', {}, 'gatewayd'),
    field('User', user),
    field('Password', password),
    h('button', { type: 'submit' }, 'Log in'),
    err,
  );
  app.replaceChildren(form);
  password.focus();
}

const PAGES = [
  ['dashboard', 'Dashboard'],
  ['volumes', 'Volumes'],
  ['s3', 'S3 keys'],
  ['nfs', 'NFS exports'],
  ['smb', 'SMB shares'],
  ['log', 'Log'],
];

function shell(current, ...content) {
  const nav = h(
    'nav',
    {},
    h('strong', {}, 'gatewayd'),
    PAGES.map(([id, name]) =>
      h('a', { href: `#/${id}`, class: id === current ? 'current' : undefined }, name),
    ),
    h(
      'button',
      {
        class: 'link',
        id: 'logout',
        onclick: () => act(async () => {
          await api.logout();
          loginPage();
        }),
      },
      'Log out',
    ),
  );
  app.replaceChildren(nav, h('div', { id: 'notices' }), h('main', {}, ...content));
}

// ---------------------------------------------------------------------------------------------
// Dashboard: bricks up/down and capacity, brick events, traffic per protocol.

/// Runs a job the API answered (volume start/stop, heal), showing its progress as a notice;
/// returns its result.
async function job(method, path, body) {
  return api.follow(await api.call(method, path, body), (j) =>
    notice('info', `${j.progress.message || `${j.kind} ${j.target}`} (${Math.round(j.elapsed_secs)} s)`),
  );
}

async function brickRows() {
  const vols = await api.call('GET', '/volumes');
  const rows = [];
  for (const v of vols) {
    if (!v.started) continue;
    const st = await api.call('GET', `/volumes/${encodeURIComponent(v.name)}/status`);
    for (const b of st.bricks) rows.push({ volume: v.name, ...b });
  }
  return { vols, rows };
}

function capacityBar(b) {
  if (b.total_bytes === null || b.total_bytes === undefined) return '—';
  const used = b.total_bytes - b.free_bytes;
  const pct = b.total_bytes ? Math.round((100 * used) / b.total_bytes) : 0;
  return h(
    'div',
    { class: 'capacity', title: `${bytes(used)} of ${bytes(b.total_bytes)} used` },
    h('div', { class: 'bar' }, h('div', { class: pct > 90 ? 'fill full' : 'fill', style: `width:${pct}%` })),
    h('span', {}, `${bytes(b.free_bytes)} free of ${bytes(b.total_bytes)}`),
  );
}

/// The brick table; `sets` adds a column with each brick's replica set (and arbiter).
function brickTable(rows, sets = false) {
  const cols = ['Volume', 'Brick', 'Path', sets && 'Replica set', 'State', 'PID', 'Restarts', 'Capacity'].filter(Boolean);
  return h(
    'table',
    { id: 'bricks' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      rows.map((b) =>
        h(
          'tr',
          { dataset: { brick: b.name } },
          h('td', {}, b.volume),
          h('td', {}, b.name),
          h('td', {}, `${b.host}:${b.path}`),
          sets && h('td', {}, `${b.replica_set}${b.arbiter ? ' (arbiter)' : ''}`),
          h('td', {}, h('span', { class: `badge ${b.online ? 'up' : 'down'}`, dataset: { state: b.online ? 'online' : 'down' } }, b.online ? 'online' : 'down')),
          h('td', {}, b.pid ?? '—'),
          h('td', {}, b.restarts),
          h('td', {}, capacityBar(b)),
        ),
      ),
    ),
  );
}

const PROTOCOLS = ['fuse', 'nfs', 's3', 'smb'];

/// The newest value of series `si`, for the legend while the cursor is not on the chart
/// (uPlot shows "--" there by default, which is all a glance at the dashboard would see).
function latest(u, si) {
  const d = u.data[si] || [];
  return d.length ? d[d.length - 1] : null;
}

function chartWidth(el) {
  return Math.max(240, Math.min(560, el.clientWidth || 560));
}

function chart(el, title, unit) {
  const fmt = (v) => (v == null ? '0' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const opts = {
    title,
    width: chartWidth(el),
    height: 200,
    scales: { x: { time: true } },
    series: [
      { value: (u, v, si, idx) => (idx == null ? 'now' : new Date(v * 1000).toLocaleTimeString()) },
      ...PROTOCOLS.map((p, i) => ({
        label: p,
        stroke: ['#2563eb', '#16a34a', '#d97706', '#9333ea'][i],
        width: 2,
        value: (u, v, si, idx) => `${fmt(idx == null ? latest(u, si) : v)} ${unit}`,
      })),
    ],
    axes: [{}, { label: unit, size: 60 }],
  };
  const u = new uPlot(opts, [[], ...PROTOCOLS.map(() => [])], el);
  // Phones: the chart follows its box instead of keeping the width it was made with.
  new ResizeObserver(() => {
    const w = chartWidth(el);
    if (w !== u.width) u.setSize({ width: w, height: 200 });
  }).observe(el);
  return u;
}

/// Redraws the legend with the newest values unless the cursor is showing a point.
function showLatest(u) {
  if (u.cursor.idx == null) u.setLegend({ idx: null });
}

function sums(m, name, key) {
  const out = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  for (const s of m[name] || []) {
    if (key && !key(s.labels)) continue;
    if (s.labels.protocol in out) out[s.labels.protocol] += s.value;
  }
  return out;
}

function dashboard() {
  const summary = h('div', { class: 'cards' });
  const bricks = h('section', {}, h('h2', {}, 'Bricks'), h('div', { id: 'brick-table' }, 'loading…'));
  const evlist = h('ul', { id: 'events' });
  const opsEl = h('div', { class: 'chart', id: 'ops-chart' });
  const bytesEl = h('div', { class: 'chart', id: 'bytes-chart' });
  shell(
    'dashboard',
    summary,
    bricks,
    h('section', {}, h('h2', {}, 'Traffic'), h('div', { class: 'charts' }, opsEl, bytesEl)),
    h('section', {}, h('h2', {}, 'Brick events'), evlist),
  );
  const opsChart = chart(opsEl, 'Operations per second', 'ops/s');
  const bytesChart = chart(bytesEl, 'Throughput', 'MiB/s');
  const window = 60;
  const series = { t: [], ops: PROTOCOLS.map(() => []), mib: PROTOCOLS.map(() => []) };
  let last = null;

  every(1000, () => act(async () => {
    const { vols, rows } = await brickRows();
    // Brick events as gatewayd recorded them (from the brick RPC's pings), newest first.
    const events = await api.call('GET', '/events');
    const online = rows.filter((b) => b.online).length;
    summary.replaceChildren(
      h('div', { class: 'card' }, h('b', {}, vols.length), ' volumes'),
      h('div', { class: 'card' }, h('b', {}, vols.filter((v) => v.started).length), ' started'),
      h('div', { class: `card ${online < rows.length ? 'warn' : ''}`, id: 'bricks-online' }, h('b', {}, `${online}/${rows.length}`), ' bricks online'),
    );
    document.getElementById('brick-table')?.replaceChildren(rows.length ? brickTable(rows) : 'No started volume.');
    evlist.replaceChildren(
      ...(events.length
        ? events.slice(0, 50).map((e) => h('li', { class: e.online ? 'up' : 'down' }, `${new Date(e.at_ms).toLocaleTimeString()} ${e.message}`))
        : [h('li', { class: 'quiet' }, 'No brick went down since gatewayd started.')]),
    );
  }));

  every(2000, () => act(async () => {
    const m = await api.metrics();
    const now = Date.now() / 1000;
    const ops = sums(m, 'gateway_protocol_operations_total');
    const by = sums(m, 'gateway_protocol_bytes_total');
    {
      // The first sample has no rate yet: it starts the axes at zero.
      const dt = last ? Math.max(0.001, now - last.t) : 1;
      const base = last || { ops, by };
      series.t.push(now);
      PROTOCOLS.forEach((p, i) => {
        series.ops[i].push(Math.max(0, (ops[p] - base.ops[p]) / dt));
        series.mib[i].push(Math.max(0, (by[p] - base.by[p]) / dt / 1048576));
      });
      if (series.t.length > window) {
        series.t.shift();
        series.ops.forEach((s) => s.shift());
        series.mib.forEach((s) => s.shift());
      }
      opsChart.setData([series.t, ...series.ops]);
      bytesChart.setData([series.t, ...series.mib]);
      showLatest(opsChart);
      showLatest(bytesChart);
    }
    last = { t: now, ops, by };
  }));
}

// ---------------------------------------------------------------------------------------------
// Volumes

async function volumesPage() {
  const name = h('input', { name: 'name', placeholder: 'data', required: true });
  const bricks = h('textarea', { name: 'bricks', rows: 3, placeholder: '127.0.0.1:/srv/bricks/b1\n127.0.0.1:/srv/bricks/b2', required: true });
  const replica = h('input', { name: 'replica', type: 'number', min: 1, max: 64, step: 1, placeholder: '1' });
  const list = h('div', { id: 'volume-list' }, 'loading…');
  const form = h(
    'form',
    {
      id: 'create-volume',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(async () => {
          const specs = bricks.value.split(/\s+/).filter(Boolean);
          const body = { name: name.value.trim(), bricks: specs };
          if (replica.value.trim()) body.replica = Number(replica.value);
          const v = await api.call('POST', '/volumes', body);
          notice('ok', `Volume ${v.name} created; start it to serve it.`);
          form.reset();
          await refresh();
        });
      },
    },
    h('h2', {}, 'Create a volume'),
    field('Name', name),
    field('Bricks, HOST:/PATH, one per line (in order: each replica set is that many consecutive bricks)', bricks),
    field('Replica (optional: bricks holding each file; empty or 1 distributes over all bricks)', replica),
    h('button', { type: 'submit' }, 'Create'),
  );
  shell('volumes', h('section', {}, h('h2', {}, 'Volumes'), list), form);

  async function refresh() {
    const vols = await api.call('GET', '/volumes');
    list.replaceChildren(
      vols.length
        ? h(
            'table',
            {},
            h('thead', {}, h('tr', {}, ['Name', 'Type', 'Status', 'Bricks', ''].map((c) => h('th', {}, c)))),
            h(
              'tbody',
              {},
              vols.map((v) =>
                h(
                  'tr',
                  { dataset: { volume: v.name } },
                  h('td', {}, h('a', { href: `#/volumes/${encodeURIComponent(v.name)}` }, v.name)),
                  h('td', {}, v.kind || ''),
                  h('td', {}, h('span', { class: `badge ${v.started ? 'up' : 'idle'}` }, v.started ? 'started' : 'stopped')),
                  h('td', {}, shape(v)),
                  h(
                    'td',
                    { class: 'actions' },
                    v.started
                      ? h('button', { onclick: () => act(async () => { await job('POST', `/volumes/${encodeURIComponent(v.name)}/stop`); notice('ok', `Volume ${v.name} stopped.`); await refresh(); }) }, 'Stop')
                      : h('button', { onclick: () => act(async () => {
                          const r = await job('POST', `/volumes/${encodeURIComponent(v.name)}/start`);
                          const off = r.offline.map((o) => `${o.brick} (${o.reason})`).join('; ');
                          notice(off ? 'error' : 'ok', `Volume ${v.name} started: ${r.bricks_online} of ${r.bricks_total} bricks online.${off ? ` Not online: ${off}` : ''}`);
                          await refresh();
                        }) }, 'Start'),
                    !v.started &&
                      h('button', {
                        class: 'danger',
                        onclick: () => act(async () => {
                          if (!confirm(`Delete volume ${v.name}? Its bricks stay on disk.`)) return;
                          await api.call('DELETE', `/volumes/${encodeURIComponent(v.name)}`);
                          await refresh();
                        }),
                      }, 'Delete'),
                  ),
                ),
              ),
            ),
          )
        : 'No volumes yet.',
    );
  }
  await act(refresh);
}

/// GlusterFS's "Number of Bricks": 4, 2 x 2 = 4, or 1 x (2 + 1) = 3 with an arbiter.
function shape(v) {
  const n = v.bricks.length;
  const r = v.replica || 1;
  if (r <= 1) return String(n);
  const per = v.arbiter ? `(${r - v.arbiter} + ${v.arbiter})` : r;
  return `${Math.floor(n / r)} x ${per} = ${n}`;
}

/// The options `volume set` takes (GET /options), fetched once per page load.
let optionTable = null;
async function settableOptions() {
  optionTable ||= await api.call('GET', '/options');
  return optionTable;
}

async function volumePage(name) {
  const body = h('div', {}, 'loading…');
  const key = h('select', { name: 'key', required: true }, h('option', { value: '' }, 'Choose an option…'));
  const values = h('datalist', { id: 'option-values' });
  const value = h('input', { name: 'value', list: 'option-values', required: true, autocomplete: 'off' });
  const help = h('p', { id: 'option-help', class: 'quiet' }, 'Pick an option to see what it does and its default.');
  const table = h('details', { id: 'option-table' }, h('summary', {}, 'Every option, with its default'));
  key.addEventListener('change', () => {
    const o = (optionTable || []).find((x) => x.key === key.value);
    values.replaceChildren(...(o ? o.values.map((v) => h('option', { value: v })) : []));
    value.placeholder = o?.default ?? '';
    help.textContent = o
      ? `${o.description}. Default: ${o.default ?? 'none'}. Values: ${o.kind}. ${o.applies === 'now' ? 'Applies at once.' : 'Applies when the volume next starts.'}`
      : 'Pick an option to see what it does and its default.';
  });
  const optForm = h(
    'form',
    {
      id: 'set-option',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(async () => {
          const k = key.value.trim();
          const r = await api.call('PUT', `/volumes/${encodeURIComponent(name)}/options/${encodeURIComponent(k)}`, { value: value.value.trim() });
          notice('ok', r.restart_needed ? `${k} set; stop and start the volume to apply it.` : `${k} set.`);
          value.value = '';
        });
      },
    },
    h('h2', {}, 'Set an option'),
    h('div', { class: 'row' }, field('Option', key), field('Value', value)),
    values,
    help,
    h('button', { type: 'submit' }, 'Set'),
    table,
  );
  const elastic = elasticView(name);
  shell('volumes', h('section', {}, h('h2', {}, `Volume ${name}`), body), elastic.section, optForm);
  await act(async () => {
    const opts = await settableOptions();
    key.append(...opts.map((o) => h('option', { value: o.key }, o.key)));
    table.append(
      h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Option', 'Default', 'Values', 'Description'].map((c) => h('th', {}, c)))),
        h('tbody', {}, opts.map((o) => h('tr', { dataset: { settable: o.key } },
          h('td', {}, h('code', {}, o.key)), h('td', {}, o.default ?? '—'), h('td', {}, o.kind), h('td', {}, o.description)))))),
    );
  });
  every(2000, () => act(async () => {
    const v = await api.call('GET', `/volumes/${encodeURIComponent(name)}`);
    const st = await api.call('GET', `/volumes/${encodeURIComponent(name)}/status`);
    const options = Object.entries(v.options || {});
    const replicated = (v.replica || 1) > 1;
    const heal = replicated && v.started
      ? await api.call('GET', `/volumes/${encodeURIComponent(name)}/heal`).catch(() => null)
      : null;
    body.replaceChildren(
      h('dl', {}, h('dt', {}, 'ID'), h('dd', {}, v.id), h('dt', {}, 'Type'), h('dd', { id: 'volume-kind' }, v.kind || ''),
        h('dt', {}, 'Replica'), h('dd', { id: 'volume-replica' }, (v.replica || 1) > 1 ? `${v.replica} bricks per set${v.arbiter ? ', the last an arbiter' : ''}` : '1 (no replication)'),
        h('dt', {}, 'Bricks'), h('dd', {}, shape(v)), h('dt', {}, 'Status'), h('dd', {}, v.started ? 'started' : 'stopped'), h('dt', {}, 'Gateway graph'), h('dd', {}, st.mounted_graph_up ? 'connected' : 'not connected')),
      h('h3', {}, 'Bricks'),
      brickTable(st.bricks.map((b) => ({ volume: name, ...b })), (v.replica || 1) > 1),
      h('h3', {}, 'Options'),
      options.length
        ? h('table', { id: 'options' }, h('tbody', {}, options.map(([k, val]) => h('tr', { dataset: { option: k } }, h('td', {}, k), h('td', {}, val),
            h('td', {}, h('button', { class: 'danger', onclick: () => act(async () => {
              await api.call('DELETE', `/volumes/${encodeURIComponent(name)}/options/${encodeURIComponent(k)}`);
              notice('ok', `${k} reset.`);
            }) }, 'Reset'))))))
        : h('p', {}, 'Defaults.'),
      h('h3', {}, 'Heal'),
      h('p', { class: 'quiet', id: 'heal-note' }, replicated
        ? `Each file is kept on the ${v.replica} bricks of its replica set${v.arbiter ? ' (the arbiter keeps its name and metadata only)' : ''}.`
        : 'Distribute volumes keep one copy of each file: there is nothing to heal.'),
      // replaceChildren, unlike h(), would print a missing view as the text "null".
      ...(heal ? [healView(name, heal)] : []),
    );
  }));
  // Once when the page opens, then only while a rebalance or remove-brick runs.
  every(2000, () => elastic.running() && elastic.refresh());
}

/// Heal info of a replicated volume: entries waiting per brick, split-brains, and the
/// buttons that heal now.
function healView(name, heal) {
  const run = (full) => act(async () => {
    const r = await job('POST', `/volumes/${encodeURIComponent(name)}/heal`, { full });
    notice('ok', `Heal ${full ? '(full) ' : ''}done: ${r.pending} entries pending, ${r.split_brain} in split-brain.`);
  });
  const split = heal.replica_sets.flatMap((s) => s.split_brain);
  return h('div', { id: 'heal' },
    h('p', { id: 'heal-summary' }, `${heal.pending} entries pending heal, ${heal.split_brain} in split-brain.`),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Replica set'), h('th', {}, 'Brick'), h('th', {}, 'Connected'), h('th', {}, 'Pending'))),
      h('tbody', {}, heal.replica_sets.flatMap((s) => s.bricks.map((b) => h('tr', { dataset: { healBrick: b.client } },
        h('td', {}, s.name), h('td', {}, b.brick), h('td', {}, b.connected ? 'yes' : 'no'), h('td', {}, String(b.pending))))))),
    split.length
      ? h('div', {}, h('h4', {}, 'Split-brain (resolve with gwctl volume heal … split-brain)'), h('ul', { id: 'split-brain' }, split.map((p) => h('li', {}, p))))
      : null,
    h('div', { class: 'row' },
      h('button', { id: 'heal-now', onclick: () => run(false) }, 'Heal now'),
      h('button', { onclick: () => run(true) }, 'Full heal')),
  );
}

/// Seconds as GlusterFS's "run time in h:m:s".
function hms(secs) {
  const s = Math.max(0, Math.round(secs || 0));
  const pad = (n) => String(n).padStart(2, '0');
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/// The elastic part of a volume's page: add bricks, rebalance, remove bricks, replace a brick,
/// and the progress of the rebalance (or remove-brick) with a row per subvolume.
function elasticView(name) {
  const path = `/volumes/${encodeURIComponent(name)}`;
  const status = h('div', { id: 'rebalance-status' }, h('p', { class: 'quiet' }, 'loading…'));
  let running = true;
  const show = (s) => {
    running = s.state === 'in progress';
    status.replaceChildren(rebalanceView(s));
  };
  const refresh = () => act(async () => {
    try {
      show(await api.call('GET', `${path}/rebalance`));
    } catch (e) {
      running = false;
      status.replaceChildren(h('p', { class: 'quiet' }, `No rebalance to show: ${e.message}`));
    }
  });
  const specs = (textarea) => textarea.value.split(/\s+/).filter(Boolean);

  const rebalance = (action, fixLayout) => act(async () => {
    show(await api.call('POST', `${path}/rebalance`, { action, fix_layout: fixLayout }));
    notice('ok', action === 'stop' ? 'Rebalance stopped.' : `${fixLayout ? 'Fix-layout' : 'Rebalance'} started.`);
  });

  const addBricks = h('textarea', { name: 'bricks', rows: 2, placeholder: '127.0.0.1:/srv/bricks/b5\n127.0.0.1:/srv/bricks/b6', required: true });
  const addReplica = h('input', { name: 'replica', type: 'number', min: 1, max: 64, step: 1, placeholder: 'the volume\'s' });
  const addForm = h('form', {
    id: 'add-brick',
    onsubmit: (ev) => {
      ev.preventDefault();
      act(async () => {
        const body = { bricks: specs(addBricks) };
        if (addReplica.value.trim()) body.replica = Number(addReplica.value);
        const v = await api.call('POST', `${path}/add-brick`, body);
        notice('ok', `${body.bricks.length} bricks added: ${name} now has ${v.bricks.length}. Start a rebalance to move files onto them.`);
        addForm.reset();
      });
    },
  },
  h('h3', {}, 'Add bricks'),
  field('Bricks, HOST:/PATH, one per line: whole replica sets, each that many consecutive bricks', addBricks),
  field('Replica (optional: the replica count after adding)', addReplica),
  h('button', { type: 'submit' }, 'Add bricks'));

  const removeBricks = h('textarea', { name: 'bricks', rows: 2, placeholder: '127.0.0.1:/srv/bricks/b3\n127.0.0.1:/srv/bricks/b4', required: true });
  const remove = (action) => act(async () => {
    const bricks = specs(removeBricks);
    if (action === 'commit' && !confirm(`Take ${bricks.join(', ')} out of ${name}? Files still on them leave the volume with them.`)) return;
    show(await api.call('POST', `${path}/remove-brick`, { bricks, action }));
    notice('ok', {
      start: 'Moving files off the bricks; commit once the status says completed.',
      stop: 'Remove-brick stopped; the bricks stay in the volume.',
      commit: 'Bricks removed.',
    }[action]);
    if (action === 'commit') removeBricks.value = '';
  });
  const removeForm = h('form', { id: 'remove-brick', onsubmit: (ev) => ev.preventDefault() },
    h('h3', {}, 'Remove bricks'),
    field('Bricks, HOST:/PATH, one per line: whole replica sets', removeBricks),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', dataset: { action: 'start' }, onclick: () => remove('start') }, 'Start moving files off'),
      h('button', { type: 'button', dataset: { action: 'stop' }, onclick: () => remove('stop') }, 'Stop'),
      h('button', { type: 'button', class: 'danger', dataset: { action: 'commit' }, onclick: () => remove('commit') }, 'Commit')));

  const oldBrick = h('input', { name: 'old', placeholder: '127.0.0.1:/srv/bricks/b2', required: true });
  const newBrick = h('input', { name: 'new', placeholder: '127.0.0.1:/srv/bricks/b2-new', required: true });
  const replaceForm = h('form', {
    id: 'replace-brick',
    onsubmit: (ev) => {
      ev.preventDefault();
      act(async () => {
        const [o, n] = [oldBrick.value.trim(), newBrick.value.trim()];
        if (!confirm(`Put ${n} in place of ${o}? ${o} leaves ${name} at once; self-heal fills ${n} from its replica set.`)) return;
        await api.call('POST', `${path}/replace-brick`, { old: o, new: n });
        notice('ok', `${n} replaced ${o}; it heals from its replica set.`);
        replaceForm.reset();
      });
    },
  },
  h('h3', {}, 'Replace a brick'),
  h('div', { class: 'row' }, field('Brick leaving (HOST:/PATH)', oldBrick), field('New brick: an empty or missing directory', newBrick)),
  h('button', { type: 'submit' }, 'Replace'));

  const section = h('section', { id: 'elastic' },
    h('h2', {}, 'Elastic volume'),
    h('h3', {}, 'Rebalance'),
    status,
    h('div', { class: 'buttons' },
      h('button', { id: 'rebalance-start', onclick: () => rebalance('start', false) }, 'Start rebalance'),
      h('button', { id: 'rebalance-fix-layout', onclick: () => rebalance('start', true) }, 'Fix layout'),
      h('button', { id: 'rebalance-stop', class: 'danger', onclick: () => rebalance('stop', false) }, 'Stop')),
    addForm,
    removeForm,
    replaceForm);
  return { section, refresh, running: () => running };
}

/// A rebalance's (or remove-brick's) status: its state, a bar of the files scanned out of
/// those on the volume when it started, and the counters of each subvolume.
function rebalanceView(s) {
  const t = s.totals;
  const left = s.state === 'in progress' ? `, ${s.eta_secs == null ? 'time left unknown' : `about ${hms(s.eta_secs)} left`}` : '';
  // Without a file count the bar has no end: indeterminate while it runs, else full or empty.
  const bar = s.files_total > 0
    ? { value: Math.min(t.scanned, s.files_total), max: s.files_total }
    : s.state === 'in progress' ? {} : { value: s.state === 'completed' ? 1 : 0, max: 1 };
  const row = (what, bricks, c, data) => h('tr', { dataset: data },
    h('td', {}, what), h('td', {}, bricks), h('td', {}, c.scanned), h('td', {}, c.moved), h('td', {}, c.skipped),
    h('td', {}, c.failed), h('td', {}, bytes(c.bytes_moved)), h('td', {}, c.dirs));
  return h('div', { id: 'rebalance', dataset: { state: s.state } },
    h('p', { id: 'rebalance-state' },
      h('span', { class: `badge ${s.state === 'failed' ? 'down' : s.state === 'completed' ? 'up' : 'idle'}` }, s.state),
      ` ${s.kind}: ${t.scanned}${s.files_total ? ` of ${s.files_total}` : ''} files scanned, ${t.moved} moved (${bytes(t.bytes_moved)}), ${t.failed} failed; ${hms(s.elapsed_secs)} elapsed${left}.`,
      s.resumed ? ` Resumed ${s.resumed} time(s) after gatewayd stopped.` : ''),
    h('progress', { id: 'rebalance-progress', ...bar }),
    s.message ? h('p', { class: s.state === 'failed' ? 'error-text' : 'quiet' }, s.message) : null,
    s.subvolumes.length
      ? h('table', { id: 'rebalance-subvolumes' },
          h('thead', {}, h('tr', {}, ['Subvolume', 'Bricks', 'Scanned', 'Moved', 'Skipped', 'Failed', 'Moved size', 'Dirs'].map((c) => h('th', {}, c)))),
          h('tbody', {},
            s.subvolumes.map((v) => row(v.name, `${v.bricks.join(', ')}${v.decommissioned ? ' (being removed)' : ''}`, v.counters, { subvolume: v.name })),
            row('Total', '', t, { subvolume: 'total' })))
      : null);
}

// ---------------------------------------------------------------------------------------------
// S3 keys

async function s3Page() {
  const name = h('input', { name: 'name', placeholder: 'backup-job', required: true });
  const list = h('div', { id: 'key-list' });
  const secret = h('div', { id: 'new-key' });
  shell(
    's3',
    h('section', {}, h('h2', {}, 'S3 keys'), list),
    h(
      'form',
      {
        id: 'create-key',
        onsubmit: (ev) => {
          ev.preventDefault();
          act(async () => {
            const k = await api.call('POST', '/s3/keys', { name: name.value.trim() });
            secret.replaceChildren(
              h('div', { class: 'notice ok' }, h('p', {}, `Key ${k.name} made. The secret is shown this once:`),
                h('pre', {}, `aws_access_key_id = ${k.access_key}\naws_secret_access_key = ${k.secret_key}`)),
            );
            name.value = '';
            await refresh();
          });
        },
      },
      h('h2', {}, 'Make a key'),
      field('Name', name),
      h('button', { type: 'submit' }, 'Make key'),
      secret,
    ),
  );
  async function refresh() {
    const keys = await api.call('GET', '/s3/keys');
    list.replaceChildren(
      keys.length
        ? h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Access key', 'Created', ''].map((c) => h('th', {}, c)))),
            h('tbody', {}, keys.map((k) => h('tr', { dataset: { key: k.name } }, h('td', {}, k.name), h('td', {}, h('code', {}, k.access_key)), h('td', {}, new Date(k.created * 1000).toLocaleString()),
              h('td', {}, h('button', { class: 'danger', onclick: () => act(async () => { await api.call('DELETE', `/s3/keys/${encodeURIComponent(k.name)}`); await refresh(); }) }, 'Delete'))))))
        : 'No keys.',
    );
  }
  await act(refresh);
}

// ---------------------------------------------------------------------------------------------
// NFS exports

async function nfsPage() {
  const path = h('input', { name: 'path', placeholder: '/vol/projects', required: true });
  const ro = h('input', { name: 'ro', type: 'checkbox' });
  const squash = h('input', { name: 'root_squash', type: 'checkbox' });
  const nets = h('input', { name: 'networks', placeholder: '10.0.0.0/8 192.168.1.7 (empty: every client)' });
  const list = h('div', { id: 'export-list' });
  shell(
    'nfs',
    h('section', {}, h('h2', {}, 'NFS exports'), list),
    h(
      'form',
      {
        id: 'add-export',
        onsubmit: (ev) => {
          ev.preventDefault();
          act(async () => {
            const e = await api.call('POST', '/nfs/exports', {
              path: path.value.trim(),
              read_only: ro.checked,
              root_squash: squash.checked,
              networks: nets.value.split(/[\s,]+/).filter(Boolean),
            });
            notice('ok', `Exported ${e.path}.`);
            ev.target.reset();
            await refresh();
          });
        },
      },
      h('h2', {}, 'Export a volume or a directory'),
      field('Path (/VOLUME or /VOLUME/DIR)', path),
      h('div', { class: 'row' }, field('Read-only', ro), field('Root squash', squash)),
      field('Client networks', nets),
      h('button', { type: 'submit' }, 'Export'),
    ),
  );
  async function refresh() {
    const ex = await api.call('GET', '/nfs/exports');
    list.replaceChildren(
      h('table', {}, h('thead', {}, h('tr', {}, ['Path', 'Access', 'Squash', 'Networks', ''].map((c) => h('th', {}, c)))),
        h('tbody', {}, ex.map((e) => h('tr', { dataset: { export: e.path } },
          h('td', {}, e.path, e.default ? h('span', { class: 'quiet' }, ' (volume default)') : ''),
          h('td', {}, e.read_only ? 'ro' : 'rw'),
          h('td', {}, e.all_squash ? 'all' : e.root_squash ? 'root' : 'none'),
          h('td', {}, (e.networks || []).join(', ') || '*'),
          h('td', {}, !e.default && h('button', { class: 'danger', onclick: () => act(async () => {
            await api.call('DELETE', `/nfs/exports?path=${encodeURIComponent(e.path)}`);
            await refresh();
          }) }, 'Remove')))))),
    );
  }
  await act(refresh);
}

// ---------------------------------------------------------------------------------------------
// SMB shares and users

async function smbPage() {
  const uname = h('input', { name: 'user', placeholder: 'alice', required: true });
  const upass = h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const sname = h('input', { name: 'share', placeholder: 'docs', required: true });
  const svol = h('select', { name: 'volume' });
  const spath = h('input', { name: 'path', value: '/' });
  const sro = h('input', { name: 'ro', type: 'checkbox' });
  const susers = h('input', { name: 'users', placeholder: 'alice bob (empty: every SMB user)' });
  const shares = h('div', { id: 'share-list' });
  const users = h('div', { id: 'user-list' });
  shell(
    'smb',
    h('section', {}, h('h2', {}, 'SMB shares'), shares),
    h('form', {
      id: 'add-share',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(async () => {
          const s = await api.call('POST', '/smb/shares', {
            name: sname.value.trim(),
            volume: svol.value,
            path: spath.value.trim() || '/',
            read_only: sro.checked,
            users: susers.value.split(/[\s,]+/).filter(Boolean),
          });
          notice('ok', `Share ${s.name} serves ${s.volume}:${s.path}.`);
          ev.target.reset();
          await refresh();
        });
      },
    }, h('h2', {}, 'Add a share'), field('Name', sname), field('Volume', svol), field('Directory in the volume', spath), field('Read-only', sro), field('Users', susers), h('button', { type: 'submit' }, 'Add share')),
    h('section', {}, h('h2', {}, 'SMB users'), users),
    h('form', {
      id: 'add-smb-user',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(async () => {
          const u = await api.call('POST', '/smb/users', { name: uname.value.trim(), password: upass.value });
          notice('ok', `SMB user ${u.name} added.`);
          ev.target.reset();
          await refresh();
        });
      },
    }, h('h2', {}, 'Add an SMB user'), field('Name', uname), field('Password (8 or more characters)', upass), h('button', { type: 'submit' }, 'Add user')),
  );
  async function refresh() {
    const [sh, us, vols] = await Promise.all([api.call('GET', '/smb/shares'), api.call('GET', '/smb/users'), api.call('GET', '/volumes')]);
    const chosen = svol.value;
    svol.replaceChildren(...vols.map((v) => h('option', { value: v.name, selected: v.name === chosen }, v.name)));
    shares.replaceChildren(
      sh.length
        ? h('table', {}, h('thead', {}, h('tr', {}, ['Share', 'Volume', 'Directory', 'Access', 'Users', ''].map((c) => h('th', {}, c)))),
            h('tbody', {}, sh.map((s) => h('tr', { dataset: { share: s.name } }, h('td', {}, s.name), h('td', {}, s.volume), h('td', {}, s.path), h('td', {}, s.read_only ? 'ro' : 'rw'), h('td', {}, s.users.join(', ') || '*'),
              h('td', {}, h('button', { class: 'danger', onclick: () => act(async () => { await api.call('DELETE', `/smb/shares/${encodeURIComponent(s.name)}`); await refresh(); }) }, 'Remove'))))))
        : 'No shares.',
    );
    users.replaceChildren(
      us.length
        ? h('table', {}, h('thead', {}, h('tr', {}, ['User', 'UID', ''].map((c) => h('th', {}, c)))),
            h('tbody', {}, us.map((u) => h('tr', { dataset: { smbUser: u.name } }, h('td', {}, u.name), h('td', {}, u.uid),
              h('td', {}, h('button', { class: 'danger', onclick: () => act(async () => { await api.call('DELETE', `/smb/users/${encodeURIComponent(u.name)}`); await refresh(); }) }, 'Remove'))))))
        : 'No SMB users.',
    );
  }
  await act(refresh);
}

// ---------------------------------------------------------------------------------------------
// The log of management actions

async function logPage() {
  const list = h('div', { id: 'action-log' });
  shell('log', h('section', {}, h('h2', {}, 'Management actions'), list));
  every(5000, () => act(async () => {
    const a = await api.call('GET', '/actions');
    list.replaceChildren(
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'What'))),
        h('tbody', {}, a.map((x) => h('tr', {}, h('td', {}, new Date(x.at / 1000).toLocaleString()), h('td', {}, x.what))))),
    );
  }));
}

// ---------------------------------------------------------------------------------------------

async function route() {
  clearTimers();
  const [page, arg] = location.hash.replace(/^#\/?/, '').split('/');
  switch (page) {
    case 'volumes':
      return arg ? volumePage(decodeURIComponent(arg)) : volumesPage();
    case 's3':
      return s3Page();
    case 'nfs':
      return nfsPage();
    case 'smb':
      return smbPage();
    case 'log':
      return logPage();
    default:
      return dashboard();
  }
}

api.whenLoggedOut(loginPage);
window.addEventListener('hashchange', route);
api
  .resume()
  .then(route)
  .catch(() => loginPage());
