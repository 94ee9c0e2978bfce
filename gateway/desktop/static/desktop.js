// The agent desktop: GWS outbound REST (HTTP Basic, fetch) plus the agent's CometD session with the
// official CometD JavaScript client, served by the gateway from the installed npm package. No build step.
//
// Every REST operation sends a fresh referenceId; its result arrives as a notification on /v2/me/outbound
// (and its twin on /me/internal) carrying that referenceId, which the log shows.
//
// Replay (the gateway's durable log, Salesforce's replay extension): the page keeps the last replayId it got
// per channel in localStorage, per user, and resumes from it on every handshake (a reload, a server restart,
// a long network loss); what the log replays carries ext.replayed and is shown as missed.

import { AckExtension, CometD } from "./vendor/cometd/cometd.js";
import { t } from "./i18n.js";
import { basicAuth, clock, configure, element } from "./page.js";
import { isMissed, replayExtension } from "./replay.js";

const OUTBOUND = "/v2/me/outbound";
const INTERNAL = "/me/internal";
const GWS = "/api/v2/me";
const LOG_LIMIT = 300;
const replayKey = () => `gateway.replay.${state.user}`;   // {channel: last replayId}, per user
const CALL_RESULTS = [
    "Answer", "Busy", "No Answer", "Answering Machine Detected", "Wrong Number", "Wrong Party", "Do Not Call",
    "Dropped", "Fax Detected",
];
// Acknowledgements that end the agent's work on a record, and what the page says about them.
const DONE = {
    RecordProcessedAcknowledge: "Completed",
    RecordRejectAcknowledge: "Rejected: the record went back to the campaign",
    DoNotCallAcknowledge: "Marked do not call: it will not be offered again",
    ScheduledRecordRescheduleAcknowledge: "Rescheduled",
};

const $ = (selector) => document.querySelector(selector);

const state = {
    user: null,
    password: null,
    devicePath: null,
    csrf: null,
    bayeuxPath: null,
    campaigns: [],
    started: new Set(),          // campaign names with a started preview session
    records: new Map(),          // recordHandle -> {record, userData, status, banner}
    current: null,               // the recordHandle shown
    cometd: null,
    connection: "disconnected",
    everConnected: false,
    pending: false,              // a record operation is waiting for its synchronous reply
    missed: 0,                   // replayed notifications since sign-in
};

// -- helpers -----------------------------------------------------------------------------------------------

function newReferenceId() {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    const random = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `desk-${Date.now().toString(36)}-${random}`;
}

// -- the log -----------------------------------------------------------------------------------------------

function addLog(item) {
    const log = $("#log");
    log.prepend(item);
    while (log.childElementCount > LOG_LIMIT) log.lastElementChild.remove();
    return item;
}

function logNotification(channel, message) {
    const data = message.data ?? {};
    const replayId = message.data?.event?.replayId;
    const missed = isMissed(message);
    const internal = channel === INTERNAL;
    const type = internal ? data.userData?.GSW_USER_EVENT : data.notificationType;
    const reference = internal ? data.userData?.GSW_REFERENCE_ID : data.referenceId;
    const handle = internal ? data.userData?.GSW_RECORD_HANDLE : data.record?.recordHandle;
    const classes = ["notification", internal ? "internal" : "outbound", type === "RecordCancel" ? "alert" : "",
        missed ? "missed" : ""];
    addLog(element("li", {
        "class": classes.filter(Boolean).join(" "),
        "data-channel": channel,
        "data-type": type,
        "data-reference": reference,
        "data-handle": handle,
        "data-replay-id": replayId,
    },
    element("time", {}, clock()),
    missed ? element("span", { "class": "missed-tag" }, t("missed")) : null,
    element("span", { "class": "channel" }, internal ? "internal" : "outbound"),
    element("span", { "class": "type" }, type ?? data.messageType ?? "?"),
    handle !== undefined ? element("span", { "class": "handle" }, `record ${handle}`) : null,
    reference !== undefined ? element("span", { "class": "ref" }, `referenceId ${reference}`) : null,
    replayId !== undefined ? element("span", { "class": "replay-id" }, `replayId ${replayId}`) : null));
}

