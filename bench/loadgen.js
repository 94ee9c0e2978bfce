'use strict';
// Bayeux fan-out load generator for bench/fanout.py (raw Bayeux JSON, same code for every server).
//
//   node bench/loadgen.js '<json config>'
//
// Modes:
//   fanout: N subscribers (websocket or long-polling) on one channel, one WebSocket publisher that
//           publishes at fixed rates (one step per rate: warm-up, measured window, drain).
//   idle:   N WebSocket sessions (handshake + connect + subscribe), then idle; server RSS before/after.
//   rooms:  N long-polling clients, R rooms (/bench/room/<k>), K rooms per client, publishes at a total
//           rate P each with a unique id; expected vs received deliveries counted per message.
//
// replay: true makes the subscribers opt in to Salesforce's replay extension (handshake ext.replay: true,
// subscribe ext.replay {channel: -1}); each event must then carry data.event.replayId (counted per step).
//
// Writes one JSON object per line on stdout ({"event": ...}); the last one is {"event":"done",...}.
// Progress goes to stderr. Every loop is bounded in time; the process exits by itself.
// Server CPU (utime+stime from /proc/<pid>/stat) and RSS (VmRSS from /proc/<pid>/status) are read
// here, at the exact edges of each measured window.

const net = require('net');
const fs = require('fs');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const cfg = Object.assign(
  {
    url: 'http://127.0.0.1:8080/api/v2/notifications',
    mode: 'fanout',
    transport: 'websocket',
    subscribers: 100,
    channel: '/bench/fanout',
    rates: [10],
    warmup_s: 2,
    duration_s: 5,
    drain_s: 10,
    p99_limit_ms: 100,
    stop_on_fail: false,
    stop_min_rate: 0, // never stop before this rate has been measured
    payload_bytes: 64,
    concurrency: 200,
    setup_timeout_s: 120,
    settle_s: 5,
    server_pid: 0,
    clk_tck: 100,
    label: '',
    stagger_connects: true,
    fast_parse: true,
    disturbed_retries: 2,
    quiet_wait_s: 60,
    stagger_connects_ms: 30000,
    replay: false,
    // rooms mode
    rooms: 20,
    rooms_per_client: 10,
    pub_transport: 'lp', // 'lp': random clients publish over a second connection; 'ws': WebSocket publishers
    ws_publishers: 4,
    pub_connect_early: true, // false: a client opens its publish connection with its first publish
    examples: 10,
    // fanout mode: more nodes of one cluster; subscriber i connects to sub_urls[i % length] (the
    // publisher stays on url); latencies are also reported per node (by_node)
    sub_urls: [],
  },
  JSON.parse(process.argv[2] || '{}'),
);

for (const target of [cfg.url, ...cfg.sub_urls]) {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(target).hostname)) {
    console.error('loadgen: loopback targets only');
    process.exit(2);
  }
}
const WS_URL = cfg.url.replace(/^http/, 'ws');
// The raw HTTP clients (long-polling, rooms) talk to cfg.url; the sub_urls change landed without it (rooms broke).
const u = new URL(cfg.url);
const SUB_WS_URLS = cfg.sub_urls.map((x) => x.replace(/^http/, 'ws'));

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
function progress(msg) {
  process.stderr.write(`[loadgen ${cfg.label}] ${msg}\n`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- server process stats ----------------------------------------------------------------------
function serverCpuS() {
  if (!cfg.server_pid) return NaN;
  try {
    const s = fs.readFileSync(`/proc/${cfg.server_pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (parseInt(f[11], 10) + parseInt(f[12], 10)) / cfg.clk_tck; // utime + stime
  } catch (e) {
    return NaN;
  }
}
function serverRss() {
  if (!cfg.server_pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${cfg.server_pid}/status`, 'utf8'));
    return m ? parseInt(m[1], 10) * 1024 : NaN;
  } catch (e) {
    return NaN;
  }
}

// Busy fraction of each core (user+nice+system+irq+softirq+steal) from /proc/stat: softirq work of
// the loopback TCP stack is not charged to any process, so per-process CPU alone can understate load.
function coreTimes() {
  const out = {};
  try {
    for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+) (.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      const idle = v[3] + v[4];
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out[m[1]] = { busy: total - idle, total, softirq: v[6] };
    }
  } catch (e) {
    /* not Linux */
  }
  return out;
}
function coreBusy(a, b) {
  const res = {};
  for (const k of Object.keys(b)) {
    if (!a[k]) continue;
    const dt = b[k].total - a[k].total;
    res['cpu' + k] = dt > 0 ? (100 * (b[k].busy - a[k].busy)) / dt : null;
    res['cpu' + k + '_softirq'] = dt > 0 ? (100 * (b[k].softirq - a[k].softirq)) / dt : null;
  }
  return res;
}

// Wait (bounded) until the machine is quiet: less than 10 points of either core used by anything but
// the server and this process, over one second.
async function waitQuiet(maxS) {
  const deadline = performance.now() + maxS * 1000;
  while (performance.now() < deadline) {
    const c0 = coreTimes();
    const s0 = serverCpuS();
    const u0 = process.cpuUsage();
    await sleep(1000);
    const cores = coreBusy(c0, coreTimes());
    const server = 100 * (serverCpuS() - s0);
    const u1 = process.cpuUsage(u0);
    const own = (100 * (u1.user + u1.system)) / 1e6;
    if ((cores.cpu0 || 0) - server < 10 && (cores.cpu1 || 0) - own < 10) return true;
  }
  return false;
}

// ---- problems (wrong / unexpected replies), kept verbatim --------------------------------------
const problems = [];
let problemCount = 0;
function problem(kind, detail) {
  problemCount++;
  if (problems.length < 20) problems.push({ kind, detail });
  if (problemCount <= 5) progress(`PROBLEM ${kind}: ${JSON.stringify(detail).slice(0, 400)}`);
}

// ---- measurement state -------------------------------------------------------------------------
let curStep = -2; // data.s of the step being measured (-1 = warm-up)
let recvStep = 0; // events of the measured step received (first copy per subscriber+seq)
let dupStep = 0; // repeated or out-of-order (seq <= last seen) events of the measured step
let gapStep = 0; // seq jumps (a later seq arrived before an earlier one, or one is missing)
let noReplayIdStep = 0; // cfg.replay: events of the measured step without a numeric data.event.replayId
let lateOther = 0; // events of an older step that arrived after its drain window
let lat = new Float64Array(1024);
let latNode = new Uint8Array(1024); // cfg.sub_urls: the node (index in sub_urls) of each sample
let latN = 0;
let maxByN = new Float64Array(1); // worst latency per publish of the measured step

