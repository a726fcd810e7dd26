// btorrent's own page. Every two seconds it asks the Transmission RPC (torrent-get) for the
// torrents and /page/status for the embedded tracker, and updates the list in place (focus stays
// where it is). Adding, pausing, resuming, removing, choosing files and setting a torrent's speed
// limits and bandwidth priority are RPC calls too, with the RPC's X-Transmission-Session-Id
// handshake; errors show as the RPC's own one-line `result`.
'use strict';

const RPC = '/transmission/rpc';
const FIELDS = ['id', 'hashString', 'name', 'status', 'percentDone', 'rateDownload',
  'rateUpload', 'peersConnected', 'eta', 'sizeWhenDone', 'errorString', 'metadataPercentComplete'];
const STATUS = ['Paused', 'Waiting to check', 'Checking', 'Queued', 'Downloading',
  'Queued to seed', 'Seeding'];
const POLL_MS = 2000;
const LIMIT_FIELDS = ['uploadLimit', 'uploadLimited', 'downloadLimit', 'downloadLimited',
  'bandwidthPriority'];

const $ = (sel, el = document) => el.querySelector(sel);
const rows = new Map(); // torrent id -> {id, li, t}
let sessionId = '';
let selected = null;

async function rpc(method, args = {}) {
  for (let i = 0; i < 2; i++) {
    const r = await fetch(RPC, {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-Transmission-Session-Id': sessionId},
      body: JSON.stringify({method, arguments: args}),
    });
    if (r.status === 409) {
      sessionId = r.headers.get('X-Transmission-Session-Id') || '';
      continue;
    }
    if (!r.ok) throw new Error(`${r.status}: ${(await r.text()).trim()}`);
    const v = await r.json();
    if (v.result !== 'success') throw new Error(v.result);
    return v.arguments;
  }
  throw new Error('the RPC refused the session id twice');
}

function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
const rate = (n) => `${bytes(n)}/s`;
const pct = (f) => `${Math.floor(f * 1000) / 10}%`;
function eta(s) {
  if (s < 0) return '';
  if (s < 90) return `${s} s left`;
  if (s < 5400) return `${Math.round(s / 60)} min left`;
  return `${Math.round(s / 3600)} h left`;
}

function makeRow(t) {
  const li = $('#row-tpl').content.firstElementChild.cloneNode(true);
  const row = {id: t.id, li, t};
  li.dataset.id = t.id;
  li.dataset.hash = t.hashString;
  $('.name', li).id = `name-${t.id}`;
  li.setAttribute('aria-labelledby', `name-${t.id}`);
  $('.files', li).id = `files-${t.id}`;
  $('.files-btn', li).setAttribute('aria-controls', `files-${t.id}`);
  $('.toggle', li).addEventListener('click', () => toggle(row));
  $('.files-btn', li).addEventListener('click', () => toggleFiles(row));
  $('.limits-btn', li).addEventListener('click', () => toggleLimits(row));
  $('.limits', li).addEventListener('submit', (e) => applyLimits(row, e));
  $('.remove', li).addEventListener('click', () => askRemove(row));
  li.addEventListener('focusin', () => select(row));
  return row;
}

function fill(row, t) {
  const li = row.li;
  row.t = t;
  const paused = t.status === 0;
  $('.name', li).textContent = t.name;
  // A magnet link's torrent has no size until its metadata is in.
  const fetching = t.metadataPercentComplete < 1;
  const state = fetching && t.status !== 0 ? 'Fetching metadata' : STATUS[t.status] || '?';
  $('.state', li).textContent = t.errorString ? 'Error' : state;
  li.dataset.status = paused ? 'paused' : 'active';
  const bar = $('progress', li);
  bar.value = t.percentDone;
  bar.setAttribute('aria-label', `${t.name}: ${pct(t.percentDone)} of ${bytes(t.sizeWhenDone)}`);
  $('.pct', li).textContent = fetching
    ? `metadata ${pct(t.metadataPercentComplete)}`
    : `${pct(t.percentDone)} of ${bytes(t.sizeWhenDone)}`;
  $('.down', li).textContent = `↓ ${rate(t.rateDownload)}`;
  $('.up', li).textContent = `↑ ${rate(t.rateUpload)}`;
  $('.peers', li).textContent = `${t.peersConnected} peer${t.peersConnected === 1 ? '' : 's'}`;
  $('.eta', li).textContent = paused ? '' : eta(t.eta);
  $('.error', li).textContent = t.errorString;
  const btn = $('.toggle', li);
  btn.textContent = paused ? 'Resume' : 'Pause';
  btn.setAttribute('aria-label', `${paused ? 'Resume' : 'Pause'} ${t.name}`);
  $('.files-btn', li).setAttribute('aria-label', `Files of ${t.name}`);
  $('.limits-btn', li).setAttribute('aria-label', `Speed limits of ${t.name}`);
  $('.remove', li).setAttribute('aria-label', `Remove ${t.name}`);
}

