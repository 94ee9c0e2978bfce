// The supervisor wallboard: the state from the supervisor's REST views (/api/v2/supervisor/...), then live
// from CometD events with the official CometD JavaScript client (the same one the agent desktop uses):
//   /v2/agents/**          agent state: online/offline, preview sessions, records taken and released
//   /v2/waitfield/contacts waiting-field contacts created, routed, connected, handled, elapsed, removed
//   /v2/dialler/contacts   dialler contacts imported, updated, deleted, locked, unlocked
// Agents are updated from their events alone; a waiting-field or dialler event (or an agent's record event)
// makes the page read the queue or campaign figures again, once per burst, since those counts depend on the
// store (callable = due now, not locked, ...). Nothing is polled. After a lost session the client handshakes
// again: the page subscribes again and reads the whole state again, so nothing missed stays missing.

import { AckExtension, CometD } from "./vendor/cometd/cometd.js";
import { t } from "./i18n.js";
import { basicAuth, clock, configure, element } from "./page.js";
import { isMissed, replayExtension } from "./replay.js";

const VIEWS = "/api/v2/supervisor";
const CHANNELS = ["/v2/agents/**", "/v2/waitfield/contacts", "/v2/dialler/contacts"];
const FEED_LIMIT = 300;
const REFRESH_MS = 150;
const RELEASING = new Set(["RecordCompleted", "RecordRejected", "RecordRescheduled", "RecordDoNotCall", "RecordCancel"]);

const $ = (selector) => document.querySelector(selector);

const state = {
    user: null,
    auth: null,
    bayeuxPath: null,
    cometd: null,
    connection: "disconnected",
    everConnected: false,
    loads: 0,                 // how often the whole state was read (the test sees a re-read after a reconnect)
    agents: new Map(),        // name -> {online, sessions, preview: Set, held: Map(handle -> campaign)}
    campaigns: [],            // [{id, name, total, callable, held, done}]
    queues: [],               // [{queue, waiting, longestWaitSince, estimate, routedToday, elapsedToday}]
    refresh: new Set(),       // views to read again ("campaigns", "queues")
    refreshTimer: null,
};

// -- helpers -----------------------------------------------------------------------------------------------

function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function number(field, value) {
    return element("td", { "class": `number${value ? "" : " zero"}`, "data-field": field, "data-value": value }, String(value));
}