function onEvents(sub, events, now) {
  for (let i = 0; i < events.length; i++) {
    const d = events[i].data;
    if (!d || d.s !== curStep) {
      if (d && d.s >= 0 && d.s !== curStep) lateOther++;
      continue;
    }
    if (d.n <= sub.last) {
      dupStep++;
      continue;
    }
    if (d.n !== sub.last + 1) gapStep++;
    if (cfg.replay && !(d.event && typeof d.event.replayId === 'number')) noReplayIdStep++;
    sub.last = d.n;
    sub.recv++;
    recvStep++;
    const l = now - d.t;
    if (latN < lat.length) {
      latNode[latN] = sub.node;
      lat[latN++] = l;
    }
    if (d.n < maxByN.length && l > maxByN[d.n]) maxByN[d.n] = l;
  }
}

// Fast path for frames that hold only events (the bulk of the traffic at high rates): both servers
// re-serialize `data` keeping its key order, so each event carries {"t":..,"s":..,"n":..,"p":"..."}.
// Taken only when the frame has no reply (no "successful", no /meta/) and the number of such data
// objects equals the number of messages; anything else goes through JSON.parse.
const EVENT_RE = /\{"t":(-?[0-9.eE+-]+),"s":(-?\d+),"n":(\d+),"p":"/g;
const fastBatch = [];
const FAST_EVENT = { replayId: 0 }; // stands for a replayId the fast path counted but did not parse
function fastEvents(sub, text, now) {
  if (text.includes('"successful"') || text.includes('/meta/')) return false;
  let channels = 0;
  for (let i = text.indexOf('"channel"'); i >= 0; i = text.indexOf('"channel"', i + 9)) channels++;
  fastBatch.length = 0;
  EVENT_RE.lastIndex = 0;
  let m;
  while ((m = EVENT_RE.exec(text)) !== null) {
    fastBatch.push({ data: { t: parseFloat(m[1]), s: parseInt(m[2], 10), n: parseInt(m[3], 10) } });
  }
  if (channels === 0 || fastBatch.length !== channels) return false;
  if (cfg.replay) {
    // every event must carry its replayId (data.event.replayId, appended after the payload)
    let ids = 0;
    for (let i = text.indexOf('"replayId":'); i >= 0; i = text.indexOf('"replayId":', i + 11)) ids++;
    if (ids !== channels) return false; // the slow path counts what is missing
    for (let i = 0; i < fastBatch.length; i++) fastBatch[i].data.event = FAST_EVENT;
  }
  if (!text.includes('"' + cfg.channel + '"')) return false;
  onEvents(sub, fastBatch, now);
  return true;
}

// Sessions set up within a second would renew their held /meta/connect all at once every 30 s, a
// synchronized storm that real clients (connecting at random times) do not cause. So the first two
// connects of a session ask for a random hold (advice.timeout, honoured by both servers) within
// [1 s, server timeout); later ones use the server's default, and renewals stay spread out.
function staggerAdvice(nth) {
  if (!cfg.stagger_connects || nth > 2) return null;
  return { timeout: Math.round(1000 + Math.random() * (cfg.stagger_connects_ms - 1000)) };
}

// The subscribe of a subscriber: with cfg.replay it asks for new events only (-1), with their replayIds.
function subscribeMessage(client) {
  const m = { channel: '/meta/subscribe', clientId: client.clientId, subscription: cfg.channel, id: String(client.nextId++) };
  if (cfg.replay) m.ext = { replay: { [cfg.channel]: -1 } };
  return m;
}

// ---- Bayeux client over WebSocket --------------------------------------------------------------
class WsClient {
  constructor(role, node = 0) {
    this.role = role; // 'sub' | 'pub' | 'idle'
    this.node = node; // index in cfg.sub_urls (subscribers with sub_urls only)
    this.wsUrl = role === 'sub' && SUB_WS_URLS.length ? SUB_WS_URLS[node] : WS_URL;
    this.clientId = null;
    this.nextId = 1;
    this.last = -1;
    this.recv = 0;
    this.running = true;
    this.connects = 0;
  }

  start() {
    return new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
      const ws = (this.ws = new WebSocket(this.wsUrl, { perMessageDeflate: false, handshakeTimeout: 30000 }));
      ws.on('open', () => {
        const hs = {
          channel: '/meta/handshake',
          version: '1.0',
          supportedConnectionTypes: ['websocket'],
          id: String(this.nextId++),
        };
        if (cfg.replay && this.role !== 'pub') hs.ext = { replay: true };
        this.send([hs]);
      });
      ws.on('message', (buf) => this.onFrame(buf));
      ws.on('error', (e) => {
        if (this._resolve) reject(e);
        else if (this.running) problem('ws_error', { role: this.role, error: String(e) });
      });
      ws.on('close', (code, reason) => {
        if (this._resolve) reject(new Error(`closed ${code} ${reason}`));
        else if (this.running) problem('ws_closed', { role: this.role, code, reason: String(reason) });
      });
    });
  }

  send(msgs) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msgs));
  }

  connect() {
    this.connects++;
    const m = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'websocket', id: String(this.nextId++) };
    const stagger = staggerAdvice(this.connects);
    if (stagger) m.advice = stagger;
    this.send([m]);
  }

  onFrame(buf) {
    const now = performance.now();
    const text = buf.toString();
    if (cfg.fast_parse && this.role !== 'pub' && fastEvents(this, text, now)) return;
    let msgs;
    try {
      msgs = JSON.parse(text);
    } catch (e) {
      problem('bad_json', { role: this.role, frame: String(buf).slice(0, 300) });
      return;
    }
    if (!Array.isArray(msgs)) msgs = [msgs];
    let events = null;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      const ch = m.channel;
      if (ch === cfg.channel && m.successful === undefined && m.data !== undefined) {
        (events || (events = [])).push(m);
      } else if (ch === '/meta/connect') {
        if (m.successful === true) {
          if (this.running) this.connect();
        } else problem('connect_failed', { role: this.role, reply: m });
      } else if (ch === '/meta/handshake') {
        if (m.successful === true && m.clientId) {
          this.clientId = m.clientId;
          if (cfg.replay && this.role !== 'pub' && !(m.ext && m.ext.replay === true)) {
            this._fail('replay_opt_in', m);
            return;
          }
          // Separate frames: Faye answers a frame only when every message in it is answered, and it
          // holds even the first connect, so a batched subscribe reply would wait for the connect.
          if (this.role !== 'pub') this.send([subscribeMessage(this)]);
          this.connect();
          if (this.role === 'pub') this._ready();
        } else this._fail('handshake', m);
      } else if (ch === '/meta/subscribe') {
        if (m.successful === true) this._ready();
        else this._fail('subscribe', m);
      } else if ((ch === cfg.channel || (cfg.mode === 'rooms' && isRoom(ch))) && m.successful !== undefined) {
        if (m.successful === true) pubAcks++;
        if (cfg.mode === 'rooms') onRoomAck(m);
        else if (m.successful !== true) problem('publish_failed', { reply: m });
      } else {
        problem('unexpected_message', { role: this.role, message: m });
      }
    }
    if (events) onEvents(this, events, now);
  }

  _ready() {
    const r = this._resolve;
    this._resolve = null;
    if (r) r(this);
  }

  _fail(what, m) {
    problem(what + '_failed', { role: this.role, reply: m });
    const r = this._reject;
    this._resolve = null;
    if (r) r(new Error(`${what} failed: ${JSON.stringify(m)}`));
  }

  close() {
    this.running = false;
    try {
      this.ws.terminate();
    } catch (e) {
      /* already closed */
    }
  }
}

