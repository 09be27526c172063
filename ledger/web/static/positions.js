// The format §6 positions fold, as ledger/core/positions.py `fold`, so the browser
// can recompute the positions grid from verified records instead of trusting it.
// No DOM and no network: the same file runs in node for the tests that hold the
// two folds equal. Records are the parsed format §1 objects.
"use strict";
(function (root) {
  const POSITION_TYPES = new Set(["position.stated", "position.withdrawn"]);
  const FIX_TYPES = new Set(["record.corrected", "record.retracted"]);
  const CORRECTABLE = ["occurred_at", "data", "source", "party", "topic"];

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const present = (v) => v !== undefined && v !== null;

  // format §6 steps 2-3: corrections applied to their targets in seq order,
  // retracted records dropped; a fix naming no earlier non-fix record is ignored.
  function applyFixes(records) {
    const ordered = [...records].sort((a, b) => a.seq - b.seq);
    const current = new Map();
    const retracted = new Set();
    for (const record of ordered) {
      if (!FIX_TYPES.has(record.type)) {
        current.set(record.seq, record);
        continue;
      }
      const data = isObject(record.data) ? record.data : {};
      const target = data.target_seq;
      if (!Number.isInteger(target) || !current.has(target) || target >= record.seq) continue;
      if (record.type === "record.retracted") {
        retracted.add(target);
      } else if (isObject(data.changes)) {
        const fixed = Object.assign({}, current.get(target));
        for (const member of CORRECTABLE) {
          if (Object.prototype.hasOwnProperty.call(data.changes, member)) fixed[member] = data.changes[member];
        }
        current.set(target, fixed);
      }
    }
    return [...current.entries()]
      .filter(([seq]) => !retracted.has(seq))
      .sort((a, b) => a[0] - b[0])
      .map(([, record]) => record);
  }

  // Python's str() of what a stance may hold, for the cell a malformed record would make.
  function pythonStr(value) {
    if (value === undefined || value === null) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    return typeof value === "string" ? value : String(value);
  }

  function cellOf(record) {
    const data = isObject(record.data) ? record.data : {};
    const cell = { stance: record.type === "position.withdrawn" ? "withdrawn" : pythonStr(data.stance) };
    if (typeof data.summary === "string") cell.summary = data.summary;
    if (record.type === "position.stated" && present(data.terms)) cell.terms = data.terms;
    cell.since = record.occurred_at;
    cell.seq = record.seq;
    if (present(record.source)) cell.source = record.source;
    return cell;
  }

  function claimantOf(record) {
    if (record.type !== "position.stated" || !isObject(record.data)) return null;
    return typeof record.data.claimed_by === "string" ? record.data.claimed_by : null;
  }

  // Python compares str by code point; occurred_at is fixed-width ASCII, where
  // that is JavaScript's order too.
  const later = (a, b) => a.occurred_at > b.occurred_at || (a.occurred_at === b.occurred_at && a.seq > b.seq);

  // {state, claims} at (asOf, knownAt): state[party][topic], claims[party][topic][claimant].
  function fold(records, options) {
    const asOf = options && present(options.asOf) ? options.asOf : null;
    const knownAt = options && present(options.knownAt) ? options.knownAt : null;
    const known = records.filter((r) => knownAt === null || r.seq <= knownAt);
    const best = new Map();
    for (const record of applyFixes(known)) {
      if (!POSITION_TYPES.has(record.type) || !present(record.party) || !present(record.topic)) continue;
      if (asOf !== null && record.occurred_at > asOf) continue;
      const key = JSON.stringify([record.party, record.topic, claimantOf(record)]);
      const held = best.get(key);
      if (!held || later(record, held)) best.set(key, record);
    }
    const state = {};
    const claims = {};
    for (const [key, record] of best) {
      const [party, topic, claimant] = JSON.parse(key);
      if (claimant === null) {
        (state[party] = state[party] || {})[topic] = cellOf(record);
      } else {
        const topics = (claims[party] = claims[party] || {});
        (topics[topic] = topics[topic] || {})[claimant] = cellOf(record);
      }
    }
    return { state, claims };
  }

  // RFC 8785 for the values a cell holds (integers, strings, objects, arrays).
  function canonical(value) {
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }

  function cellsOf(positions) {
    const cells = new Map();
    const state = isObject(positions.state) ? positions.state : {};
    const claims = isObject(positions.claims) ? positions.claims : {};
    for (const [party, topics] of Object.entries(state)) {
      for (const [topic, cell] of Object.entries(isObject(topics) ? topics : {})) {
        cells.set(JSON.stringify([party, topic, ""]), cell);
      }
    }
    for (const [party, topics] of Object.entries(claims)) {
      for (const [topic, byClaimant] of Object.entries(isObject(topics) ? topics : {})) {
        for (const [claimant, cell] of Object.entries(isObject(byClaimant) ? byClaimant : {})) {
          cells.set(JSON.stringify([party, topic, claimant]), cell);
        }
      }
    }
    return cells;
  }

  const show = (value) => (value === undefined ? "nothing" : canonical(value));

  // The first cell where `shown` (the grid's snapshot) and `made` (the fold of the
  // records) differ, named by party, topic, claimant and field; null when equal.
  function firstDifference(shown, made) {
    const held = cellsOf(shown);
    const expected = cellsOf(made);
    const keys = [...new Set([...held.keys(), ...expected.keys()])].sort();
    for (const key of keys) {
      const [party, topic, claimant] = JSON.parse(key);
      const where = "party " + party + ", topic " + topic + (claimant ? ", claim by " + claimant : "");
      const a = held.get(key);
      const b = expected.get(key);
      if (a === undefined) return where + ": the grid shows no position; the records give " + show(b);
      if (b === undefined) return where + ": the grid shows " + show(a) + "; the records give no position";
      if (!isObject(a)) return where + ": the grid shows " + show(a) + "; the records give " + show(b);
      const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const field of fields) {
        if (show(a[field]) !== show(b[field])) {
          return where + ", " + field + ": the grid shows " + show(a[field]) + "; the records give " + show(b[field]);
        }
      }
    }
    return null;
  }

  const api = { applyFixes, cellOf, claimantOf, fold, firstDifference, canonical };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.LedgerPositions = api;
})(typeof self !== "undefined" ? self : this);