function logRequest(operation, referenceId) {
    return addLog(element("li", { "class": "request", "data-operation": operation, "data-reference": referenceId },
        element("time", {}, clock()),
        element("span", { "class": "channel" }, "request"),
        element("span", { "class": "type" }, operation),
        element("span", { "class": "status" }, "…"),
        element("span", { "class": "ref" }, `referenceId ${referenceId}`)));
}

function logConnection(text, connection) {
    addLog(element("li", { "class": "connection", "data-state": connection },
        element("time", {}, clock()),
        element("span", { "class": "channel" }, "cometd"),
        element("span", { "class": "type" }, text)));
}

// -- connection state --------------------------------------------------------------------------------------

function transportName() {
    const transport = state.cometd?.getTransport();
    return transport ? transport.type : "";
}

function setConnection(connection, detail = "") {
    const changed = connection !== state.connection;
    state.connection = connection;
    const pill = $("#connection");
    pill.dataset.state = connection;
    $("#conn-state").textContent = t(connection);
    const transport = connection === "disconnected" ? "" : transportName();
    $("#transport").textContent = transport;
    pill.dataset.transport = transport;
    if (changed) logConnection(`${t(connection)}${transport ? ` (${transport})` : ""}${detail ? `: ${detail}` : ""}`, connection);
}

// -- REST --------------------------------------------------------------------------------------------------

async function gwsPost(path, body) {
    const referenceId = newReferenceId();
    const entry = logRequest(body.operationName, referenceId);
    setMessage("");
    const headers = {
        "Authorization": basicAuth(state.user, state.password),
        "Content-Type": "application/json",
    };
    if (state.csrf) headers["X-CSRF-TOKEN"] = state.csrf;
    let reply;
    try {
        const response = await fetch(GWS + path, { method: "POST", headers, body: JSON.stringify({ ...body, referenceId }) });
        reply = await response.json().catch(() => ({ statusCode: -1, statusMessage: `HTTP ${response.status}` }));
    } catch (error) {
        reply = { statusCode: -1, statusMessage: `network error: ${error.message}` };
    }
    const ok = reply.statusCode === 0;
    entry.classList.add(ok ? "ok" : "failed");
    entry.querySelector(".status").textContent = ok ? "statusCode 0" : `statusCode ${reply.statusCode}: ${reply.statusMessage}`;
    // Success is told by the notification (it may already have arrived); failure only by this reply.
    if (!ok) setMessage(t("{operation} failed: {message} (statusCode {code})", { operation: body.operationName, message: reply.statusMessage, code: reply.statusCode }), "error");
    return { ok, reply, referenceId };
}

function campaignOperation(campaign, operationName) {
    return gwsPost(`/outbound-campaigns/${encodeURIComponent(campaign.name)}`, {
        operationName,
        applicationId: campaign.applicationId,
        devicePath: state.devicePath,
    });
}

async function recordOperation(handle, operationName, extra = {}) {
    const shown = state.records.get(handle);
    if (!shown || state.pending) return;
    state.pending = true;
    renderRecord();
    try {
        await gwsPost(`/outbound-records/${handle}`, {
            operationName,
            applicationId: shown.record.applicationId,
            campaignName: shown.record.campaignName,
            callingList: shown.record.callingList,
            devicePath: state.devicePath,
            ...extra,
        });
    } finally {
        state.pending = false;
        renderRecord();
    }
}

function setMessage(text, kind = "") {
    const message = $("#op-message");
    message.textContent = text;
    message.className = kind;
}

// -- notifications -----------------------------------------------------------------------------------------