async function view(name) {
    const response = await fetch(`${VIEWS}/${name}`, { headers: { Authorization: state.auth } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || body.statusCode !== 0) {
        const error = new Error(body.statusMessage ?? `HTTP ${response.status}`);
        error.status = response.status;
        throw error;
    }
    return body[name];
}

// -- the state -----------------------------------------------------------------------------------------------

function setAgents(list) {
    state.agents = new Map(list.map((a) => [a.agent, {
        online: a.online,
        sessions: a.sessions,
        preview: new Set(a.preview),
        held: new Map(a.held.map((h) => [h.recordHandle, h.campaign])),
    }]));
}

async function loadAll() {
    const [agents, campaigns, queues] = await Promise.all([view("agents"), view("campaigns"), view("queues")]);
    setAgents(agents);
    state.campaigns = campaigns;
    state.queues = queues;
    state.loads += 1;
    document.body.dataset.loads = String(state.loads);
    render();
}

// Read some views again, once per burst of events.
function refreshSoon(...names) {
    for (const name of names) state.refresh.add(name);
    if (state.refreshTimer !== null) return;
    state.refreshTimer = setTimeout(async () => {
        state.refreshTimer = null;
        const names = [...state.refresh];
        state.refresh.clear();
        try {
            for (const name of names) state[name] = await view(name);
            render();
        } catch (error) {
            addFeed(element("li", { "class": "connection alert" },
                element("time", {}, clock()), element("span", { "class": "type" }, error.message)));
        }
    }, REFRESH_MS);
}

function agentOf(name) {
    let agent = state.agents.get(name);
    if (!agent) state.agents.set(name, agent = { online: false, sessions: 0, preview: new Set(), held: new Map() });
    return agent;
}

function onAgent(message) {
    const data = message.data ?? {};
    if (isMissed(message)) {
        // Replayed after a gap: the state read again after the re-handshake already counts it.
        feedMissed("agent", data.type, data.referenceId, [data.agent, data.campaign, data.recordHandle]);
        return;
    }
    const agent = agentOf(data.agent);
    switch (data.type) {
    case "AgentOnline":
    case "AgentOffline":
        agent.online = data.type === "AgentOnline";
        agent.sessions = data.sessions ?? (agent.online ? 1 : 0);
        break;
    case "PreviewSessionStarted":
        agent.preview.add(data.campaign);
        break;
    case "PreviewSessionEnded":
        agent.preview.delete(data.campaign);
        // Ending the session released the agent's records in that campaign.
        for (const [handle, campaign] of agent.held) if (campaign === data.campaign) agent.held.delete(handle);
        refreshSoon("campaigns");
        break;
    case "RecordTaken":
        agent.held.set(data.recordHandle, data.campaign);
        refreshSoon("campaigns");
        break;
    default:
        if (RELEASING.has(data.type)) {
            agent.held.delete(data.recordHandle);
            refreshSoon("campaigns");
        }
    }
    feed("agent", data.type, data.referenceId, [
        data.agent, data.campaign, data.recordHandle != null ? t("record {handle}", { handle: data.recordHandle }) : null,
    ], data.type === "RecordCancel");
    renderAgents();
}

function onWaitfield(message) {
    const data = message.data ?? {};
    if (isMissed(message)) return feedMissed("waitfield", data.type, data.referenceId, [data.queue, data.externalId]);
    feed("waitfield", data.type, data.referenceId, [data.queue, data.externalId], data.type === "ContactElapsed");
    refreshSoon("queues", "campaigns");   // routing adds a callback record to the queue's campaign
}

function onDialler(message) {
    const data = message.data ?? {};
    if (isMissed(message)) return feedMissed("dialler", data.type, data.referenceId, [`ID ${data.ID}`, data.UserData]);
    feed("dialler", data.type, data.referenceId, [`ID ${data.ID}`, data.UserData], false);
    refreshSoon("campaigns");
}

// -- rendering -----------------------------------------------------------------------------------------------

function addFeed(item) {
    const list = $("#feed");
    list.prepend(item);
    while (list.childElementCount > FEED_LIMIT) list.lastElementChild.remove();
}

function feed(source, type, referenceId, details, alert) {
    addFeed(element("li", {
        "class": alert ? "event alert" : "event",
        "data-source": source,
        "data-type": type,
        "data-reference": referenceId ?? undefined,
    },
    element("time", {}, clock()),
    element("span", { "class": "source" }, source),
    element("span", { "class": "type" }, type ?? "?"),
    element("span", { "class": "detail" }, details.filter((d) => d !== null && d !== undefined && d !== "").join(" · ")),
    referenceId != null ? element("span", { "class": "ref" }, `referenceId ${referenceId}`) : null));
}

// A replayed event: listed and marked missed. The state read after the re-handshake already counts it; the
// queue and campaign figures are read again once more (cheap, and they have no events of their own). The
// agents are not: a whole re-read could land after a newer live event (an agent going offline) and undo it.
function feedMissed(source, type, referenceId, details) {
    refreshSoon("queues", "campaigns");
    feed(source, type, referenceId, details, false);
    const item = $("#feed").firstElementChild;
    item.classList.add("missed");
    item.prepend(element("span", { "class": "missed-tag" }, t("missed")));
}

function logConnection(text) {
    addFeed(element("li", { "class": "connection", "data-state": state.connection },
        element("time", {}, clock()), element("span", { "class": "source" }, "cometd"),
        element("span", { "class": "type" }, text)));
}

function waitedSince(queue) {
    if (!queue.longestWaitSince) return 0;
    return (Date.now() - Date.parse(queue.longestWaitSince)) / 1000;
}

function renderQueues() {
    const rows = state.queues.map((q) => element("tr", { "data-queue": q.queue },
        element("td", { "class": "name" }, q.queue),
        number("waiting", q.waiting),
        element("td", { "class": "number", "data-field": "longestWait", "data-since": q.longestWaitSince ?? "" },
            q.longestWaitSince ? duration(waitedSince(q)) : "–"),
        element("td", { "class": "number", "data-field": "estimate", "data-value": q.estimate }, duration(q.estimate)),
        number("routedToday", q.routedToday),
        number("elapsedToday", q.elapsedToday)));
    if (!rows.length) rows.push(element("tr", {}, element("td", { colSpan: 6, "class": "muted" }, t("No queues configured."))));
    $("#queues tbody").replaceChildren(...rows);
}

function renderCampaigns() {
    $("#campaign-counts tbody").replaceChildren(...state.campaigns.map((c) => element("tr", { "data-campaign": c.name },
        element("td", { "class": "name" }, c.name),
        number("total", c.total),
        number("callable", c.callable),
        number("held", c.held),
        number("done", c.done))));
}

function renderAgents() {
    const rows = [];
    for (const [name, agent] of [...state.agents].sort(([a], [b]) => a.localeCompare(b))) {
        rows.push(element("tr", { "data-agent": name, "data-online": agent.online },
            element("td", { "class": "name" }, name),
            element("td", { "data-field": "state" },
                element("span", { "class": "online-state" }, t(agent.online ? "online" : "offline"))),
            number("sessions", agent.sessions),
            element("td", { "data-field": "preview" }, [...agent.preview].sort().join(", ")),
            element("td", { "data-field": "held", "data-value": agent.held.size },
                element("div", { "class": "records" }, ...[...agent.held].map(([handle, campaign]) =>
                    element("span", { "class": "chip", "data-handle": handle }, `${handle} · ${campaign ?? "?"}`))))));
    }
    $("#agents tbody").replaceChildren(...rows);
}

function renderConnection() {
    const pill = $("#connection");
    pill.dataset.state = state.connection;
    $("#conn-state").textContent = t(state.connection);
    const transport = state.connection === "disconnected" ? "" : (state.cometd?.getTransport()?.type ?? "");
    $("#transport").textContent = transport;
    pill.dataset.transport = transport;
    const banner = $("#banner");
    if (banner.hidden && state.connection === "reconnecting") {
        // Counted, so a test sees a banner even when the reconnect took less than a frame.
        document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects ?? 0) + 1);
    }
    banner.hidden = state.connection !== "reconnecting";
    document.body.dataset.connection = state.connection;
}

