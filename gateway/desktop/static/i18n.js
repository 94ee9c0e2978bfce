// German and English for the agent desktop and the supervisor wallboard, in one place.
//
// The English text is the key: `t("Sign in")` is "Sign in" in English and "Anmelden" in German, so a
// string missing from the German table still shows (in English). `{name}` placeholders are filled from
// the second argument. Elements with a `data-i18n` attribute have their own text translated (text nodes
// only, so a <label> keeps its <input>); `data-i18n-attr="title aria-label"` translates those attributes.
//
// The language is the one chosen with the switch (kept in localStorage), else the browser's
// (navigator.language: German for de, de-DE, de-AT, ..., English otherwise). Changing it translates the
// page and fires an "i18n:change" event on document, on which each page re-renders what it drew itself.

const STORAGE_KEY = "gateway.language";
export const LANGUAGES = ["de", "en"];

const DE = {
    // -- both pages
    "Sign in": "Anmelden",
    "Sign out": "Abmelden",
    "User": "Benutzer",
    "Password": "Passwort",
    "Wrong user name or password.": "Benutzername oder Passwort falsch.",
    "Sign-in failed: {message}": "Anmeldung fehlgeschlagen: {message}",
    "CometD connection": "CometD-Verbindung",
    "connecting": "verbindet",
    "connected": "verbunden",
    "reconnecting": "verbindet neu",
    "disconnected": "getrennt",
    "Language": "Sprache",
    "Campaigns": "Kampagnen",
    "Campaign": "Kampagne",
    "record {handle}": "Datensatz {handle}",
    "Subscription to {channel} refused: {error}": "Abonnement von {channel} abgelehnt: {error}",
    // -- the agent desktop
    "Agent desktop": "Agenten-Desktop",
    "Only agents can sign in to the desktop.": "Nur Agenten können sich am Desktop anmelden.",
    "Record": "Datensatz",
    "Records you hold": "Ihre Datensätze",
    "No record shown. Start a preview session in a campaign, then get a record.":
        "Kein Datensatz angezeigt. Starten Sie eine Preview-Sitzung in einer Kampagne und holen Sie einen Datensatz.",
    "Dialler data (GSW_*, interaction type)": "Dialer-Daten (GSW_*, Interaktionstyp)",
    "missed": "verpasst",
    "{count} missed while away (marked in the log)": "{count} in Abwesenheit verpasst (im Protokoll markiert)",
    "Call result": "Anrufergebnis",
    "Complete": "Abschließen",
    "Reject": "Ablehnen",
    "Do not call": "Nicht anrufen",
    "Call back at": "Rückruf am",
    "Callback type": "Rückruftyp",
    "Personal": "Persönlich",
    "Reschedule": "Neu planen",
    "Notifications": "Benachrichtigungen",
    "Clear": "Leeren",
    "application": "Anwendung",
    "preview session started": "Preview-Sitzung gestartet",
    "no session": "keine Sitzung",
    "Start session": "Sitzung starten",
    "End session": "Sitzung beenden",
    "Get record": "Datensatz holen",
    "Completed": "Abgeschlossen",
    "Rejected: the record went back to the campaign": "Abgelehnt: Der Datensatz ging an die Kampagne zurück",
    "Marked do not call: it will not be offered again": "Als „Nicht anrufen“ markiert: Er wird nicht mehr angeboten",
    "Rescheduled": "Neu geplant",
    " for {when}": " für {when}",
    "Scheduled call due: your personal callback for this record is due now.":
        "Geplanter Anruf fällig: Ihr persönlicher Rückruf für diesen Datensatz ist jetzt fällig.",
    "Record cancelled by the dialler: it was withdrawn and can no longer be worked.":
        "Datensatz vom Dialer storniert: Er wurde zurückgezogen und kann nicht mehr bearbeitet werden.",
    "No callable record in {campaign} right now.": "Derzeit kein anrufbarer Datensatz in {campaign}.",
    "the campaign": "der Kampagne",
    "{operation} failed: {message} (statusCode {code})": "{operation} fehlgeschlagen: {message} (statusCode {code})",
    "Pick the date and time of the callback first.": "Wählen Sie zuerst Datum und Uhrzeit des Rückrufs.",
    // -- the supervisor wallboard
    "Supervisor wallboard": "Supervisor-Wallboard",
    "Only supervisors and services can sign in to the wallboard.":
        "Nur Supervisoren und Dienste können sich am Wallboard anmelden.",
    "Connection lost: reconnecting…": "Verbindung verloren: verbinde neu …",
    "Waiting field": "Warteschlangen",
    "Queue": "Warteschlange",
    "Waiting": "Wartend",
    "Longest wait": "Längste Wartezeit",
    "Estimate": "Schätzung",
    "Routed today": "Heute zugestellt",
    "Elapsed today": "Heute verfallen",
    "Contacts": "Kontakte",
    "Callable": "Anrufbar",
    "Held": "Reserviert",
    "Done": "Erledigt",
    "Agents": "Agenten",
    "Agent": "Agent",
    "State": "Status",
    "Sessions": "Sitzungen",
    "Preview sessions": "Preview-Sitzungen",
    "Held records": "Datensätze",
    "online": "online",
    "offline": "offline",
    "Operations": "Vorgänge",
    "No queues configured.": "Keine Warteschlangen konfiguriert.",
    "state reloaded": "Stand neu geladen",
    "reconnected": "wieder verbunden",
};

