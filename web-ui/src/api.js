// The REST API as the console uses it: the session cookie rides along by itself, and every
// request that changes something carries the CSRF token the login answered.

let csrf = '';
let onLoggedOut = () => {};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function whenLoggedOut(f) {
  onLoggedOut = f;
}

export async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch('/api/v1' + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await r.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // volfiles are text
  }
  if (r.status === 401 && path !== '/login') {
    csrf = '';
    onLoggedOut();
  }
  if (!r.ok) {
    throw new ApiError(r.status, (data && data.error) || `HTTP ${r.status}`);
  }
  return data;
}

export async function login(user, password) {
  const s = await call('POST', '/login', { user, password });
  csrf = s.csrf_token;
  return s;
}

/// The current session after a page reload (the cookie survives it, the token in memory not).
export async function resume() {
  const s = await call('GET', '/session');
  csrf = s.csrf_token;
  return s;
}

export async function logout() {
  try {
    await call('POST', '/logout');
  } finally {
    csrf = '';
  }
}

/// /metrics as {name: [{labels, value}]}; Prometheus text, parsed just enough for the charts.
export async function metrics() {
  const r = await fetch('/metrics', { credentials: 'same-origin' });
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const kv of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[kv[1]] = kv[2];
    }
    (out[m[1]] ||= []).push({ labels, value: Number(m[4]) });
  }
  return out;
}

/// Follows a job the API answered (202: volume start and stop, heal) until it ends, telling
/// `onProgress(job)` each time it looks; returns the job's result or throws its error.
export async function follow(job, onProgress = () => {}) {
  while (job.state === 'running') {
    onProgress(job);
    await new Promise((r) => setTimeout(r, 500));
    job = await call('GET', `/jobs/${encodeURIComponent(job.id)}`);
  }
  if (job.state !== 'succeeded') {
    throw new ApiError(job.error_status || 500, job.error || `${job.kind} ${job.target} failed`);
  }
  return job.result;
}