// ---- Bayeux client over long-polling ----------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client on one TCP connection per subscriber (as a browser holds one
// connection for its long poll), no cookies. Node's http client costs ~110 us of CPU per request on
// this machine, which would make the load generator the bottleneck at 1,000 subscribers; this one
// costs a fraction of that. One request in flight per connection; Content-Length and chunked bodies.
const CRLF2 = Buffer.from('\r\n\r\n');

class RawHttp {
  constructor() {
    this.sock = null;
    this.buf = null;
    this.cb = null;
    this.closeAfter = false;
  }

  _open() {
    const sock = (this.sock = net.connect({ host: u.hostname, port: Number(u.port) }));
    sock.setNoDelay(true);
    sock.on('data', (chunk) => {
      if (this.sock === sock) this._onData(chunk);
    });
    sock.on('error', (e) => {
      if (this.sock === sock) this._fail(e);
    });
    sock.on('close', () => {
      if (this.sock !== sock) return;
      this.sock = null;
      this._fail(new Error('connection closed'));
    });
    this.buf = null;
  }

  request(msgs, cb) {
    if (!this.sock || this.sock.destroyed) this._open();
    this.cb = cb;
    const body = JSON.stringify(msgs);
    this.sock.write(
      `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  _fail(err) {
    const cb = this.cb;
    this.cb = null;
    if (cb) cb(err, null, 0);
  }

  _onData(chunk) {
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const buf = this.buf;
      if (!buf) return;
      const he = buf.indexOf(CRLF2);
      if (he < 0) return;
      const head = buf.toString('latin1', 0, he);
      const status = parseInt(head.slice(9, 12), 10);
      const lower = head.toLowerCase();
      let body;
      let used;
      const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
      if (cl) {
        const len = parseInt(cl[1], 10);
        if (buf.length < he + 4 + len) return;
        body = buf.subarray(he + 4, he + 4 + len);
        used = he + 4 + len;
      } else if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
        const parts = [];
        let pos = he + 4;
        for (;;) {
          const le = buf.indexOf('\r\n', pos);
          if (le < 0) return;
          const size = parseInt(buf.toString('latin1', pos, le), 16);
          if (buf.length < le + 2 + size + 2) return;
          if (size === 0) {
            used = le + 4;
            break;
          }
          parts.push(buf.subarray(le + 2, le + 2 + size));
          pos = le + 2 + size + 2;
        }
        body = Buffer.concat(parts);
      } else {
        this._fail(new Error(`unsupported response framing: ${head.slice(0, 200)}`));
        this.sock.destroy();
        return;
      }
      this.buf = used < buf.length ? buf.subarray(used) : null;
      if (/\r\nconnection:\s*close/.test(lower)) {
        this.sock.destroy();
        this.sock = null;
      }
      this.responses = (this.responses || 0) + 1;
      const cb = this.cb;
      this.cb = null;
      if (cb) cb(null, body, status);
    }
  }

  close() {
    this.cb = null;
    if (this.sock) this.sock.destroy();
  }
}

class LpClient {
  constructor() {
    this.clientId = null;
    this.nextId = 1;
    this.last = -1;
    this.recv = 0;
    this.running = true;
    this.connects = 0;
    this.http = new RawHttp();
  }

  post(msgs, onReply, onError) {
    this.http.request(msgs, (err, body, status) => {
      if (err) return onError(err);
      const now = performance.now();
      if (status !== 200) return onError(new Error(`HTTP ${status}: ${String(body).slice(0, 300)}`));
      let replies;
      try {
        replies = JSON.parse(body);
      } catch (e) {
        return onError(new Error(`bad JSON: ${String(body).slice(0, 300)}`));
      }
      onReply(Array.isArray(replies) ? replies : [replies], now);
    });
  }

  postP(msgs) {
    return new Promise((resolve, reject) => this.post(msgs, resolve, reject));
  }

  async start() {
    const handshake = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: String(this.nextId++) };
    if (cfg.replay) handshake.ext = { replay: true };
    const [hs] = await this.postP([handshake]);
    if (!hs || hs.successful !== true || (cfg.replay && !(hs.ext && hs.ext.replay === true))) {
      problem('handshake_failed', { role: 'lp', reply: hs });
      throw new Error('handshake failed');
    }
    this.clientId = hs.clientId;
    // Subscribe before the first connect: Faye holds even the first connect, the gateway does not.
    const replies = await this.postP([subscribeMessage(this)]);
    const sub = replies.find((m) => m.channel === '/meta/subscribe');
    if (!sub || sub.successful !== true) {
      problem('subscribe_failed', { role: 'lp', replies });
      throw new Error('subscribe failed');
    }
    this.connect();
    return this;
  }

  connect() {
    if (!this.running) return;
    this.connects++;
    const m = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', id: String(this.nextId++) };
    const stagger = staggerAdvice(this.connects);
    if (stagger) m.advice = stagger;
    this.post(
      [m],
      (replies, now) => this.onReplies(replies, now),
      (err) => {
        if (!this.running) return;
        problem('lp_connect_error', { error: String(err) });
        setTimeout(() => this.connect(), 1000); // bounded by `running`
      },
    );
  }

  onReplies(msgs, now) {
    let events = null;
    let again = false;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      if (m.channel === cfg.channel && m.successful === undefined && m.data !== undefined) {
        (events || (events = [])).push(m);
      } else if (m.channel === '/meta/connect') {
        if (m.successful === true) again = true;
        else problem('connect_failed', { role: 'lp', reply: m });
      } else {
        problem('unexpected_message', { role: 'lp', message: m });
      }
    }
    if (events) onEvents(this, events, now);
    if (again) this.connect();
  }

  close() {
    this.running = false;
    this.http.close();
  }
}

// ---- helpers -----------------------------------------------------------------------------------
async function startAll(n, make) {
  const clients = new Array(n);
  let next = 0;
  let failed = 0;
  const deadline = Date.now() + cfg.setup_timeout_s * 1000;
  async function worker() {
    while (next < n && Date.now() < deadline) {
      const i = next++;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const c = make(i);
          clients[i] = c;
          await c.start();
          break;
        } catch (e) {
          if (clients[i]) clients[i].close();
          clients[i] = null;
          if (attempt === 2) {
            failed++;
            problem('setup_failed', { index: i, error: String(e) });
          } else await sleep(200);
        }
      }
      if ((i + 1) % 2000 === 0) progress(`${i + 1}/${n} sessions up`);
    }
  }
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency, n) }, worker));
  return { clients: clients.filter(Boolean), failed };
}

function pct(sorted, q) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}

let pubAcks = 0;

async function publishFor(pub, rate, seconds, step, pad) {
  // Fixed schedule: message k is due at start + k/rate; late ticks catch up (bounded by `count`).
  const count = Math.max(1, Math.round(rate * seconds));
  const start = performance.now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (sent < due) {
      pub.send([
        {
          channel: cfg.channel,
          clientId: pub.clientId,
          id: String(pub.nextId++),
          data: { t: performance.now(), s: step, n: sent, p: pad },
        },
      ]);
      sent++;
    }
    if (sent < count) {
      const nextDue = start + (sent * 1000) / rate;
      await sleep(Math.max(0, Math.min(50, nextDue - performance.now())));
    }
  }
  return { sent, elapsed_s: (performance.now() - start) / 1000 };
}

// ---- modes -------------------------------------------------------------------------------------
async function fanout() {
  const N = cfg.subscribers;
  const t0 = performance.now();
  const rss0 = serverRss();
  if (SUB_WS_URLS.length && cfg.transport !== 'websocket') throw new Error('sub_urls: websocket subscribers only');
  const nodes = Math.max(1, SUB_WS_URLS.length);
  const make = cfg.transport === 'websocket' ? (i) => new WsClient('sub', i % nodes) : () => new LpClient();
  const { clients: subs, failed } = await startAll(N, make);
  const pub = new WsClient('pub');
  await pub.start();
  const setup_s = (performance.now() - t0) / 1000;
  progress(`${subs.length}/${N} ${cfg.transport} subscribers up in ${setup_s.toFixed(1)} s (${failed} failed)`);
  emit({ event: 'ready', subscribers: subs.length, failed, setup_s, server_rss_before: rss0, server_rss_ready: serverRss() });
  const pad = 'x'.repeat(cfg.payload_bytes);
  const steps = [];
  if (cfg.quiet_wait_s > 0 && !(await waitQuiet(cfg.quiet_wait_s))) {
    progress('cores not quiet (another process is running): measuring anyway');
  }
  let stopped = null;
  for (let si = 0; si < cfg.rates.length; si++) {
    const rate = cfg.rates[si];
    let r;
    for (let attempt = 0; ; attempt++) {
      // warm-up at the same rate (events ignored)
      curStep = -1;
      await publishFor(pub, rate, cfg.warmup_s, -1, pad);
      await sleep(200);
      // measured window
      const expectedPer = Math.max(1, Math.round(rate * cfg.duration_s));
      const cap = Math.ceil(expectedPer * subs.length * 1.02) + 1024;
      if (lat.length < cap) {
        lat = new Float64Array(cap);
        latNode = new Uint8Array(cap);
      }
      latN = 0;
      maxByN = new Float64Array(expectedPer + 16);
      recvStep = 0;
      dupStep = 0;
      gapStep = 0;
      noReplayIdStep = 0;
      for (const s of subs) {
        s.last = -1;
        s.recv = 0;
      }
      const sid = si * 100 + attempt; // a retry ignores stragglers of the attempt before
      curStep = sid;
      const acks0 = pubAcks;
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      const scpu0 = serverCpuS();
      const core0 = coreTimes();
      const tStart = performance.now();
      let rssMax = 0;
      const rssTimer = setInterval(() => {
        rssMax = Math.max(rssMax, serverRss() || 0);
      }, 500);
      const pubr = await publishFor(pub, rate, cfg.duration_s, sid, pad);
      const tPubEnd = performance.now();
      const scpu1 = serverCpuS();
      const cores = coreBusy(core0, coreTimes());
      const cpu1 = process.cpuUsage(cpu0);
      const elu1 = performance.eventLoopUtilization(elu0);
      clearInterval(rssTimer);
      const rssEnd = serverRss();
      rssMax = Math.max(rssMax, rssEnd || 0);
      const window_s = (tPubEnd - tStart) / 1000;
      // drain: wait (bounded) until every subscriber has every message
      const expected = pubr.sent * subs.length;
      const drainDeadline = performance.now() + cfg.drain_s * 1000;
      while (recvStep < expected && performance.now() < drainDeadline) await sleep(20);
      const lastRecv = performance.now();
      const drain_s = (lastRecv - tPubEnd) / 1000;
      const scpuDrain = serverCpuS();
      curStep = -2;
      const byNode = [];
      for (let k = 0; k < SUB_WS_URLS.length; k++) {
        const mine = lat.subarray(0, latN).filter((_, j) => latNode[j] === k).sort();
        byNode.push({ url: cfg.sub_urls[k], samples: mine.length, p50_ms: pct(mine, 0.5), p99_ms: pct(mine, 0.99), max_ms: mine.length ? mine[mine.length - 1] : null });
      }
      const sorted = lat.subarray(0, latN).sort();
      const lost = expected - recvStep;
      const worst = Array.from(maxByN.subarray(0, pubr.sent))
        .map((v, n) => [n, v])
        .sort((a, b) => b[1] - a[1]);
      r = {
        rate,
        published: pubr.sent,
        publish_rate: pubr.sent / pubr.elapsed_s,
        publish_acks: pubAcks - acks0,
        subscribers: subs.length,
        expected,
        delivered: recvStep,
        lost,
        duplicates: dupStep,
        out_of_order: gapStep,
        replay: cfg.replay,
        missing_replay_id: noReplayIdStep,
        delivered_per_s: recvStep / Math.max(window_s, (lastRecv - tStart) / 1000),
        window_s,
        drain_s,
        p50_ms: pct(sorted, 0.5),
        p90_ms: pct(sorted, 0.9),
        p99_ms: pct(sorted, 0.99),
        max_ms: sorted.length ? sorted[sorted.length - 1] : null,
        by_node: byNode,
        server_cpu_pct: (100 * (scpu1 - scpu0)) / window_s,
        server_cpu_pct_incl_drain: (100 * (scpuDrain - scpu0)) / ((lastRecv - tStart) / 1000),
        server_rss_end: rssEnd,
        server_rss_max: rssMax,
        client_cpu_pct: (100 * (cpu1.user + cpu1.system)) / 1e6 / window_s,
        client_elu: elu1.utilization,
        cores,
        // publishes whose slowest delivery took >= the p99 limit, and the five worst (seq, s offset, ms)
        slow_publishes: worst.filter((w) => w[1] >= cfg.p99_limit_ms).length,
        worst_publishes: worst.slice(0, 5).map(([n, v]) => ({ n, at_s: +(n / rate).toFixed(2), max_ms: +v.toFixed(1) })),
      };
      r.pass = lost === 0 && noReplayIdStep === 0 && r.p99_ms !== null && r.p99_ms < cfg.p99_limit_ms && r.publish_rate >= 0.95 * rate;
      r.attempt = attempt;
      // softirq of this benchmark's own loopback traffic stays under ~20 points; beyond that it is
      // another process's traffic
      r.foreign_cpu0 = r.cores.cpu0 - r.server_cpu_pct - Math.min(r.cores.cpu0_softirq || 0, 20);
      r.foreign_cpu1 = r.cores.cpu1 - r.client_cpu_pct - Math.min(r.cores.cpu1_softirq || 0, 20);
      r.disturbed = r.foreign_cpu0 > 10 || r.foreign_cpu1 > 10;
      if (!r.disturbed || attempt >= cfg.disturbed_retries) break;
      progress(
        `rate ${rate}/s disturbed (another process took ${r.foreign_cpu0.toFixed(0)} / ${r.foreign_cpu1.toFixed(0)} ` +
          `points of core 0 / 1): waiting for quiet cores, then measuring again`,
      );
      if (recvStep < expected) await sleep(1000);
      await waitQuiet(cfg.quiet_wait_s);
    }
    steps.push(r);
    emit({ event: 'step', ...r });
    progress(
      `rate ${rate}/s: delivered ${r.delivered}/${r.expected} (lost ${r.lost}), p50 ${r.p50_ms && r.p50_ms.toFixed(1)} ms, ` +
        `p99 ${r.p99_ms && r.p99_ms.toFixed(1)} ms, server CPU ${r.server_cpu_pct.toFixed(0)}%, ` +
        `client CPU ${r.client_cpu_pct.toFixed(0)}% (ELU ${r.client_elu.toFixed(2)}), ` +
        `core0 ${(r.cores.cpu0 || 0).toFixed(0)}% core1 ${(r.cores.cpu1 || 0).toFixed(0)}%, ` +
        `slow publishes ${r.slow_publishes}/${r.published}, worst ${JSON.stringify(r.worst_publishes.slice(0, 3))}` +
        (r.attempt ? ` (attempt ${r.attempt + 1})` : '') +
        (r.disturbed ? ' DISTURBED' : ''),
    );
    if (!r.pass && cfg.stop_on_fail && rate >= cfg.stop_min_rate) {
      stopped = rate;
      break;
    }
    if (r.lost > 0) await sleep(1000); // let an overloaded server catch up a little
  }
  pub.close();
  for (const s of subs) s.close();
  return { steps, stopped_at: stopped, setup_s, subscribers: subs.length, setup_failed: failed };
}

async function idle() {
  const N = cfg.subscribers;
  await sleep(500);
  const rssBefore = serverRss();
  const cpuBefore = serverCpuS();
  const t0 = performance.now();
  const { clients, failed } = await startAll(N, () => new WsClient('idle'));
  const setup_s = (performance.now() - t0) / 1000;
  progress(`${clients.length}/${N} idle WebSocket sessions up in ${setup_s.toFixed(1)} s (${failed} failed)`);
  await sleep(cfg.settle_s * 1000);
  const samples = [];
  for (let i = 0; i < 5; i++) {
    samples.push(serverRss());
    await sleep(200);
  }
  const rssAfter = samples.sort((a, b) => a - b)[2];
  const cpuIdle0 = serverCpuS();
  await sleep(2000);
  const idleCpuPct = (100 * (serverCpuS() - cpuIdle0)) / 2;
  // liveness check: one message to every idle session
  const pub = new WsClient('pub');
  await pub.start();
  recvStep = 0;
  dupStep = 0;
  gapStep = 0;
  latN = 0;
  if (lat.length < clients.length + 16) lat = new Float64Array(clients.length + 16);
  for (const c of clients) {
    c.last = -1;
    c.recv = 0;
  }
  curStep = 0;
  await publishFor(pub, 1, 1, 0, 'x');
  const deadline = performance.now() + cfg.drain_s * 1000;
  while (recvStep < clients.length && performance.now() < deadline) await sleep(20);
  const sorted = lat.subarray(0, latN).sort();
  const result = {
    sessions: clients.length,
    setup_failed: failed,
    setup_s,
    server_rss_before: rssBefore,
    server_rss_after: rssAfter,
    rss_per_session: (rssAfter - rssBefore) / Math.max(1, clients.length),
    server_cpu_setup_s: cpuIdle0 - cpuBefore,
    server_idle_cpu_pct: idleCpuPct,
    check_expected: clients.length,
    check_delivered: recvStep,
    check_lost: clients.length - recvStep,
    check_p99_ms: pct(sorted, 0.99),
  };
  emit({ event: 'idle', ...result });
  progress(
    `idle: ${clients.length} sessions, RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB, ` +
      `${(result.rss_per_session / 1024).toFixed(2)} KiB/session; liveness ${recvStep}/${clients.length}`,
  );
  pub.close();
  for (const c of clients) c.close();
  return result;
}

// ---- rooms: N long-polling clients in R rooms, every message counted ----------------------------
// Client c is subscribed to K distinct rooms (chosen at random, fixed for the run). Message n is
// published on room pubRoom[n] by a random client over its second keep-alive connection (as a browser
// holds a second connection for publishes while its connect is held; cfg.pub_transport 'ws': by
// cfg.ws_publishers WebSocket publishers instead). Every client counts, per message, the copies it
// received, whatever response carried them (a connect reply, or a publish / subscribe reply: the gateway
// lets queued events ride on any response of the session). Subscriptions are all made before the first
// publish and never change, so the expected recipients of message n are the subscribers of its room.
const ROOM_PREFIX = '/bench/room/';
function isRoom(ch) {
  return typeof ch === 'string' && ch.startsWith(ROOM_PREFIX);
}

const R = {
  M: 0, // messages that can be published (array sizes)
  counts: null, // Uint8Array[client * M + n]: copies received (saturating at 255)
  pubRoom: null, // Int32Array[n]
  pubT: null, // Float64Array[n]: performance.now() at send
  pubClient: null, // Int32Array[n]: publishing client (-1 - i: WebSocket publisher i)
  pubAck: null, // Uint8Array[n]: 0 no reply, 1 successful, 2 failed
  pubAckT: null, // Float64Array[n]: performance.now() when the reply (or the error) came
  received: 0, // first copies of expected deliveries
  unexpected: 0, // copies at clients not subscribed to the room
  duplicates: 0,
  // First copies of n that arrived after a higher n of the same room at the same client: publishes travel
  // over different connections (the server may see them in another order) and a client's events over two.
  reordered: 0,
  reorderedSamePublisher: 0,
  late: 0, // first copies received after the publish window ended
  lateMs: new Uint32Array(100001), // first copies by ms after the window's end (last bucket: >= 100 s)
  via: { connect: 0, publish: 0, setup: 0, other: 0 },
  lat: null,
  latN: 0,
  tStart: 0,
  tEnd: Infinity,
  subscribed: null, // Array[room] -> Int32Array of client indexes
};

function onRoomAck(m) {
  const n = typeof m.id === 'string' ? pubIdToN.get(m.id) : undefined;
  if (n === undefined) return;
  pubIdToN.delete(m.id);
  R.pubAck[n] = m.successful === true ? 1 : 2;
  R.pubAckT[n] = performance.now();
}
const pubIdToN = new Map(); // WebSocket publishers: Bayeux id -> n

function onRoomEvents(client, msgs, now, via) {
  let count = 0;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i];
    if (!isRoom(m.channel) || m.successful !== undefined || !m.data) continue;
    count++;
    const n = m.data.n;
    if (typeof n !== 'number' || n < 0 || n >= R.M) continue;
    R.via[via] = (R.via[via] || 0) + 1;
    if (!client.roomSet.has(m.data.r)) {
      R.unexpected++;
      continue;
    }
    const k = client.index * R.M + n;
    const c = R.counts[k];
    if (c === 0) {
      R.received++;
      const last = client.lastByRoom.get(m.data.r);
      if (last !== undefined && n < last) R.reordered++;
      else client.lastByRoom.set(m.data.r, n);
      // the same, among the messages of one publisher (its publishes leave one at a time, in order)
      const key = m.data.r * 1048576 + (R.pubClient[n] + 1024);
      const lastP = client.lastByPub.get(key);
      if (lastP !== undefined && n < lastP) R.reorderedSamePublisher++;
      else client.lastByPub.set(key, n);
      if (now > R.tEnd) {
        R.late++;
        R.lateMs[Math.min(100000, Math.floor(now - R.tEnd))]++;
      }
      if (R.latN < R.lat.length) R.lat[R.latN++] = now - m.data.t;
    } else R.duplicates++;
    if (c < 255) R.counts[k] = c + 1;
  }
  return count;
}

class RoomClient {
  constructor(index, rooms) {
    this.index = index;
    this.rooms = rooms;
    this.roomSet = new Set(rooms);
    this.lastByRoom = new Map(); // room -> highest n received
    this.lastByPub = new Map(); // room and publisher -> highest n received
    this.clientId = null;
    this.nextId = 1;
    this.running = true;
    this.http = new RawHttp(); // handshake, subscribe, connect
    this.pubHttp = new RawHttp(); // publishes
    this.pubBusy = false;
    this.connects = 0;
    this.connectSent = 0;
    this.log = []; // flat: [sent, answered (performance.now()), events, HTTP status] per connect
    this.sessions = 0; // handshakes made (> 1: the session was lost and made again)
    this.lost = []; // [time_ms, reason] when a connect was refused (session unknown)
  }

  post(http, msgs, onReply, onError) {
    http.request(msgs, (err, body, status) => {
      if (err) return onError(err, 0);
      const now = performance.now();
      if (status !== 200) return onError(new Error(`HTTP ${status}: ${String(body).slice(0, 300)}`), status);
      let replies;
      try {
        replies = JSON.parse(body);
      } catch (e) {
        return onError(new Error(`bad JSON: ${String(body).slice(0, 300)}`), status);
      }
      onReply(Array.isArray(replies) ? replies : [replies], now);
    });
  }

  postP(msgs) {
    return new Promise((resolve, reject) => this.post(this.http, msgs, (r, now) => resolve([r, now]), reject));
  }

  async start() {
    this.sessions++;
    const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: String(this.nextId++) };
    const [[reply]] = await this.postP([hs]);
    if (!reply || reply.successful !== true) {
      problem('handshake_failed', { role: 'room', reply });
      throw new Error('handshake failed');
    }
    this.clientId = reply.clientId;
    const subs = this.rooms.map((r) => ({
      channel: '/meta/subscribe',
      clientId: this.clientId,
      subscription: ROOM_PREFIX + r,
      id: String(this.nextId++),
    }));
    const [replies, now] = await this.postP(subs);
    onRoomEvents(this, replies, now, 'setup');
    const ok = replies.filter((m) => m.channel === '/meta/subscribe' && m.successful === true).length;
    if (ok !== this.rooms.length) {
      problem('subscribe_failed', { role: 'room', replies: replies.slice(0, 3) });
      throw new Error('subscribe failed');
    }
    // The publish connection is opened now, not by the first publish: 1,000 connections opened within
    // the first second of the window would measure the listen backlog, not delivery.
    if (cfg.pub_connect_early && !this.pubHttp.sock) this.pubHttp._open();
    this.connect();
    return this;
  }

  connect() {
    if (!this.running) return;
    this.connects++;
    const sent = performance.now();
    const m = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', id: String(this.nextId++) };
    const stagger = staggerAdvice(this.connects);
    if (stagger) m.advice = stagger;
    this.post(
      this.http,
      [m],
      (replies, now) => {
        const events = onRoomEvents(this, replies, now, 'connect');
        const reply = replies.find((x) => x.channel === '/meta/connect');
        this.log.push(sent, now, events, 200);
        if (reply && reply.successful === true) return this.connect();
        problem('connect_failed', { role: 'room', reply });
        const again = reply && reply.advice && reply.advice.reconnect === 'handshake';
        if (again && this.running) {
          // The session is gone (expired or evicted): make a new one, as a CometD client does.
          this.lost.push(+(now - R.tStart).toFixed(1), String(reply.error || ''));
          this.start().catch((e) => problem('rehandshake_failed', { error: String(e) }));
        }
      },
      (err, status) => {
        this.log.push(sent, performance.now(), 0, status);
        if (!this.running) return;
        problem('lp_connect_error', { error: String(err) });
        setTimeout(() => this.connect(), 100); // bounded by `running`
      },
    );
  }

  publish(n, room, pad) {
    this.pubBusy = true;
    const t = performance.now();
    R.pubRoom[n] = room;
    R.pubT[n] = t;
    R.pubClient[n] = this.index;
    const m = {
      channel: ROOM_PREFIX + room,
      clientId: this.clientId,
      id: String(this.nextId++),
      data: { n, r: room, t, p: pad },
    };
    this.post(
      this.pubHttp,
      [m],
      (replies, now) => {
        this.pubBusy = false;
        const ack = replies.find((x) => x.channel === m.channel && x.successful !== undefined && x.id === m.id);
        R.pubAck[n] = ack && ack.successful === true ? 1 : 2;
        R.pubAckT[n] = now;
        if (R.pubAck[n] !== 1) problem('publish_failed', { reply: ack || replies.slice(0, 2) });
        onRoomEvents(this, replies, now, 'publish');
      },
      (err) => {
        this.pubBusy = false;
        R.pubAck[n] = 2;
        R.pubAckT[n] = performance.now();
        problem('publish_error', { error: String(err), responses_on_connection: this.pubHttp.responses || 0, at_ms: +(performance.now() - R.tStart).toFixed(1) });
      },
    );
  }

  close() {
    this.running = false;
    this.http.close();
    this.pubHttp.close();
  }
}

// Room k of client c: K distinct rooms per client, each room with about N*K/R subscribers.
function chooseRooms(nClients, nRooms, perClient) {
  const out = [];
  for (let c = 0; c < nClients; c++) {
    const set = new Set();
    // round robin start plus random distinct rooms: balanced and still mixed
    set.add(c % nRooms);
    while (set.size < Math.min(perClient, nRooms)) set.add(Math.floor(Math.random() * nRooms));
    out.push(Array.from(set));
  }
  return out;
}

// Where message n's publish falls in client c's connect history (times in ms from the window start).
function connectContext(client, n) {
  const t = R.pubT[n];
  const log = client.log;
  let before = null;
  let after = null;
  let idx = -1;
  for (let i = 0; i < log.length; i += 4) {
    if (log[i] <= t) {
      before = i;
      idx = i / 4;
    } else if (after === null) after = i;
  }
  const one = (i) =>
    i === null
      ? null
      : {
          nth: i / 4,
          sent_ms: +(log[i] - R.tStart).toFixed(1),
          answered_ms: +(log[i + 1] - R.tStart).toFixed(1),
          events: log[i + 2],
          status: log[i + 3],
        };
  return {
    published_ms: +(t - R.tStart).toFixed(1),
    connect_sent_before: one(before), // the last connect sent before the publish (in flight or answered)
    next_connect: one(after),
    connects_total: log.length / 4,
    connect_index_at_publish: idx,
    sessions: client.sessions,
    lost_sessions: client.lost,
  };
}

async function rooms() {
  const N = cfg.subscribers;
  const nRooms = cfg.rooms;
  const perClient = Math.min(cfg.rooms_per_client, nRooms);
  const rate = cfg.rates[0];
  const M = Math.max(1, Math.ceil(rate * cfg.duration_s)) + 16;
  R.M = M;
  R.counts = new Uint8Array(N * M);
  R.pubRoom = new Int32Array(M).fill(-1);
  R.pubT = new Float64Array(M);
  R.pubClient = new Int32Array(M).fill(-2);
  R.pubAck = new Uint8Array(M);
  R.pubAckT = new Float64Array(M);
  const assignment = chooseRooms(N, nRooms, perClient);
  const expectedPer = (N * perClient) / nRooms;
  R.lat = new Float64Array(Math.ceil(M * expectedPer * 1.2) + 1024);
  const t0 = performance.now();
  const { clients, failed } = await startAll(N, (i) => new RoomClient(i, assignment[i]));
  // startAll may fail some clients: index the ones up by their own index
  const byIndex = new Array(N).fill(null);
  for (const c of clients) byIndex[c.index] = c;
  R.subscribed = Array.from({ length: nRooms }, () => []);
  for (const c of clients) for (const r of c.rooms) R.subscribed[r].push(c.index);
  const pubs = [];
  if (cfg.pub_transport === 'ws') {
    for (let i = 0; i < cfg.ws_publishers; i++) {
      const p = new WsClient('pub');
      await p.start();
      pubs.push(p);
    }
  }
  const setup_s = (performance.now() - t0) / 1000;
  progress(`${clients.length}/${N} long-polling clients in ${nRooms} rooms (${perClient} each) up in ${setup_s.toFixed(1)} s (${failed} failed)`);
  emit({ event: 'ready', subscribers: clients.length, failed, setup_s, server_rss_ready: serverRss() });
  await sleep(cfg.settle_s * 1000); // first connects answered, held connects in place
  const pad = 'x'.repeat(cfg.payload_bytes);

  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const scpu0 = serverCpuS();
  const core0 = coreTimes();
  R.tStart = performance.now();
  const count = M - 16;
  let sent = 0;
  let busySkips = 0;
  let wsNext = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - R.tStart) * rate) / 1000) + 1);
    while (sent < due) {
      const room = Math.floor(Math.random() * nRooms);
      if (pubs.length) {
        const pi = wsNext++ % pubs.length;
        const p = pubs[pi];
        const id = 'p' + sent; // unique over every publisher (each has its own nextId)
        R.pubRoom[sent] = room;
        R.pubT[sent] = performance.now();
        R.pubClient[sent] = -1 - pi;
        pubIdToN.set(id, sent);
        p.send([{ channel: ROOM_PREFIX + room, clientId: p.clientId, id, data: { n: sent, r: room, t: R.pubT[sent], p: pad } }]);
      } else {
        // a random client whose publish connection is free
        let c = null;
        for (let tries = 0; tries < 64 && c === null; tries++) {
          const cand = clients[Math.floor(Math.random() * clients.length)];
          if (!cand.pubBusy && cand.running) c = cand;
          else busySkips++;
        }
        if (c === null) c = clients.find((x) => !x.pubBusy) || null;
        if (c === null) break; // every publish connection busy: the next tick retries
        c.publish(sent, room, pad);
      }
      sent++;
    }
    if (sent < count) {
      const nextDue = R.tStart + (sent * 1000) / rate;
      await sleep(Math.max(0, Math.min(50, nextDue - performance.now())));
    }
  }
  R.tEnd = performance.now();
  const window_s = (R.tEnd - R.tStart) / 1000;
  const scpu1 = serverCpuS();
  const cores = coreBusy(core0, coreTimes());
  const cpu1 = process.cpuUsage(cpu0);
  const elu1 = performance.eventLoopUtilization(elu0);

  // Drain: wait (bounded) for every publish's reply and every delivery of every publish.
  let allExpected = 0;
  for (let n = 0; n < sent; n++) allExpected += R.subscribed[R.pubRoom[n]].length;
  const answered = () => {
    let a = 0;
    for (let n = 0; n < sent; n++) a += R.pubAck[n] !== 0;
    return a;
  };
  const drainDeadline = performance.now() + cfg.drain_s * 1000;
  while ((R.received < allExpected || answered() < sent) && performance.now() < drainDeadline) await sleep(20);
  const tDrained = performance.now();
  const drain_s = (tDrained - R.tEnd) / 1000;
  // The drain ended by its deadline: what is still missing may be in flight (a server far behind).
  const drainTimedOut = R.received < allExpected || answered() < sent;
  const receivedInWindow = R.received - R.late;
  // What a count that stopped `ms` after the window's end would have called missing (hypothesis: the
  // issue's count stopped while deliveries were still in flight).
  const lateAfter = (ms) => {
    let k = 0;
    for (let i = ms; i < R.lateMs.length; i++) k += R.lateMs[i];
    return k;
  };
  // Expected deliveries: the room's subscribers for every publish the server accepted (successful
  // reply). Deliveries of publishes that failed or got no reply are counted apart.
  let expected = 0;
  let receivedAccepted = 0;
  let notAcceptedDelivered = 0;
  let notAcceptedExpected = 0;
  for (let n = 0; n < sent; n++) {
    const subsOf = R.subscribed[R.pubRoom[n]];
    let got = 0;
    for (const c of subsOf) got += R.counts[c * M + n] > 0;
    if (R.pubAck[n] === 1) {
      expected += subsOf.length;
      receivedAccepted += got;
    } else {
      notAcceptedExpected += subsOf.length;
      notAcceptedDelivered += got;
    }
  }

  // per message: expected, received, missing, duplicates
  let missing = 0;
  let messagesMissing = 0;
  let dupCopies = 0;
  let acksOk = 0;
  let acksFailed = 0;
  let acksNone = 0;
  const examples = [];
  const missingByClient = new Map();
  const missingByPhase = { last_second: 0, earlier: 0 };
  for (let n = 0; n < sent; n++) {
    const a = R.pubAck[n];
    if (a === 1) acksOk++;
    else if (a === 2) acksFailed++;
    else acksNone++;
    if (a !== 1) continue; // not accepted: counted apart
    let miss = 0;
    for (const c of R.subscribed[R.pubRoom[n]]) {
      const k = c * M + n;
      const got = R.counts[k];
      if (got === 0) {
        miss++;
        missingByClient.set(c, (missingByClient.get(c) || 0) + 1);
        if (examples.length < cfg.examples) {
          examples.push({
            n,
            client: c,
            room: R.pubRoom[n],
            publisher: R.pubClient[n],
            ack: a,
            // the publish's reply came this long before the count stopped (small: likely still in flight)
            ack_before_count_end_ms: +(tDrained - R.pubAckT[n]).toFixed(1),
            ...connectContext(byIndex[c], n),
          });
        }
      } else if (got > 1) dupCopies += got - 1;
    }
    if (miss) {
      messagesMissing++;
      missing += miss;
      if (R.tEnd - R.pubT[n] <= 1000) missingByPhase.last_second += miss;
      else missingByPhase.earlier += miss;
    }
  }
  const sorted = R.lat.subarray(0, R.latN).sort();
  const result = {
    clients: clients.length,
    setup_failed: failed,
    setup_s,
    rooms: nRooms,
    rooms_per_client: perClient,
    subscribers_per_room: R.subscribed.map((s) => s.length).reduce((a, b) => a + b, 0) / nRooms,
    rate,
    pub_transport: pubs.length ? 'ws' : 'lp',
    published: sent,
    publish_rate: sent / window_s,
    publish_busy_skips: busySkips,
    acks_ok: acksOk,
    acks_failed: acksFailed,
    acks_missing: acksNone,
    expected,
    received: receivedAccepted,
    received_all: R.received,
    not_accepted_expected: notAcceptedExpected,
    not_accepted_delivered: notAcceptedDelivered,
    received_in_window: receivedInWindow,
    received_late: R.late,
    missing,
    missing_if_counted_at: Object.fromEntries(
      [0, 10, 50, 100, 250, 500, 1000, 2000].map((ms) => [`${ms}ms`, missing + lateAfter(ms)]),
    ),
    messages_with_missing: messagesMissing,
    missing_published_in_last_second: missingByPhase.last_second,
    clients_with_missing: missingByClient.size,
    duplicates: R.duplicates,
    reordered: R.reordered,
    reordered_same_publisher: R.reorderedSamePublisher,
    unexpected: R.unexpected,
    via: R.via,
    delivered_per_s: R.received / Math.max(window_s, 1e-9),
    window_s,
    drain_s,
    drain_timed_out: drainTimedOut,
    p50_ms: pct(sorted, 0.5),
    p99_ms: pct(sorted, 0.99),
    max_ms: sorted.length ? sorted[sorted.length - 1] : null,
    server_cpu_pct: (100 * (scpu1 - scpu0)) / window_s,
    server_rss_end: serverRss(),
    client_cpu_pct: (100 * (cpu1.user + cpu1.system)) / 1e6 / window_s,
    client_elu: elu1.utilization,
    cores,
    lost_sessions: clients.reduce((a, c) => a + c.lost.length / 2, 0),
    examples,
  };
  emit({ event: 'rooms', ...result });
  progress(
    `rooms: published ${sent} (${result.publish_rate.toFixed(0)}/s, acks ok ${acksOk}, failed ${acksFailed}, none ${acksNone}); ` +
      `expected ${expected}, received ${receivedAccepted} (${R.late} after the window), missing ${missing}, duplicates ${R.duplicates}, ` +
      `unexpected ${R.unexpected}; via ${JSON.stringify(R.via)}; server CPU ${result.server_cpu_pct.toFixed(0)}%, ` +
      `client CPU ${result.client_cpu_pct.toFixed(0)}% (ELU ${result.client_elu.toFixed(2)})`,
  );
  for (const p of pubs) p.close();
  for (const c of clients) c.close();
  return result;
}

async function main() {
  const hardStop = setTimeout(() => {
    emit({ event: 'done', error: 'hard time limit reached', problems, problem_count: problemCount });
    process.exit(3);
  }, (cfg.hard_limit_s || 1800) * 1000);
  hardStop.unref();
  let result;
  try {
    result = cfg.mode === 'idle' ? await idle() : cfg.mode === 'rooms' ? await rooms() : await fanout();
  } catch (e) {
    emit({ event: 'done', error: String(e && e.stack ? e.stack : e), problems, problem_count: problemCount });
    process.exit(1);
  }
  emit({ event: 'done', result, problems, problem_count: problemCount });
  setTimeout(() => process.exit(0), 200);
}

main();