function render(list) {
  const ul = $('#torrents');
  const seen = new Set();
  list.sort((a, b) => a.id - b.id);
  for (const t of list) {
    seen.add(t.id);
    let row = rows.get(t.id);
    if (!row) {
      row = makeRow(t);
      rows.set(t.id, row);
      ul.append(row.li);
    }
    fill(row, t);
    if (!$('.files', row.li).hidden) loadFiles(row);
  }
  for (const [id, row] of rows) {
    if (seen.has(id)) continue;
    row.li.remove();
    rows.delete(id);
    if (selected === row) selected = null;
  }
  $('#empty').hidden = list.length > 0;
  const sum = (f) => list.reduce((a, t) => a + t[f], 0);
  const peers = sum('peersConnected');
  $('#totals').textContent = `${list.length} torrent${list.length === 1 ? '' : 's'} · ↓ ${
    rate(sum('rateDownload'))} · ↑ ${rate(sum('rateUpload'))} · ${peers} peer${peers === 1 ? '' : 's'}`;
}

function renderTracker(st) {
  const box = $('#tracker');
  box.hidden = !st;
  if (!st) return;
  const items = [['Swarms', st.swarms], ['Peers', st.peers], ['Seeders', st.seeders],
    ['Leechers', st.leechers], ['Completed', st.completed], ['Announces', st.announces],
    ['Scrapes', st.scrapes], ['Failures', st.failures], ['Connections', st.connections],
    ['Up', `${Math.floor(st.uptime_secs / 60)} min`]];
  $('#tracker-stats').replaceChildren(...items.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

async function refresh() {
  try {
    const a = await rpc('torrent-get', {fields: FIELDS});
    render(a.torrents);
    const s = await fetch('/page/status');
    if (s.ok) renderTracker((await s.json()).tracker);
    $('#list-msg').textContent = '';
  } catch (e) {
    $('#list-msg').textContent = `Cannot reach btorrent: ${e.message}`;
  }
}

async function act(row, method, args = {}) {
  $('.error', row.li).textContent = '';
  try {
    await rpc(method, {ids: [row.id], ...args});
  } catch (e) {
    $('.error', row.li).textContent = e.message;
  }
  await refresh();
}

const toggle = (row) => act(row, row.t.status === 0 ? 'torrent-start' : 'torrent-stop');

function select(row) {
  if (selected) selected.li.classList.remove('selected');
  selected = row;
  row.li.classList.add('selected');
}

function move(by) {
  const list = [...$('#torrents').children];
  if (!list.length) return;
  const at = selected ? list.indexOf(selected.li) : -1;
  const next = at < 0 ? (by > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, at + by));
  list[next].focus();
}

async function toggleFiles(row) {
  const panel = $('.files', row.li);
  panel.hidden = !panel.hidden;
  $('.files-btn', row.li).setAttribute('aria-expanded', String(!panel.hidden));
  if (!panel.hidden) await loadFiles(row);
}

async function loadFiles(row) {
  const panel = $('.files', row.li);
  const ul = $('.file-list', panel);
  let t;
  try {
    [t] = (await rpc('torrent-get', {ids: [row.id], fields: ['files', 'fileStats']})).torrents;
  } catch (e) {
    $('.files-msg', panel).textContent = e.message;
    return;
  }
  if (!t) return;
  if (ul.children.length !== t.files.length) {
    ul.replaceChildren(...t.files.map((_, i) => fileItem(row, i)));
  }
  t.files.forEach((f, i) => {
    const li = ul.children[i];
    const done = f.length ? f.bytesCompleted / f.length : 1;
    $('input', li).checked = t.fileStats[i].wanted;
    $('label', li).textContent = `${f.name} (${bytes(f.length)}, ${pct(done)})`;
  });
}

async function toggleLimits(row) {
  const form = $('.limits', row.li);
  form.hidden = !form.hidden;
  $('.limits-btn', row.li).setAttribute('aria-expanded', String(!form.hidden));
  if (!form.hidden) {
    $('.limits-msg', form).textContent = '';
    await loadLimits(row);
    $('.up', form).focus();
  }
}

// The form shows the torrent's own limits (empty: none) and its priority.
async function loadLimits(row) {
  const form = $('.limits', row.li);
  let t;
  try {
    [t] = (await rpc('torrent-get', {ids: [row.id], fields: LIMIT_FIELDS})).torrents;
  } catch (e) {
    $('.limits-msg', form).textContent = e.message;
    return;
  }
  if (!t) return;
  $('.up', form).value = t.uploadLimited ? t.uploadLimit : '';
  $('.down', form).value = t.downloadLimited ? t.downloadLimit : '';
  $('.prio', form).value = String(t.bandwidthPriority);
}

// Empty or 0 lifts a limit.
async function applyLimits(row, e) {
  e.preventDefault();
  const form = $('.limits', row.li);
  const msg = $('.limits-msg', form);
  const kbps = (el) => (el.value.trim() === '' ? 0 : Number(el.value));
  const up = kbps($('.up', form));
  const down = kbps($('.down', form));
  const args = {uploadLimited: up > 0, downloadLimited: down > 0,
    bandwidthPriority: Number($('.prio', form).value)};
  if (up > 0) args.uploadLimit = up;
  if (down > 0) args.downloadLimit = down;
  msg.textContent = 'Applying…';
  try {
    await rpc('torrent-set', {ids: [row.id], ...args});
    msg.textContent = 'Applied';
  } catch (err) {
    msg.textContent = `Not applied: ${err.message}`;
  }
  await loadLimits(row);
}

function fileItem(row, i) {
  const li = document.createElement('li');
  const box = document.createElement('input');
  const label = document.createElement('label');
  box.type = 'checkbox';
  box.id = `file-${row.id}-${i}`;
  label.htmlFor = box.id;
  box.addEventListener('change', async () => {
    const msg = $('.files-msg', row.li);
    msg.textContent = '';
    try {
      await rpc('torrent-set', {ids: [row.id], [box.checked ? 'files-wanted' : 'files-unwanted']: [i]});
    } catch (e) {
      box.checked = !box.checked;
      msg.textContent = e.message;
    }
  });
  li.append(box, label);
  return li;
}

function askRemove(row) {
  const d = $('#remove-dialog');
  $('#rm-name').textContent = row.t.name;
  $('#rm-data').checked = false;
  d.returnValue = '';
  d.onclose = async () => {
    if (d.returnValue !== 'remove') {
      row.li.focus();
      return;
    }
    await act(row, 'torrent-remove', {'delete-local-data': $('#rm-data').checked});
    move(0);
  };
  d.showModal();
  $('#rm-cancel').focus();
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(',')[1] || '');
    r.onerror = () => reject(new Error(`cannot read ${file.name}`));
    r.readAsDataURL(file);
  });
}