function render() {
    renderQueues();
    renderCampaigns();
    renderAgents();
}

function setConnection(connection, detail = "") {
    if (connection === state.connection) return;
    state.connection = connection;
    renderConnection();
    logConnection(`${t(connection)}${detail ? `: ${detail}` : ""}`);
}

// -- CometD --------------------------------------------------------------------------------------------------

function connect() {
    // The feed resumes from the last replayId: what happened while the page was away is listed as missed.
    const cometd = new CometD();
    state.cometd = cometd;
    cometd.registerExtension("ack", new AckExtension());
    cometd.registerExtension("replay", replayExtension(() => `gateway.replay.supervisor.${state.user}`));
    configure(cometd, state.bayeuxPath);
    const handlers = { "/v2/agents/**": onAgent, "/v2/waitfield/contacts": onWaitfield, "/v2/dialler/contacts": onDialler };

    cometd.addListener("/meta/handshake", (reply) => {
        if (state.cometd !== cometd) return;
        if (!reply.successful) {
            if (reply.advice?.reconnect === "none") setConnection("disconnected", reply.error ?? "");
            else setConnection(state.everConnected ? "reconnecting" : "connecting");
            return;
        }
        cometd.batch(() => {
            for (const channel of CHANNELS) {
                cometd.subscribe(channel, handlers[channel], (sub) => {
                    if (!sub.successful) logConnection(t("Subscription to {channel} refused: {error}", { channel, error: sub.error }));
                });
            }
        });
        // Read the views again once subscribed, so no change falls between them and the events: after a
        // re-handshake that is what happened while the session was lost.
        loadAll().then(() => logConnection(t("state reloaded")), (error) => logConnection(error.message));
    });
    cometd.addListener("/meta/connect", (reply) => {
        if (state.cometd !== cometd) return;
        if (cometd.isDisconnected()) {
            setConnection("disconnected");
        } else if (reply.successful) {
            state.everConnected = true;
            setConnection("connected");
        } else {
            setConnection("reconnecting", reply.error ?? reply.failure?.reason ?? "");
        }
    });
    setConnection("connecting");
    cometd.handshake({ ext: { authentication: { user: state.user, password: state.password } } });
}

// -- sign in and out -----------------------------------------------------------------------------------------

async function signIn(event) {
    event.preventDefault();
    const user = $("#user").value.trim();
    const password = $("#password").value;
    const error = $("#sign-in-error");
    error.textContent = "";
    $("#sign-in-button").disabled = true;
    try {
        const config = await (await fetch("api/config")).json();
        Object.assign(state, { user, password, auth: basicAuth(user, password), bayeuxPath: config.bayeuxPath });
        try {
            await loadAll();
        } catch (failure) {
            error.textContent = failure.status === 401 ? t("Wrong user name or password.")
                : failure.status === 403 ? t("Only supervisors and services can sign in to the wallboard.")
                : failure.message;
            Object.assign(state, { user: null, password: null, auth: null });
            return;
        }
        $("#password").value = "";
        $("#user-name").textContent = user;
        $("#sign-in-panel").hidden = true;
        $("#board").hidden = false;
        $("#who").hidden = false;
        state.everConnected = false;
        connect();
    } catch (failure) {
        error.textContent = t("Sign-in failed: {message}", { message: failure.message });
    } finally {
        $("#sign-in-button").disabled = false;
    }
}

function signOut() {
    const cometd = state.cometd;
    state.cometd = null;
    if (cometd) cometd.disconnect();
    Object.assign(state, { user: null, password: null, auth: null, agents: new Map(), campaigns: [], queues: [] });
    setConnection("disconnected");
    render();
    $("#feed").replaceChildren();
    $("#board").hidden = true;
    $("#who").hidden = true;
    $("#sign-in-panel").hidden = false;
}

function init() {
    $("#sign-in").addEventListener("submit", signIn);
    $("#sign-out").addEventListener("click", signOut);
    document.addEventListener("i18n:change", () => { renderConnection(); render(); });
    // The longest waits go on growing between events: only the display ticks, nothing is fetched.
    setInterval(() => {
        for (const cell of document.querySelectorAll("#queues td[data-field=longestWait]")) {
            const since = cell.dataset.since;
            if (since) cell.textContent = duration((Date.now() - Date.parse(since)) / 1000);
        }
    }, 1000);
    renderConnection();
    $("#sign-in-button").disabled = false;
    document.body.dataset.ready = "true";
}

init();
