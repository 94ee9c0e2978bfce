// Salesforce's replay extension for the CometD JavaScript client, as the gateway speaks it: the handshake
// asks for replay, every subscribe (the first, and the ones after a re-handshake) names the last replayId
// received on that subscription (-1, only new, the first time), and the id of every logged event is kept in
// localStorage as it arrives, so a reload, a server restart or a long network loss resumes where it was.
// Events that come from the log rather than live carry ext.replayed: the pages show them as missed.

// Bayeux wildcards: /a/* one more segment, /a/** any number.
function matches(pattern, channel) {
    if (pattern.endsWith("/**")) return channel.startsWith(pattern.slice(0, -2)) && channel.length > pattern.length - 2;
    if (pattern.endsWith("/*")) {
        const prefix = pattern.slice(0, -1);
        return channel.startsWith(prefix) && channel.length > prefix.length && !channel.slice(prefix.length).includes("/");
    }
    return pattern === channel;
}

// `storageKey()` names the localStorage entry ({subscription: last replayId}); a function, since the page
// knows its user only once signed in.
export function lastReplayIds(storageKey) {
    try {
        return JSON.parse(localStorage.getItem(storageKey()) ?? "{}") ?? {};
    } catch {
        return {};
    }
}

export function replayExtension(storageKey) {
    const subscriptions = new Set();
    const keep = (subscription, replayId) => {
        const last = lastReplayIds(storageKey);
        if ((last[subscription] ?? -1) >= replayId) return;
        last[subscription] = replayId;
        try {
            localStorage.setItem(storageKey(), JSON.stringify(last));
        } catch { /* storage full or denied: the page still works, it only cannot resume after a reload */ }
    };
    return {
        outgoing(message) {
            if (message.channel === "/meta/handshake") {
                message.ext = { ...message.ext, replay: true };
            } else if (message.channel === "/meta/subscribe") {
                subscriptions.add(message.subscription);
                const from = lastReplayIds(storageKey)[message.subscription] ?? -1;
                message.ext = { ...message.ext, replay: { [message.subscription]: from } };
            }
            return message;
        },
        incoming(message) {
            const replayId = message.data?.event?.replayId;
            if (!message.channel?.startsWith("/meta/") && Number.isInteger(replayId)) {
                for (const subscription of subscriptions) {
                    if (matches(subscription, message.channel)) keep(subscription, replayId);
                }
            }
            return message;
        },
    };
}

export const isMissed = (message) => message.ext?.replayed === true;
