// Progressive enhancement of the server-rendered pages: the grid re-rendered
// from /snapshot when the dates change, the live tail over server-sent events,
// and the verification badge. Every value goes into the DOM as text, never as HTML.
"use strict";
(function () {
  const dataNode = document.getElementById("page-data");
  if (!dataNode) return;
  const page = JSON.parse(dataNode.textContent);
  const ledger = page.ledger;
  const base = "/v1/ledgers/" + encodeURIComponent(ledger);
  const badge = document.getElementById("verify-badge");
  let verifyRun = 0;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function setBadge(state, text) {
    if (!badge) return;
    badge.dataset.state = state;
    badge.querySelector(".icon").textContent = { ok: "✓", fail: "✗", pending: "…" }[state];
    badge.querySelector(".badge-text").textContent = text;
  }

  async function verify(seqs, snapshot) {
    const run = ++verifyRun;
    setBadge("pending", "Verifying in your browser…");
    try {
      const result = await window.LedgerVerify.verifyPage(ledger, seqs, snapshot);
      if (run === verifyRun) setBadge("ok", result.message);
      return result;
    } catch (e) {
      const reason = e instanceof window.LedgerVerify.VerifyError ? e.message : "unexpected error: " + e;
      if (run === verifyRun) setBadge("fail", "Verification failed: " + reason);
      return null;
    }
  }

  // -- the grid ---------------------------------------------------------------

  function stanceTag(stance) {
    const style = page.stances[stance] || { icon: "•", css: "st-undecided" };
    return el("span", { class: "stance " + style.css }, el("span", { class: "icon", "aria-hidden": "true" }, style.icon), " " + stance);
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function recordLink(seq) {
    return el("a", { class: "record-link", href: "/ledgers/" + ledger + "/records/" + seq, "data-seq": String(seq) }, "record #" + seq);
  }

  function sourceOf(source) {
    if (!source) return null;
    const url = safeUrl(source.url);
    const name = url ? el("a", { href: url, rel: "noopener noreferrer" }, source.name || "link") : source.name || "unnamed";
    return el("span", { class: "source" }, "Source: ", name, source.kind ? " (" + source.kind + ")" : null);
  }

  function positionCell(cell) {
    return el(
      "div",
      { class: "position" },
      stanceTag(cell.stance),
      cell.summary ? el("p", { class: "summary" }, cell.summary) : null,
      el("p", { class: "meta" }, "since ", el("time", { datetime: cell.since }, cell.since.slice(0, 10)), " · ", sourceOf(cell.source)),
      el("p", { class: "meta" }, recordLink(cell.seq))
    );
  }

  function claimBlock(claimant, cell) {
    return el(
      "div",
      { class: "claim" },
      el("p", { class: "claim-label" }, el("span", { class: "icon", "aria-hidden": "true" }, "◇"), " Claim by " + claimant + ":"),
      stanceTag(cell.stance),
      cell.summary ? el("p", { class: "summary" }, cell.summary) : null,
      el("p", { class: "meta" }, el("time", { datetime: cell.since }, cell.since.slice(0, 10)), " · ", recordLink(cell.seq))
    );
  }

  function ordered(known, seen) {
    const codes = new Set(known.map(([code]) => code));
    return known.concat([...seen].filter((c) => !codes.has(c)).sort().map((c) => [c, c]));
  }

  function gridSeqs(snapshot) {
    const seqs = new Set();
    for (const topics of Object.values(snapshot.state || {})) for (const cell of Object.values(topics)) seqs.add(cell.seq);
    for (const topics of Object.values(snapshot.claims || {}))
      for (const byClaimant of Object.values(topics)) for (const cell of Object.values(byClaimant)) seqs.add(cell.seq);
    return seqs;
  }

  function renderGrid(snapshot) {
    const table = document.getElementById("grid");
    if (!table) return;
    const state = snapshot.state || {};
    const claims = snapshot.claims || {};
    const parties = ordered(page.parties, new Set([...Object.keys(state), ...Object.keys(claims)]));
    const seenTopics = new Set();
    for (const src of [state, claims]) for (const t of Object.values(src)) Object.keys(t).forEach((k) => seenTopics.add(k));
    const topics = ordered(page.topics, seenTopics);
    const before = {};
    table.querySelectorAll("td.cell").forEach((td) => {
      before[td.dataset.party + "\u0000" + td.dataset.topic] = td.dataset.key;
    });
    const head = el("tr", {}, el("th", { scope: "col" }, "Topic"));
    for (const [code, name] of parties) head.append(el("th", { scope: "col", "data-party": code }, name + " ", el("span", { class: "code" }, "(" + code + ")")));
    const body = el("tbody");
    for (const [topic, title] of topics) {
      const row = el("tr", { "data-topic": topic }, el("th", { scope: "row" }, title));
      for (const [party] of parties) {
        const cell = (state[party] || {})[topic];
        const theirs = (claims[party] || {})[topic] || {};
        const style = cell ? page.stances[cell.stance] : null;
        const td = el("td", {
          class: "cell" + (style ? " " + style.css : ""),
          "data-party": party,
          "data-topic": topic,
          "data-stance": cell ? cell.stance : "",
        });
        td.append(cell ? positionCell(cell) : el("p", { class: "none" }, "No position"));
        for (const claimant of Object.keys(theirs).sort()) td.append(claimBlock(claimant, theirs[claimant]));
        td.dataset.key = JSON.stringify([cell, theirs]);
        const old = before[party + "\u0000" + topic];
        if (old !== undefined && old !== td.dataset.key) td.classList.add("changed");
        row.append(td);
      }
      body.append(row);
    }
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceWith(body);
    const line = document.getElementById("grid-state");
    if (line) {
      line.textContent =
        (snapshot.as_of ? "As of " + snapshot.as_of.slice(0, 10) : "Latest positions") +
        ", as known at record " + snapshot.known_at + ".";
    }
  }

  function timelineSeqs() {
    return [...document.querySelectorAll("#timelines a.mark[data-seq]")].map((a) => Number(a.dataset.seq));
  }

  function shownSeqs(snapshot) {
    return [...new Set([...gridSeqs(snapshot), ...timelineSeqs()])].sort((a, b) => a - b);
  }

  // -- dates --------------------------------------------------------------------

  const form = document.getElementById("when");
  let current = page.snapshot;
  let request = 0;

  function timeTravelling() {
    return form && (form.elements.as_of.value || form.elements.known_at.value);
  }

  async function refresh(pushUrl) {
    const run = ++request;
    const params = new URLSearchParams();
    if (form.elements.as_of.value) params.set("as_of", form.elements.as_of.value);
    if (form.elements.known_at.value) params.set("known_at", form.elements.known_at.value);
    const query = params.toString();
    const line = document.getElementById("grid-state");
    let response;
    try {
      response = await fetch(base + "/snapshot" + (query ? "?" + query : ""), { cache: "no-store", credentials: "omit" });
    } catch (e) {
      if (line) line.textContent = "Could not reach the server.";
      return;
    }
    if (run !== request) return;
    if (!response.ok) {
      let detail = "HTTP " + response.status;
      try {
        detail = (await response.json()).detail || detail;
      } catch (e) {}
      if (response.status === 401 || response.status === 403) detail = "this ledger is not public (" + detail + ")";
      if (line) line.textContent = "Cannot show this: " + detail;
      return;
    }
    const snapshot = await response.json();
    if (run !== request) return;
    current = snapshot;
    renderGrid(snapshot);
    const url = location.pathname + (query ? "?" + query : "");
    if (pushUrl) history.replaceState(null, "", url);
    // The timelines depend on known_at too: take them from the server-rendered page.
    try {
      const html = await (await fetch(url, { cache: "no-store", credentials: "omit" })).text();
      const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("timelines");
      const old = document.getElementById("timelines");
      if (fresh && old && run === request) old.replaceWith(document.importNode(fresh, true));
    } catch (e) {}
    if (run === request) await verify(shownSeqs(snapshot), snapshot);
  }

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      refresh(true);
    });
    for (const input of [form.elements.as_of, form.elements.known_at]) input.addEventListener("change", () => refresh(true));
  }

  // -- live tail ------------------------------------------------------------------

  function follow() {
    const list = document.getElementById("live");
    const status = document.getElementById("live-status");
    if (!list || !window.EventSource) return;
    const source = new EventSource(base + "/events/stream?after_seq=" + page.head);
    let pending = null;
    source.addEventListener("open", () => {
      if (status) status.textContent = "Newest first. Live: new records appear here as they are appended.";
    });
    source.addEventListener("error", () => {
      if (status) status.textContent = "Live updates interrupted; reconnecting…";
    });
    source.addEventListener("record", (event) => {
      let record;
      try {
        record = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (list.querySelector('li[data-seq="' + record.seq + '"]')) return;
      const when = el("time", { datetime: record.occurred_at }, String(record.occurred_at).slice(0, 10));
      const item = el(
        "li",
        { "data-seq": String(record.seq), class: "new" },
        el("a", { href: "/ledgers/" + ledger + "/records/" + record.seq }, "#" + record.seq),
        " ",
        el("code", {}, record.type),
        record.party ? " " + record.party : null,
        record.topic ? " · " + record.topic : null,
        " · ",
        when
      );
      list.prepend(item);
      page.head = Math.max(page.head, record.seq);
      const count = document.getElementById("head-count");
      if (count) count.textContent = String(page.head);
      // Only "now" changes with a new record; a past date shows what it showed.
      if (!timeTravelling()) {
        clearTimeout(pending);
        pending = setTimeout(() => refresh(false), 300);
      }
    });
    window.addEventListener("pagehide", () => source.close());
  }

  // -- start ----------------------------------------------------------------------

  if (form) {
    // Show exactly the snapshot that gets verified, not only the server's rendering of it.
    renderGrid(page.snapshot);
    verify(shownSeqs(page.snapshot), page.snapshot);
    follow();
  } else {
    verify(page.shown, null).then(async (result) => {
      const shown = document.getElementById("record-hash");
      if (!result || !shown) return;
      const V = window.LedgerVerify;
      const actual = V.hex(await V.sha256(result.records[page.shown[0]]));
      if (actual !== shown.textContent.trim()) {
        setBadge("fail", "Verification failed: the hash shown is not the SHA-256 of record #" + page.shown[0]);
      }
    });
  }
})();