function onOutbound(message) {
    const data = message.data ?? {};
    logNotification(OUTBOUND, message);
    noteMissed(message);
    const type = data.notificationType;
    const record = data.record;
    if (data.messageType === "OutboundCampaignMessage") {
        if (type === "PreviewSessionStarted") state.started.add(data.campaign.name);
        if (type === "PreviewSessionEnded") state.started.delete(data.campaign.name);
        renderCampaigns();
        return;
    }
    if (type === "PreviewRecordEmpty") {
        setMessage(t("No callable record in {campaign} right now.", { campaign: record?.campaignName ?? t("the campaign") }), "info");
        return;
    }
    const handle = record?.recordHandle;
    if (handle === undefined) return;
    if (type === "PreviewRecord" || type === "ScheduledCall") {
        const banner = type === "ScheduledCall"
            ? { kind: "scheduled", text: t("Scheduled call due: your personal callback for this record is due now.") }
            : null;
        state.records.set(handle, { record, userData: record.userData ?? {}, status: "active", banner });
        state.current = handle;
        setMessage("");
    } else if (type === "RecordCancel") {
        const held = state.records.get(handle);
        if (!held) return;   // a record held before a reload: the log shows the cancel
        held.status = "cancelled";
        held.banner = { kind: "cancelled", text: t("Record cancelled by the dialler: it was withdrawn and can no longer be worked.") };
    } else if (type in DONE) {
        const held = state.records.get(handle);
        if (!held) return;
        held.status = "done";
        const when = type === "ScheduledRecordRescheduleAcknowledge" && held.rescheduledFor
            ? t(" for {when}", { when: held.rescheduledFor }) : "";
        held.banner = { kind: "done", text: t(DONE[type]) + when };
    } else {
        return;
    }
    renderHeld();
    renderRecord();
}

function onInternal(message) {
    logNotification(INTERNAL, message);
}

// -- replay ------------------------------------------------------------------------------------------------

function noteMissed(message) {
    if (!isMissed(message)) return;
    state.missed += 1;
    const status = $("#missed");
    status.hidden = false;
    status.textContent = t("{count} missed while away (marked in the log)", { count: state.missed });
}

// -- rendering ---------------------------------------------------------------------------------------------

function renderCampaigns() {
    const list = $("#campaigns");
    list.replaceChildren(...state.campaigns.map((campaign) => {
        const started = state.started.has(campaign.name);
        return element("li", { "class": started ? "campaign started" : "campaign", "data-campaign": campaign.name },
            element("div", { "class": "campaign-name" }, campaign.name),
            element("div", { "class": "muted small" },
                `${campaign.dialingMode} · ${t("application")} ${campaign.applicationId} · ${campaign.callingList}`),
            element("div", { "class": "campaign-state small" }, t(started ? "preview session started" : "no session")),
            element("div", { "class": "buttons" },
                started
                    ? element("button", { type: "button", "class": "end-session", onclick: () => campaignOperation(campaign, "EndPreviewSession") }, t("End session"))
                    : element("button", { type: "button", "class": "start-session", onclick: () => campaignOperation(campaign, "StartPreviewSession") }, t("Start session")),
                element("button", {
                    type: "button", "class": "get-record primary", disabled: !started,
                    onclick: () => campaignOperation(campaign, "GetPreviewRecord"),
                }, t("Get record"))));
    }));
}

function recordLabel(held) {
    const data = held.userData;
    const name = [data.FirstName, data.Name].filter(Boolean).join(" ");
    return name || data.GSW_PHONE || t("record {handle}", { handle: held.record.recordHandle });
}

function renderHeld() {
    const list = $("#held");
    const items = [];
    for (const [handle, held] of state.records) {
        items.push(element("li", {},
            element("button", {
                type: "button",
                "class": `chip ${held.status}${handle === state.current ? " current" : ""}`,
                "data-handle": handle,
                onclick: () => { state.current = handle; renderHeld(); renderRecord(); },
            }, `${handle} · ${recordLabel(held)}`)));
    }
    list.replaceChildren(...items);
}