async function add(e) {
  e.preventDefault();
  const msg = $('#add-msg');
  const link = $('#add-link').value.trim();
  const file = $('#add-file').files[0];
  const args = {paused: $('#add-paused').checked};
  const dir = $('#add-dir').value.trim();
  if (dir) args['download-dir'] = dir;
  msg.textContent = 'Adding…';
  try {
    if (file) args.metainfo = await readBase64(file);
    else if (link) args.filename = link;
    else throw new Error('give a magnet link, a URL or a .torrent file');
    const a = await rpc('torrent-add', args);
    const dup = a['torrent-duplicate'];
    msg.textContent = `${dup ? 'Already there' : 'Added'}: ${(dup || a['torrent-added']).name}`;
    e.target.reset();
  } catch (err) {
    msg.textContent = `Not added: ${err.message}`;
  }
  await refresh();
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || $('#remove-dialog').open) return;
  const el = e.target;
  const typing = el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' ||
    (el.tagName === 'INPUT' && !['checkbox', 'file', 'submit', 'button'].includes(el.type));
  if (typing) {
    if (e.key === 'Escape') el.blur();
    return;
  }
  const inList = $('#torrents').contains(el);
  switch (e.key) {
    case 'j': move(1); break;
    case 'k': move(-1); break;
    case 'ArrowDown': if (!inList) return; move(1); break;
    case 'ArrowUp': if (!inList) return; move(-1); break;
    case 'a': $('#add-link').focus(); break;
    case 'p': if (selected) toggle(selected); break;
    case 'f': if (selected) toggleFiles(selected); break;
    case 'l': if (selected) toggleLimits(selected); break;
    case 'x': case 'Delete': if (selected) askRemove(selected); break;
    default: return;
  }
  e.preventDefault();
}

document.addEventListener('keydown', onKey);
$('#add-form').addEventListener('submit', add);
refresh();
setInterval(refresh, POLL_MS);
