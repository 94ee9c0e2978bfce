// What both pages (the agent desktop and the supervisor wallboard) share: DOM and auth helpers, and how they
// point their CometD client at the gateway.

export function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
        if (value === undefined || value === null) continue;
        if (key === "class") node.className = value;
        else if (key.startsWith("data-")) node.setAttribute(key, String(value));
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node[key] = value;
    }
    for (const child of children) {
        if (child !== undefined && child !== null) node.append(child);
    }
    return node;
}

export function basicAuth(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    return "Basic " + btoa(String.fromCharCode(...bytes));
}

export function clock() {
    return new Date().toLocaleTimeString([], { hour12: false });
}

// Point a CometD client at `bayeuxPath`. ?transport=long-polling (or websocket) in the page's URL keeps only
// that transport, for trying each one.
export function configure(cometd, bayeuxPath) {
    const forced = new URLSearchParams(location.search).get("transport");
    if (forced && cometd.getTransportTypes().includes(forced)) {
        for (const type of cometd.getTransportTypes()) {
            if (type !== forced) cometd.unregisterTransport(type);
        }
    }
    cometd.configure({ url: new URL(bayeuxPath, location.href).href, logLevel: "warn" });
}