// What the dialler adds to a record (OCS's GSW_* keys and interaction type); the rest are the contact's fields.
function isDiallerKey(key) {
    return key.startsWith("GSW_") || key === "InteractionType" || key === "InteractionSubtype";
}

function fieldRows(entries) {
    return entries.map(([key, value]) => element("tr", { "data-field": key },
        element("th", {}, key), element("td", {}, typeof value === "object" ? JSON.stringify(value) : String(value))));
}

function renderRecord() {
    const held = state.records.get(state.current);
    $("#record").hidden = !held;
    $("#no-record").hidden = Boolean(held);
    if (!held) return;
    const panel = $("#record");
    panel.dataset.handle = held.record.recordHandle;
    panel.dataset.status = held.status;
    const banner = $("#record-banner");
    banner.hidden = !held.banner;
    banner.className = held.banner ? held.banner.kind : "";
    banner.textContent = held.banner ? held.banner.text : "";
    const data = held.userData;
    $("#record-title").textContent =
        `${recordLabel(held)} · ${t("record {handle}", { handle: held.record.recordHandle })} · ${held.record.campaignName}`;
    const entries = Object.entries(data);
    const own = entries.filter(([key]) => !isDiallerKey(key));
    const gsw = entries.filter(([key]) => isDiallerKey(key));
    $("#record-fields tbody").replaceChildren(...fieldRows(own));
    $("#record-gsw tbody").replaceChildren(...fieldRows(gsw));
    const disabled = held.status !== "active" || state.pending;
    for (const button of document.querySelectorAll("#actions button, #actions select, #actions input")) {
        button.disabled = disabled;
    }
}

function resetWorkspace() {
    state.started.clear();
    state.records.clear();
    state.current = null;
    state.campaigns = [];
    renderCampaigns();
    renderHeld();
    renderRecord();
    setMessage("");
}

// -- CometD ------------------------------------------------------------------------------------------------