const TABLES = { de: DE };

function stored() {
    try {
        return localStorage.getItem(STORAGE_KEY);
    } catch {
        return null;   // storage off (private mode, file://): the browser's language then
    }
}

function browserLanguage() {
    const preferred = navigator.languages?.length ? navigator.languages : [navigator.language];
    return String(preferred[0] ?? "en").toLowerCase().startsWith("de") ? "de" : "en";
}

let current = LANGUAGES.includes(stored()) ? stored() : browserLanguage();

/** The language shown: "de" or "en". */
export function language() {
    return current;
}

/** `text` (English) in the current language, with {placeholders} filled from `values`. */
export function t(text, values = {}) {
    const translated = TABLES[current]?.[text] ?? text;
    return translated.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));
}

// The English originals of translated text nodes and attributes, so switching back and forth works.
const originals = new WeakMap();

function original(node, key, value) {
    let saved = originals.get(node);
    if (!saved) originals.set(node, saved = {});
    if (!(key in saved)) saved[key] = value;
    return saved[key];
}

/** Translate the marked elements under `root`. */
export function translatePage(root = document) {
    document.documentElement.lang = current;
    for (const element of root.querySelectorAll("[data-i18n]")) {
        for (const node of element.childNodes) {
            if (node.nodeType !== Node.TEXT_NODE || !node.nodeValue.trim()) continue;
            const english = original(node, "text", node.nodeValue);
            const [, before, core, after] = english.match(/^(\s*)([\s\S]*?)(\s*)$/);
            node.nodeValue = before + t(core) + after;
        }
    }
    for (const element of root.querySelectorAll("[data-i18n-attr]")) {
        for (const name of element.dataset.i18nAttr.split(/\s+/).filter(Boolean)) {
            const english = original(element, name, element.getAttribute(name) ?? "");
            element.setAttribute(name, t(english));
        }
    }
    for (const button of document.querySelectorAll(".lang-switch button")) {
        button.setAttribute("aria-pressed", String(button.dataset.lang === current));
    }
}

/** Show the page in `next` ("de" or "en") from now on, and remember the choice. */
export function setLanguage(next) {
    if (!LANGUAGES.includes(next)) return;
    current = next;
    try {
        localStorage.setItem(STORAGE_KEY, next);
    } catch { /* not remembered, still switched */ }
    translatePage();
    document.dispatchEvent(new CustomEvent("i18n:change", { detail: { language: next } }));
}

/** The DE | EN switch (added to the page's header by this module). */
function languageSwitch() {
    const group = document.createElement("div");
    group.className = "lang-switch";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Language");
    group.dataset.i18nAttr = "aria-label";
    for (const code of LANGUAGES) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.lang = code;
        button.textContent = code.toUpperCase();
        button.addEventListener("click", () => setLanguage(code));
        group.append(button);
    }
    return group;
}

// Modules run after the document is parsed: the header is there.
document.querySelector("header")?.append(languageSwitch());
translatePage();
