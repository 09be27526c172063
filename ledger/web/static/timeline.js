// Progressive enhancement of the server-rendered pages: the grid re-rendered
// from /snapshot when the dates or the record number change, the live tail over
// server-sent events (held by static/livestream.js), and the verification badge. Every value goes into the DOM as text, never as HTML.
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

  // Beside the badge: who cosigned the witnessed checkpoint and when, and the
  // attested time, each as verifyPage checked it (its message says how far).
  function showAttestations(result) {
    const list = document.getElementById("attestations");
    if (!list) return;
    const items = [];
    for (const c of (result && result.witnesses && result.witnesses.cosigned) || []) {
      items.push(
        el(
          "li",
          { class: "witness" },
          "Witness ",
          el("span", { class: "who" }, c.key.label),
          " cosigned the checkpoint of " + result.witnesses.witnessedSize + " records at " + c.time.toISOString().replace(".000Z", "Z")
        )
      );
    }
    const t = result && result.timestamp;
    if (t && t.size) {
      items.push(
        el(
          "li",
          { class: "timestamp" },
          "Timestamped by ",
          el("span", { class: "who" }, t.authority),
          ": the first " + t.size + " records existed by " + t.attestedAt
        )
      );
    }
    list.replaceChildren(...items);
    list.hidden = items.length === 0;
  }

  // Each shown position whose desk's signature verifyPage checked: a label by
  // its record link, and the desk in the timeline marker's title and label.
  function showAuthors(result) {
    const bySeq = (result && result.authors && result.authors.bySeq) || {};
    for (const old of document.querySelectorAll(".signed-by")) old.remove();
    for (const node of document.querySelectorAll("[data-signed-by]")) node.removeAttribute("data-signed-by");
    for (const [seq, desk] of Object.entries(bySeq)) {
      const text = "signed by " + desk.name;
      for (const link of document.querySelectorAll('a.record-link[data-seq="' + seq + '"]')) {
        link.after(el("span", { class: "signed-by", title: "Desk signature checked in your browser" }, " · ✓ " + text));
      }
      for (const mark of document.querySelectorAll('a.mark[data-seq="' + seq + '"]')) {
        mark.setAttribute("data-signed-by", desk.name);
        const label = mark.getAttribute("aria-label") || "";
        if (!label.endsWith(text)) mark.setAttribute("aria-label", label + ", " + text);
        const title = mark.querySelector("title");
        if (title && !title.textContent.endsWith(text)) title.textContent += " (" + text + ")";
      }
    }
  }

  async function verify(seqs, snapshot) {
    const run = ++verifyRun;
    setBadge("pending", "Verifying in your browser…");
    try {
      const result = await window.LedgerVerify.verifyPage(ledger, seqs, snapshot);
      if (run === verifyRun) {
        setBadge("ok", result.message);
        showAttestations(result);
        showAuthors(result);
      }
      return result;
    } catch (e) {
      const reason = e instanceof window.LedgerVerify.VerifyError ? e.message : "unexpected error: " + e;
      if (run === verifyRun) {
        setBadge("fail", "Verification failed: " + reason);
        showAttestations(null);
        showAuthors(null);
      }
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

  // The archived copy of a source (docs/documents.md), viewed in the sandbox.
  function archivedCopy(source) {
    if (!source || typeof source.document !== "string" || !/^[0-9a-f]{64}$/.test(source.document)) return null;
    const href = "/v1/ledgers/" + ledger + "/documents/" + source.document + "?view=sandboxed";
    return [" · ", el("a", { class: "archived", href: href, title: "SHA-256 " + source.document, rel: "noopener noreferrer" }, el("span", { class: "icon", "aria-hidden": "true" }, "⎙"), " archived copy")];
  }

  // The corrections of each shown record, as the server listed them for this view.
  let fixes = page.fixes || {};

  function fixNotes(seq) {
    return (fixes[String(seq)] || []).map((fix) =>
      el(
        "p",
        { class: "fix-note" },
        el("span", { class: "icon", "aria-hidden": "true" }, "✎"),
        " Corrected by ",
        el("a", { href: "/ledgers/" + ledger + "/records/" + fix.seq }, "record #" + fix.seq),
        fix.reason ? ": " : null,
        fix.reason ? el("span", { class: "reason" }, fix.reason) : null
      )
    );
  }

  function positionCell(cell) {
    return el(
      "div",
      { class: "position" },
      stanceTag(cell.stance),
      cell.summary ? el("p", { class: "summary" }, cell.summary) : null,
      el("p", { class: "meta" }, "since ", el("time", { datetime: cell.since }, cell.since.slice(0, 10)), " · ", sourceOf(cell.source), ...(archivedCopy(cell.source) || [])),
      el("p", { class: "meta" }, recordLink(cell.seq)),
      ...fixNotes(cell.seq)
    );
  }

  function claimBlock(claimant, cell) {
    return el(
      "div",
      { class: "claim" },
      el("p", { class: "claim-label" }, el("span", { class: "icon", "aria-hidden": "true" }, "◇"), " Claim by " + claimant + ":"),
      stanceTag(cell.stance),
      cell.summary ? el("p", { class: "summary" }, cell.summary) : null,
      el("p", { class: "meta" }, el("time", { datetime: cell.since }, cell.since.slice(0, 10)), " · ", recordLink(cell.seq)),
      ...fixNotes(cell.seq)
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
          "data-corrected": cell && (fixes[String(cell.seq)] || []).length ? "yes" : "",
        });
        td.append(cell ? positionCell(cell) : el("p", { class: "none" }, "No position"));
        for (const claimant of Object.keys(theirs).sort()) td.append(claimBlock(claimant, theirs[claimant]));
        td.dataset.key = JSON.stringify([cell, theirs, td.dataset.corrected]);
        const old = before[party + "\u0000" + topic];
        if (old !== undefined && old !== td.dataset.key) td.classList.add("changed");
        row.append(td);
      }
      body.append(row);
    }
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceWith(body);
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

  const slider = form ? form.elements.known_seq : null;
  const sliderValue = document.getElementById("known_seq-value");

  function showSlider(seq, head) {
    if (!slider) return;
    slider.max = String(head);
    slider.value = String(seq);
    slider.setAttribute("aria-valuetext", "record " + seq + " of " + head);
    if (sliderValue) sliderValue.textContent = String(seq);
    document.querySelectorAll(".head-total").forEach((node) => (node.textContent = String(head)));
  }

  // The slider names a record only when it is not at the head: at the head it
  // means "everything", which moves as records arrive.
  function sliderBehind() {
    return slider && Number(slider.value) < Number(slider.max);
  }

  function timeTravelling() {
    return form && (form.elements.as_of.value || form.elements.known_at.value || sliderBehind());
  }

  async function refresh(pushUrl) {
    const run = ++request;
    const params = new URLSearchParams();
    if (form.elements.as_of.value) params.set("as_of", form.elements.as_of.value);
    if (form.elements.known_at.value) params.set("known_at", form.elements.known_at.value);
    else if (sliderBehind()) params.set("known_at", slider.value);
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
    const url = location.pathname + (query ? "?" + query : "");
    if (pushUrl) history.replaceState(null, "", url);
    // The timelines, the corrections and the words about this view (why it may
    // be empty) depend on both times: take them from the server-rendered page.
    let freshPage = null;
    try {
      const html = await (await fetch(url, { cache: "no-store", credentials: "omit" })).text();
      freshPage = new DOMParser().parseFromString(html, "text/html");
    } catch (e) {}
    if (run !== request) return;
    const freshData = freshPage && freshPage.getElementById("page-data");
    if (freshData) {
      try {
        fixes = JSON.parse(freshData.textContent).fixes || {};
      } catch (e) {}
    }
    renderGrid(snapshot);
    for (const id of ["timelines", "grid-state", "live"]) {
      const fresh = freshPage && freshPage.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    }
    showSlider(snapshot.known_at, Math.max(page.head, snapshot.known_at));
    await verify(shownSeqs(snapshot), snapshot);
  }

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      refresh(true);
    });
    form.elements.as_of.addEventListener("change", () => refresh(true));
    form.elements.known_at.addEventListener("change", () => refresh(true));
    if (slider) {
      slider.addEventListener("input", () => {
        if (sliderValue) sliderValue.textContent = slider.value;
        slider.setAttribute("aria-valuetext", "record " + slider.value + " of " + slider.max);
      });
      // Choosing a record number replaces a date: the two name one moment.
      slider.addEventListener("change", () => {
        form.elements.known_at.value = "";
        refresh(true);
      });
    }
  }

  // -- live tail ------------------------------------------------------------------

  function liveItem(record) {
    const data = record.data && typeof record.data === "object" ? record.data : {};
    const detail = data.summary || data.reason || data.title || data.name || null;
    return el(
      "li",
      { "data-seq": String(record.seq), class: "new" },
      el("a", { href: "/ledgers/" + ledger + "/records/" + record.seq }, "record #" + record.seq),
      " ",
      el(
        "span",
        { class: "meta" },
        el("time", { datetime: record.occurred_at }, String(record.occurred_at).slice(0, 10)),
        " · ",
        el("code", {}, record.type)
      ),
      el("br"),
      el("strong", {}, [record.party, record.topic, data.stance].filter(Boolean).join(" · ") || record.type),
      detail ? " — " : null,
      detail ? el("span", { class: "summary" }, String(detail)) : null
    );
  }

  function follow() {
    const list = document.getElementById("live");
    const status = document.getElementById("live-status");
    if (!list) return;
    let pending = null;
    const handle = (message) => {
      if (message.kind === "open") {
        if (status) status.textContent = "Newest first, by record number. Live: new records appear here as they are appended.";
        return;
      }
      if (message.kind === "error") {
        if (status) status.textContent = "Live updates interrupted; reconnecting…";
        return;
      }
      let record;
      try {
        record = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      const current = document.getElementById("live") || list;
      if (current.querySelector('li[data-seq="' + record.seq + '"]')) return;
      current.prepend(liveItem(record));
      const travelling = timeTravelling();
      page.head = Math.max(page.head, record.seq);
      const count = document.getElementById("head-count");
      if (count) count.textContent = String(page.head);
      if (slider) showSlider(travelling && sliderBehind() ? Number(slider.value) : page.head, page.head);
      // Only "now" changes with a new record; a past moment shows what it showed.
      if (!travelling) {
        clearTimeout(pending);
        pending = setTimeout(() => refresh(false), 300);
      }
    };
    const url = base + "/events/stream?after_seq=" + page.head;
    if (window.Worker) {
      const worker = new Worker("/static/livestream.js");
      worker.addEventListener("message", (event) => handle(event.data));
      worker.postMessage(url);
      window.addEventListener("pagehide", () => worker.terminate());
    } else if (window.EventSource) {
      const source = new EventSource(url);
      source.addEventListener("open", () => handle({ kind: "open" }));
      source.addEventListener("error", () => handle({ kind: "error" }));
      source.addEventListener("record", (event) => handle({ kind: "record", data: event.data }));
      window.addEventListener("pagehide", () => source.close());
    }
  }

  // -- start ----------------------------------------------------------------------

  if (form) {
    // Show exactly the snapshot that gets verified, not only the server's rendering of it.
    renderGrid(page.snapshot);
    verify(shownSeqs(page.snapshot), page.snapshot);
    // The stream starts once the page has loaded, so loading never waits on it.
    if (document.readyState === "complete") follow();
    else window.addEventListener("load", follow, { once: true });
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