function connect() {
    const cometd = new CometD();
    state.cometd = cometd;
    cometd.registerExtension("ack", new AckExtension());
    cometd.registerExtension("replay", replayExtension(replayKey));
    configure(cometd, state.bayeuxPath);

    // Subscriptions are dropped on every (re-)handshake, so they are made in the handshake listener.
    cometd.addListener("/meta/handshake", (reply) => {
        if (state.cometd !== cometd) return;   // a session signed out of
        if (reply.successful) {
            cometd.batch(() => {
                for (const [channel, callback] of [[OUTBOUND, onOutbound], [INTERNAL, onInternal]]) {
                    cometd.subscribe(channel, callback, (sub) => {
                        if (!sub.successful) setMessage(t("Subscription to {channel} refused: {error}", { channel, error: sub.error }), "error");
                    });
                }
            });
        } else if (reply.advice?.reconnect === "none" || cometd.isDisconnected()) {
            setConnection("disconnected", reply.error ?? "handshake refused");
        } else {
            setConnection(state.everConnected ? "reconnecting" : "connecting");
        }
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
    cometd.addListener("/meta/disconnect", (reply) => {
        if (state.cometd === cometd && reply.successful) setConnection("disconnected");
    });

    setConnection("connecting");
    cometd.handshake({ ext: { authentication: { user: state.user, password: state.password } } });
}

// -- sign in and out ---------------------------------------------------------------------------------------

async function signIn(event) {
    event.preventDefault();
    const user = $("#user").value.trim();
    const password = $("#password").value;
    const error = $("#sign-in-error");
    const button = $("#sign-in-button");
    error.textContent = "";
    button.disabled = true;
    try {
        const auth = basicAuth(user, password);
        const config = await (await fetch("api/config")).json();
        const response = await fetch("api/campaigns", { headers: { Authorization: auth } });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) {
            error.textContent = response.status === 401 ? t("Wrong user name or password.")
                : response.status === 403 ? t("Only agents can sign in to the desktop.")
                : (body.error ?? `HTTP ${response.status}`);
            return;
        }
        const me = await fetch(GWS, { headers: { Authorization: auth } });
        const profile = await me.json();
        if (!me.ok || profile.statusCode !== 0) {
            error.textContent = profile.statusMessage ?? `HTTP ${me.status}`;
            return;
        }
        Object.assign(state, {
            user,
            password,
            bayeuxPath: config.bayeuxPath,
            csrf: me.headers.get("X-CSRF-TOKEN"),
            devicePath: profile.user.devices?.[0]?.path ?? `/devices/${user}`,
            campaigns: body.campaigns,
            everConnected: false,
            missed: 0,
        });
        $("#password").value = "";
        $("#user-name").textContent = user;
        $("#device").textContent = state.devicePath;
        $("#sign-in-panel").hidden = true;
        $("#workspace").hidden = false;
        $("#who").hidden = false;
        renderCampaigns();
        renderRecord();
        connect();
    } catch (failure) {
        error.textContent = t("Sign-in failed: {message}", { message: failure.message });
    } finally {
        button.disabled = false;
    }
}

// Signing out ends the started preview sessions (the records held in them go back to their campaigns), as a
// GWS desktop does at logout, then closes the CometD session.
async function signOut() {
    $("#sign-out").disabled = true;
    try {
        for (const campaign of state.campaigns.filter((c) => state.started.has(c.name))) {
            await campaignOperation(campaign, "EndPreviewSession");
        }
    } finally {
        $("#sign-out").disabled = false;
    }
    const cometd = state.cometd;
    state.cometd = null;
    if (cometd) cometd.disconnect();
    setConnection("disconnected");
    Object.assign(state, { user: null, password: null, csrf: null, devicePath: null });
    resetWorkspace();
    $("#log").replaceChildren();
    $("#missed").hidden = true;
    $("#workspace").hidden = true;
    $("#who").hidden = true;
    $("#sign-in-panel").hidden = false;
}

// -- wiring ------------------------------------------------------------------------------------------------

function reschedule() {
    const value = $("#reschedule-at").value;
    const when = value ? new Date(value) : null;
    if (!when || Number.isNaN(when.getTime())) {
        setMessage(t("Pick the date and time of the callback first."), "error");
        return;
    }
    const held = state.records.get(state.current);
    held.rescheduledFor = when.toLocaleString();
    recordOperation(state.current, "RescheduleRecord", {
        callbackType: $("#callback-type").value,
        timestamp: Math.floor(when.getTime() / 1000),
    });
}

function defaultCallbackTime() {
    const soon = new Date(Date.now() + 60 * 60 * 1000);
    soon.setSeconds(0, 0);
    const local = new Date(soon.getTime() - soon.getTimezoneOffset() * 60 * 1000);
    return local.toISOString().slice(0, 16);
}

function init() {
    $("#call-result").replaceChildren(...CALL_RESULTS.map((name) => element("option", { value: name }, name)));
    $("#reschedule-at").value = defaultCallbackTime();
    $("#sign-in").addEventListener("submit", signIn);
    $("#sign-out").addEventListener("click", signOut);
    $("#complete").addEventListener("click",
        () => recordOperation(state.current, "CompleteRecord", { callResult: $("#call-result").value }));
    $("#reject").addEventListener("click", () => recordOperation(state.current, "RejectRecord"));
    $("#do-not-call").addEventListener("click", () => recordOperation(state.current, "DoNotCallRecord"));
    $("#reschedule").addEventListener("click", reschedule);
    $("#show-internal").addEventListener("change", (event) => {
        document.body.classList.toggle("show-internal", event.target.checked);
    });
    $("#clear-log").addEventListener("click", () => $("#log").replaceChildren());
    // Another language chosen: what this module drew itself is drawn again (i18n.js did the rest).
    document.addEventListener("i18n:change", () => {
        $("#conn-state").textContent = t(state.connection);
        renderCampaigns();
        renderRecord();
    });
    $("#sign-in-button").disabled = false;   // the module has loaded: signing in works from now on
    document.body.dataset.ready = "true";
}

init();
