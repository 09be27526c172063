// Verification in the reader's browser (format §2-3, §6), with WebCrypto only:
// SHA-256 for leaves and nodes, Ed25519 for the checkpoint and the snapshot.
// Nothing the server says is trusted but the published key, whose id is recomputed here.
"use strict";
(function () {
  const enc = new TextEncoder();
  const SIG_PREFIX = "\u2014 ";

  class VerifyError extends Error {}

  function fail(message) {
    throw new VerifyError(message);
  }

  function b64decode(text, what) {
    let bin;
    try {
      bin = atob(text);
    } catch (e) {
      fail(what + " is not base64");
    }
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const leafHash = (record) => sha256(concat(Uint8Array.of(0), record));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // BigInt throughout: JavaScript's bit operators are 32-bit, tree sizes are not.
  function bitLength(n) {
    let bits = 0;
    while (n > 0n) {
      n >>= 1n;
      bits++;
    }
    return bits;
  }

  // RFC 9162 §2.1.3.2, as ledger/core/merkle.py root_from_inclusion_proof.
  async function rootFromInclusion(index, size, leaf, proof) {
    const i = BigInt(index);
    const n = BigInt(size);
    if (i < 0n || i >= n) fail("leaf index " + index + " is not in a tree of size " + size);
    const inner = bitLength(i ^ (n - 1n));
    let border = 0;
    for (let rest = i >> BigInt(inner); rest > 0n; rest >>= 1n) border += Number(rest & 1n);
    if (proof.length !== inner + border) {
      fail("the proof has " + proof.length + " hashes, not " + (inner + border));
    }
    let seed = leaf;
    for (let level = 0; level < inner; level++) {
      const sibling = proof[level];
      seed = (i >> BigInt(level)) & 1n ? await nodeHash(sibling, seed) : await nodeHash(seed, sibling);
    }
    for (let k = inner; k < proof.length; k++) seed = await nodeHash(proof[k], seed);
    return seed;
  }

  // format §3 verifier key: <name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 key)>.
  async function parseVerifierKey(text) {
    // The name holds no "+", the id is hex: only the base64 key may contain "+".
    const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(String(text));
    if (!match) fail("malformed verifier key " + text);
    const [, name, idHex, keyText] = match;
    const raw = b64decode(keyText, "the key of " + name);
    if (raw.length !== 33 || raw[0] !== 1) fail("verifier key " + name + " is not an Ed25519 key");
    const pub = raw.slice(1);
    const id = (await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, 0x01), pub))).slice(0, 4);
    if (hex(id) !== idHex) fail("key " + name + "+" + idHex + ": its id does not match the key");
    return { name, idHex, id, pub, label: name + "+" + idHex };
  }

  function parseCheckpoint(text) {
    const split = text.indexOf("\n\n");
    if (split < 0) fail("the checkpoint has no signature block");
    const body = text.slice(0, split + 1);
    const lines = body.split("\n");
    if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) fail("the checkpoint is malformed");
    const root = b64decode(lines[2], "the checkpoint root");
    if (root.length !== 32) fail("the checkpoint root is not 32 bytes");
    const chain = lines.slice(3).find((l) => l.startsWith("chain "));
    const signatures = [];
    for (const line of text.slice(split + 2).split("\n")) {
      if (line === "") continue;
      if (!line.startsWith(SIG_PREFIX)) fail("the checkpoint has a malformed signature line");
      const [name, sigText] = line.slice(SIG_PREFIX.length).split(" ");
      const raw = b64decode(sigText || "", "a checkpoint signature");
      // 4 + 64 bytes: a log signature; 4 + 8 + 64: a witness cosignature (format §7).
      if (raw.length !== 68 && raw.length !== 76) {
        fail("a checkpoint signature by " + name + " is neither 4 + 64 nor 4 + 8 + 64 bytes");
      }
      signatures.push({ name, id: raw.slice(0, 4), sig: raw.slice(4), raw });
    }
    return {
      origin: lines[0],
      size: Number(lines[1]),
      root,
      chain: chain ? chain.slice(6) : null,
      body: enc.encode(body),
      signatures,
    };
  }

  // format §7 witness key: <name>+<8 hex key id>+<base64(0x04 || 32-byte Ed25519 key)>.
  async function parseCosignerKey(text) {
    const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(String(text));
    if (!match) fail("malformed witness key " + text);
    const [, name, idHex, keyText] = match;
    const raw = b64decode(keyText, "the key of witness " + name);
    if (raw.length !== 33 || raw[0] !== 4) fail("witness key " + name + " is not a cosignature (type 4) key");
    const pub = raw.slice(1);
    const id = (await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, 0x04), pub))).slice(0, 4);
    if (hex(id) !== idHex) fail("witness key " + name + "+" + idHex + ": its id does not match the key");
    return { name, idHex, id, pub, label: name + "+" + idHex };
  }

  // RFC 9162 §2.1.4.2, as ledger/core/merkle.py verify_consistency: true when
  // ``proof`` shows the tree of size1 (root1) is a prefix of the tree of size2 (root2).
  async function consistent(size1, size2, root1, root2, proof) {
    const m = BigInt(size1);
    const n = BigInt(size2);
    if (m < 1n || m > n) return false;
    if (m === n) return proof.length === 0 && equal(root1, root2);
    const path = (m & (m - 1n)) === 0n ? [root1, ...proof] : proof.slice();
    if (!path.length) return false;
    let fn = m - 1n;
    let sn = n - 1n;
    while (fn & 1n) {
      fn >>= 1n;
      sn >>= 1n;
    }
    let fr = path[0];
    let sr = path[0];
    for (const c of path.slice(1)) {
      if (sn === 0n) return false;
      if (fn & 1n || fn === sn) {
        fr = await nodeHash(c, fr);
        sr = await nodeHash(c, sr);
        while (!(fn & 1n) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        sr = await nodeHash(sr, c);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equal(fr, root1) && equal(sr, root2);
  }

  async function ed25519Verify(pub, sig, message) {
    let key;
    try {
      key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      fail("this browser cannot verify Ed25519 signatures (WebCrypto has no Ed25519: " + e.name + ")");
    }
    return crypto.subtle.verify({ name: "Ed25519" }, key, sig, message);
  }

  // RFC 8785: ECMAScript's own JSON.stringify for scalars, keys in UTF-16 order
  // (the default sort). Records hold integers only, so numbers need nothing more.
  function canonical(value) {
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    return (
      "{" +
      Object.keys(value)
        .sort()
        .map((k) => JSON.stringify(k) + ":" + canonical(value[k]))
        .join(",") +
      "}"
    );
  }

  async function get(url, what, kind) {
    let response;
    try {
      response = await fetch(url, { cache: "no-store", credentials: "omit" });
    } catch (e) {
      fail("could not fetch " + what + " (network error)");
    }
    if (response.status === 401 || response.status === 403) {
      fail("this ledger is not public: the server refused " + what + " (HTTP " + response.status + ")");
    }
    if (!response.ok) fail("could not fetch " + what + " (HTTP " + response.status + ")");
    if (kind === "bytes") return new Uint8Array(await response.arrayBuffer());
    if (kind === "text") return response.text();
    try {
      return await response.json();
    } catch (e) {
      fail(what + " is not JSON");
    }
  }

  async function pool(items, limit, work) {
    let next = 0;
    const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    });
    await Promise.all(runners);
  }

  // The exact stored bytes of a record: re-serializing could hide a difference.
  async function fetchRecord(ledger, seq) {
    const bytes = await get("/v1/ledgers/" + encodeURIComponent(ledger) + "/events/" + seq, "record #" + seq, "bytes");
    let record;
    try {
      record = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      fail("record #" + seq + " is not UTF-8 JSON");
    }
    if (record.seq !== seq || record.ledger !== ledger) fail("the server sent another record for #" + seq);
    return { bytes, record };
  }

  async function verifyInclusion(ledger, seq, checkpoint, fetched) {
    const base = "/v1/ledgers/" + encodeURIComponent(ledger);
    if (seq > checkpoint.size) fail("record #" + seq + " is not in the latest checkpoint");
    const { bytes } = fetched || (await fetchRecord(ledger, seq));
    const proof = await get(
      base + "/proofs/inclusion?seq=" + seq + "&tree_size=" + checkpoint.size,
      "the inclusion proof of record #" + seq
    );
    if (proof.leaf_index !== seq - 1 || proof.tree_size !== checkpoint.size || !Array.isArray(proof.proof)) {
      fail("the inclusion proof of record #" + seq + " is for another leaf or tree");
    }
    const path = proof.proof.map((h) => b64decode(h, "a hash in the inclusion proof of record #" + seq));
    if (path.some((h) => h.length !== 32)) fail("the inclusion proof of record #" + seq + " has a hash that is not 32 bytes");
    let root;
    try {
      root = await rootFromInclusion(seq - 1, checkpoint.size, await leafHash(bytes), path);
    } catch (e) {
      if (e instanceof VerifyError) fail("the inclusion proof of record #" + seq + " is invalid: " + e.message);
      throw e;
    }
    if (!equal(root, checkpoint.root)) {
      fail("the inclusion proof of record #" + seq + " does not lead to the signed checkpoint's root");
    }
    return bytes;
  }

  // -- author signatures (format §1.4) --------------------------------------------
  // A shown record that carries ``author`` is checked against the desk's key as
  // the log registered it: the registration record is proven in the signed log
  // like any shown record, and the signature verified here. The server's list of
  // desks only says where to look; a desk it lists as revoked before the record
  // fails it. A revocation the server hides is beyond a page that reads only the
  // records it shows: ledger-verify reads them all.

  const AUTHOR_CONTEXT = "negotiation-ledger author signature v1\n";
  const UNSIGNED_MEMBERS = ["seq", "recorded_at", "actor", "prev", "author"];

  function parseRecordBytes(bytes, seq) {
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      fail("record #" + seq + " is not UTF-8 JSON");
    }
  }

  async function registeredKey(ledger, entry, author, checkpoint) {
    const seq = entry.registered_seq;
    const registration = parseRecordBytes(await verifyInclusion(ledger, seq, checkpoint), seq);
    if (registration.type !== "author.registered" || !registration.data || registration.data.name !== author.name) {
      fail("record #" + seq + ", where the server says desk " + author.name + " was registered, does not register it");
    }
    const key = await parseVerifierKey(String(registration.data.verifier_key));
    if (key.name !== author.name) fail("the key registered in record #" + seq + " is named " + key.name + ", not " + author.name);
    return key;
  }

  // Every record of the log read (the grid recomputed): the registry folded in
  // seq order as format §1.4 says, and every signature checked against it.
  async function checkAllSignatures(records) {
    const registry = new Map();
    let signed = 0;
    for (const record of records) {
      const seq = record.seq;
      const author = record.author;
      if (author !== undefined) {
        const entry = author && typeof author === "object" ? registry.get(author.name) : undefined;
        if (!entry) fail("record #" + seq + " is signed by a desk not registered before it");
        if (entry.key.idHex !== author.key_id) {
          fail("record #" + seq + " names key " + author.key_id + " of desk " + author.name + ", not the registered " + entry.key.idHex);
        }
        const members = Object.assign({}, record);
        for (const name of UNSIGNED_MEMBERS) delete members[name];
        const signature = b64decode(String(author.sig), "the author signature of record #" + seq);
        if (signature.length !== 64 || !(await ed25519Verify(entry.key.pub, signature, enc.encode(AUTHOR_CONTEXT + canonical(members))))) {
          fail("the author signature of record #" + seq + " is not desk " + author.name + "'s");
        }
        signed++;
      }
      const data = record.data || {};
      if (record.type === "author.registered") {
        if (registry.has(data.name)) fail("record #" + seq + " registers desk " + data.name + ", which is registered already");
        const key = await parseVerifierKey(String(data.verifier_key));
        if (key.name !== data.name) fail("record #" + seq + " registers a key named " + key.name + " for desk " + data.name);
        registry.set(data.name, { key });
      } else if (record.type === "author.revoked") {
        if (!registry.delete(data.name)) fail("record #" + seq + " revokes desk " + data.name + ", which is not registered");
      }
    }
    return signed;
  }

  async function checkAuthors(ledger, seqs, records, checkpoint) {
    const signed = [];
    for (const seq of seqs) {
      const record = parseRecordBytes(records[seq], seq);
      if (record.author) signed.push({ seq, record });
    }
    const bySeq = {};
    if (!signed.length) return { bySeq, message: "" };
    const listing = await get(base(ledger) + "/authors", "the ledger's desks");
    const known = new Map((listing.items || []).map((entry) => [entry.name, entry]));
    const counts = new Map();
    const unchecked = [];
    for (const { seq, record } of signed) {
      const author = record.author;
      if (typeof author !== "object" || typeof author.name !== "string" || typeof author.sig !== "string") {
        fail("record #" + seq + " carries a malformed author member");
      }
      const entry = known.get(author.name);
      if (entry && Number.isInteger(entry.revoked_seq) && entry.revoked_seq < seq) {
        fail("record #" + seq + " is signed by desk " + author.name + ", revoked in record #" + entry.revoked_seq);
      }
      if (!entry || !Number.isInteger(entry.registered_seq) || entry.registered_seq >= seq) {
        // An earlier key of the desk, or a desk the server no longer lists: left to ledger-verify.
        unchecked.push(seq);
        continue;
      }
      const key = await registeredKey(ledger, entry, author, checkpoint);
      if (key.idHex !== author.key_id) {
        fail("record #" + seq + " names key " + author.key_id + " of desk " + author.name + ", not the registered " + key.idHex);
      }
      const members = Object.assign({}, record);
      for (const name of UNSIGNED_MEMBERS) delete members[name];
      const message = enc.encode(AUTHOR_CONTEXT + canonical(members));
      const signature = b64decode(author.sig, "the author signature of record #" + seq);
      if (signature.length !== 64 || !(await ed25519Verify(key.pub, signature, message))) {
        fail("the author signature of record #" + seq + " is not desk " + author.name + "'s");
      }
      bySeq[seq] = { name: author.name, registeredAt: entry.registered_seq };
      counts.set(author.name, (counts.get(author.name) || 0) + 1);
    }
    const checked = [...counts].map(([name, n]) => name + ": " + n).join(", ");
    let message = "";
    if (counts.size) {
      message =
        " " + Object.keys(bySeq).length + " shown record" + (Object.keys(bySeq).length === 1 ? " is" : "s are") +
        " signed by their desk (" + checked + "), each signature checked against the key registered in the signed log" +
        " (revocations as the server lists them).";
    }
    if (unchecked.length) {
      message += " Not checked here: the signatures of records #" + unchecked.join(", #") +
        " (made under an earlier key of their desk); ledger-verify checks every signature.";
    }
    return { bySeq, message };
  }

  // -- key rotations (format §3) ------------------------------------------------
  // The page trusts the first key the server published, the one a reader had
  // before any rotation. A later key is trusted only through a key.rotated
  // record that an already trusted key endorsed and that is in the signed log:
  // a key the server merely lists proves nothing.

  const sameKey = (a, b) => a.name === b.name && equal(a.id, b.id) && equal(a.pub, b.pub);

  // The key.rotated record introducing ``key``: the first records recorded from
  // its not_before on (found by bisection, recorded_at never decreasing), or none.
  async function findRotation(ledger, key, size) {
    const base = "/v1/ledgers/" + encodeURIComponent(ledger) + "/events";
    if (typeof key.notBefore !== "string") return null;
    let lo = 1;
    let hi = size + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const { record } = await fetchRecord(ledger, mid);
      if (record.recorded_at < key.notBefore) lo = mid + 1;
      else hi = mid;
    }
    if (lo > size) return null;
    const page = await get(base + "?after_seq=" + (lo - 1) + "&limit=100", "the records after #" + (lo - 1));
    const found = (page.items || []).find(
      (r) => r && r.type === "key.rotated" && r.seq <= size && r.data && r.data.new_key === key.text
    );
    return found ? found.seq : null;
  }

  // Trusts ``key`` if record #seq, proved in the checkpoint, is a trusted key's endorsement of it.
  async function followRotation(ledger, seq, key, trusted, checkpoint) {
    const fetched = await fetchRecord(ledger, seq);
    const data = fetched.record.data || {};
    if (fetched.record.type !== "key.rotated" || data.new_key !== key.text) {
      fail("record #" + seq + " is not the rotation to key " + key.label);
    }
    let old;
    try {
      old = await parseVerifierKey(data.old_key);
    } catch (e) {
      if (e instanceof VerifyError) return null; // a rotation from a key this page cannot know
      throw e;
    }
    const endorser = trusted.find((t) => sameKey(t.key, old));
    if (!endorser) return null;
    const endorsement = b64decode(String(data.endorsement || ""), "the endorsement in record #" + seq);
    if (endorsement.length !== 64 || !(await ed25519Verify(old.pub, endorsement, enc.encode(key.text)))) {
      fail("the endorsement in record #" + seq + " of key " + key.label + " is not the signature of key " + old.label);
    }
    await verifyInclusion(ledger, seq, checkpoint, fetched);
    return { key, by: endorser, seq };
  }

  async function trustedKeys(ledger, keys, checkpoint) {
    const trusted = [{ key: keys[0], by: null, seq: null }];
    // Keys come oldest first, so each rotation finds the key before it trusted.
    for (const key of keys.slice(1)) {
      if (trusted.some((t) => sameKey(t.key, key))) continue;
      const seq = await findRotation(ledger, key, checkpoint.size);
      if (seq === null) continue;
      const followed = await followRotation(ledger, seq, key, trusted, checkpoint);
      if (followed) trusted.push(followed);
    }
    return trusted;
  }

  function endorsements(entry) {
    let text = "";
    for (let at = entry; at.by; at = at.by) {
      text += ", which key " + at.by.key.label + " endorsed in record #" + at.seq;
    }
    return text;
  }

  // -- the positions grid -------------------------------------------------------
  // The snapshot's signature says only that the server signed the grid, and the
  // server signs whatever its projection tables hold. So, up to a size the page
  // can fetch quickly, every record is fetched, proved to make the signed root,
  // and folded again here (positions.js, the format §6 fold) to compare with the grid.

  const RECOMPUTE_LIMIT = 10000;

  function recomputeLimit() {
    const node = document.getElementById("page-data");
    try {
      const limit = JSON.parse(node.textContent).recompute_limit;
      if (Number.isInteger(limit) && limit >= 0) return limit;
    } catch (e) {
      // no page data: the default
    }
    return RECOMPUTE_LIMIT;
  }

  // RFC 9162 MTH, level by level: a lone last node moves up unchanged.
  async function treeRoot(leaves) {
    if (!leaves.length) return sha256(new Uint8Array(0));
    let level = leaves;
    while (level.length > 1) {
      const pairs = [];
      for (let i = 0; i + 1 < level.length; i += 2) pairs.push(nodeHash(level[i], level[i + 1]));
      const next = await Promise.all(pairs);
      if (level.length % 2) next.push(level[level.length - 1]);
      level = next;
    }
    return level[0];
  }

  async function allRecords(ledger, size) {
    let response;
    try {
      response = await fetch("/v1/ledgers/" + encodeURIComponent(ledger) + "/events?after_seq=0", {
        cache: "no-store",
        credentials: "omit",
        headers: { Accept: "application/x-ndjson" },
      });
    } catch (e) {
      fail("could not fetch the records to recompute the positions grid (network error)");
    }
    if (!response.ok) fail("could not fetch the records to recompute the positions grid (HTTP " + response.status + ")");
    const bytes = new Uint8Array(await response.arrayBuffer());
    // The exact stored bytes, one record a line: a line's hash is its leaf.
    const lines = [];
    let start = 0;
    for (let i = 0; i < bytes.length && lines.length < size; i++) {
      if (bytes[i] === 0x0a) {
        lines.push(bytes.subarray(start, i));
        start = i + 1;
      }
    }
    if (lines.length < size && start < bytes.length) lines.push(bytes.subarray(start));
    if (lines.length < size) fail("the server sent " + lines.length + " records; the signed checkpoint has " + size);
    return lines;
  }

  async function checkGrid(ledger, checkpoint, snapshot, key) {
    const limit = recomputeLimit();
    const knownAt = snapshot.known_at;
    if (checkpoint.size > limit || !Number.isInteger(knownAt) || knownAt > checkpoint.size) {
      const why = checkpoint.size > limit ? "the ledger has more than " + limit + " records" : "it is newer than the checkpoint";
      return (
        " The positions grid is the snapshot signed by key " + key.label + ", not recomputed in your browser (" + why +
        "): ledger-verify server URL --ledger " + ledger + " --key KEY --snapshot FILE recomputes it from the records."
      );
    }
    const lines = await allRecords(ledger, checkpoint.size);
    const leaves = await Promise.all(lines.map(leafHash));
    if (!equal(await treeRoot(leaves), checkpoint.root)) {
      fail("the records the server sent for the positions grid do not make the signed checkpoint's root");
    }
    const known = knownAt === checkpoint.size ? checkpoint.root : await treeRoot(leaves.slice(0, knownAt));
    if (b64decode(String(snapshot.merkle_root), "the snapshot's Merkle root").length !== 32 ||
        snapshot.merkle_root !== btoa(String.fromCharCode(...known))) {
      fail("the snapshot's Merkle root is not the root of the first " + knownAt + " verified records");
    }
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const all = [];
    for (let i = 0; i < lines.length; i++) {
      let record;
      try {
        record = JSON.parse(decoder.decode(lines[i]));
      } catch (e) {
        fail("record #" + (i + 1) + " is not UTF-8 JSON");
      }
      if (record.seq !== i + 1 || record.ledger !== ledger) fail("the server sent another record for #" + (i + 1));
      all.push(record);
    }
    const signed = await checkAllSignatures(all);
    const signatures = signed
      ? " Every desk signature among them (" + signed + ") was checked against the keys the log registered before it."
      : "";
    const records = all.slice(0, knownAt);
    const made = window.LedgerPositions.fold(records, { asOf: snapshot.as_of, knownAt });
    const difference = window.LedgerPositions.firstDifference({ state: snapshot.state, claims: snapshot.claims }, made);
    if (difference !== null) fail("the positions grid differs from the verified records: " + difference);
    return (
      " The positions grid was recomputed in your browser from the " + knownAt + " verified records" +
      " and matches the snapshot signed by key " + key.label + "." + signatures
    );
  }

  // -- witnesses (format §7) ------------------------------------------------------
  // The page checks the witnesses' signatures itself, against the witness keys
  // this server lists in its page data: a reader who wants more compares those
  // keys with the ones the witnesses' operators publish.

  const base = (ledger) => "/v1/ledgers/" + encodeURIComponent(ledger);

  function pageSetting(name) {
    const node = document.getElementById("page-data");
    try {
      return JSON.parse(node.textContent)[name];
    } catch (e) {
      return undefined;
    }
  }

  function cosignatureTime(raw) {
    return new DataView(raw.buffer, raw.byteOffset + 4, 8).getBigUint64(0);
  }

  // A checkpoint other than the head must carry a valid signature by a trusted key.
  async function requireLogSignature(note, trusted, what) {
    let signed = false;
    for (const line of note.signatures) {
      const entry = trusted.find((t) => t.key.name === line.name && equal(t.key.id, line.id));
      if (!entry || line.raw.length !== 68) continue;
      if (!(await ed25519Verify(entry.key.pub, line.sig, note.body))) {
        fail(what + "'s signature by key " + entry.key.label + " is invalid");
      }
      signed = true;
    }
    if (!signed) fail(what + " is not signed by a trusted key of the ledger");
  }

  // ``other`` and the verified head are one history: the smaller tree is a
  // prefix of the larger (the head may have grown since it was fetched).
  async function requireOneHistory(ledger, other, head, what) {
    if (other.origin !== head.origin) fail(what + " is for another log (" + other.origin + ")");
    const [older, newer] = other.size <= head.size ? [other, head] : [head, other];
    if (older.size === newer.size) {
      if (!equal(older.root, newer.root)) fail(what + " and the head have the same size and different roots");
      return;
    }
    if (older.size === 0) return;
    const proof = await get(
      base(ledger) + "/proofs/consistency?from=" + older.size + "&to=" + newer.size,
      "the consistency proof"
    );
    const hashes = (proof.proof || []).map((h) => b64decode(h, "a consistency proof hash"));
    if (!(await consistent(older.size, newer.size, older.root, newer.root, hashes))) {
      fail(what + " of " + other.size + " records and the head of " + head.size + " records are not one history");
    }
  }

  // The witnesses of ``keys`` that cosigned ``note`` (a parsed checkpoint), each
  // with its cosignature's time; a witness's line that fails to verify fails the note.
  async function verifiedCosigners(note, keys) {
    const cosigned = [];
    for (const key of keys) {
      const line = note.signatures.find((l) => l.name === key.name && equal(l.id, key.id) && l.raw.length === 76);
      if (!line) continue;
      const time = cosignatureTime(line.raw);
      const message = concat(enc.encode("cosignature/v1\ntime " + time + "\n"), note.body);
      if (!(await ed25519Verify(key.pub, line.raw.slice(12), message))) {
        fail("the cosignature by witness " + key.label + " is invalid");
      }
      cosigned.push({ key, time: new Date(Number(time) * 1000) });
    }
    return cosigned;
  }

  async function checkWitnesses(ledger, checkpoint, trusted) {
    const configured = pageSetting("witnesses");
    if (!Array.isArray(configured) || !configured.length) return { message: "", cosigned: [] };
    const keys = [];
    for (const text of configured) keys.push(await parseCosignerKey(text));
    const quorum = Number.isInteger(pageSetting("witness_quorum")) ? pageSetting("witness_quorum") : keys.length;
    let response;
    try {
      response = await fetch(base(ledger) + "/checkpoint/witnessed", { cache: "no-store", credentials: "omit" });
    } catch (e) {
      fail("could not fetch the witnessed checkpoint (network error)");
    }
    if (response.status === 404) {
      return {
        message: " No checkpoint carries cosignatures from " + quorum + " of the ledger's " + keys.length + " witnesses yet.",
        cosigned: [],
      };
    }
    if (!response.ok) fail("could not fetch the witnessed checkpoint (HTTP " + response.status + ")");
    const witnessed = parseCheckpoint(await response.text());
    await requireLogSignature(witnessed, trusted, "the witnessed checkpoint");
    const cosigned = await verifiedCosigners(witnessed, keys);
    if (cosigned.length < quorum) {
      fail("the checkpoint served as witnessed carries " + cosigned.length + " valid cosignatures; the quorum is " + quorum);
    }
    await requireOneHistory(ledger, witnessed, checkpoint, "the witnessed checkpoint");
    const names = cosigned.map((c) => c.key.label + " at " + c.time.toISOString().replace(".000Z", "Z")).join(", ");
    const lag = checkpoint.size - witnessed.size;
    return {
      message:
        " The checkpoint of " + witnessed.size + " records was cosigned by " + cosigned.length + " of " + keys.length +
        " witnesses (quorum " + quorum + "): " + names + "; their signatures were checked in your browser against" +
        " the witness keys this server lists, and the head is proved to extend it" +
        (lag > 0 ? " (" + lag + " newer records are not witnessed yet)." : "."),
      cosigned,
      witnessedSize: witnessed.size,
    };
  }

  // -- the checkpoint timestamp (format §8) -------------------------------------
  // The page does not check the token's CMS signature (ledger-verify --tsa-cert
  // does): it checks that the token names a checkpoint signed by a trusted key
  // and consistent with the head, and says so.

  function contains(haystack, needle) {
    outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
      for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  }

  async function checkTimestamp(ledger, checkpoint, trusted) {
    let response;
    try {
      response = await fetch(base(ledger) + "/checkpoint/timestamp?at_most=" + checkpoint.size, {
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      fail("could not fetch the checkpoint timestamp (network error)");
    }
    if (response.status === 404) return { message: "" };
    if (!response.ok) fail("could not fetch the checkpoint timestamp (HTTP " + response.status + ")");
    const size = Number(response.headers.get("Ledger-Tree-Size"));
    const attestedAt = response.headers.get("Ledger-Attested-At") || "an unstated time";
    const authority = response.headers.get("Ledger-Timestamp-Authority") || "an unnamed authority";
    const token = new Uint8Array(await response.arrayBuffer());
    if (!Number.isInteger(size) || size < 1) fail("the checkpoint timestamp names no tree size");
    const note = parseCheckpoint(
      await get(base(ledger) + "/checkpoint?size=" + size, "the timestamped checkpoint", "text")
    );
    if (note.size !== size) fail("the server sent the checkpoint of " + note.size + " records for the timestamp of " + size);
    await requireLogSignature(note, trusted, "the timestamped checkpoint");
    await requireOneHistory(ledger, note, checkpoint, "the timestamped checkpoint");
    if (!contains(token, await sha256(note.body))) {
      fail("the timestamp token does not name the checkpoint of " + size + " records");
    }
    return {
      message:
        " An RFC 3161 timestamp by " + authority + " attests that the first " + size + " records existed by " +
        attestedAt + ": the token names that checkpoint, which is proved part of this log; its signature is" +
        " checked by ledger-verify --tsa-cert, not in your browser.",
      size,
      attestedAt,
      authority,
    };
  }

  // Everything the page shows, proved: returns a summary, or throws VerifyError naming what failed.
  async function verifyPage(ledger, seqs, snapshot) {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      fail("this page is not a secure context (serve it over https), so the browser offers no WebCrypto");
    }
    const keyList = await get("/v1/keys", "the signing keys");
    const keys = [];
    for (const item of keyList.items || []) {
      const key = await parseVerifierKey(item.verifier_key);
      keys.push(Object.assign(key, { text: item.verifier_key, notBefore: item.not_before }));
    }
    if (!keys.length) fail("the server publishes no signing key");
    const note = await get("/v1/ledgers/" + encodeURIComponent(ledger) + "/checkpoint", "the checkpoint", "text");
    const checkpoint = parseCheckpoint(note);
    if (!checkpoint.origin.endsWith("/" + ledger)) fail("the checkpoint is for another ledger (" + checkpoint.origin + ")");
    const trusted = await trustedKeys(ledger, keys, checkpoint);
    let signer = null;
    for (const line of checkpoint.signatures) {
      const entry = trusted.find((t) => t.key.name === line.name && equal(t.key.id, line.id));
      if (!entry) continue;
      if (!(await ed25519Verify(entry.key.pub, line.sig, checkpoint.body))) {
        fail("the checkpoint signature by key " + entry.key.label + " is invalid");
      }
      signer = signer || entry;
    }
    if (!signer) {
      fail(
        "the checkpoint is not signed by key " + keys[0].label +
          " (the first published) nor by a key it endorsed in a key.rotated record of this ledger"
      );
    }
    const records = {};
    await pool(seqs, 6, async (seq) => {
      records[seq] = await verifyInclusion(ledger, seq, checkpoint);
    });
    let snapshotNote = "";
    if (snapshot) {
      const entry = trusted.find((t) => t.key.idHex === snapshot.key_id);
      if (!entry) fail("the snapshot is signed by key " + snapshot.key_id + ", which is not a trusted key");
      const key = entry.key;
      const stateHash = hex(await sha256(enc.encode(canonical(snapshot.state))));
      if (stateHash !== snapshot.state_hash) fail("the snapshot's state_hash does not match its state");
      const unsigned = Object.assign({}, snapshot);
      delete unsigned.signature;
      const signature = b64decode(snapshot.signature || "", "the snapshot signature");
      if (!(await ed25519Verify(key.pub, signature, enc.encode(canonical(unsigned))))) {
        fail("the snapshot signature by key " + key.label + " is invalid");
      }
      if (snapshot.tree_size === checkpoint.size && snapshot.merkle_root !== btoa(String.fromCharCode(...checkpoint.root))) {
        fail("the snapshot's Merkle root differs from the signed checkpoint's");
      }
      snapshotNote = await checkGrid(ledger, checkpoint, snapshot, key);
    }
    const authors = await checkAuthors(ledger, seqs, records, checkpoint);
    const witnesses = await checkWitnesses(ledger, checkpoint, trusted);
    const timestamp = await checkTimestamp(ledger, checkpoint, trusted);
    return {
      checkpoint,
      signer: signer.key,
      records,
      authors,
      witnesses,
      timestamp,
      message:
        "Verified in your browser: " + seqs.length + " record" + (seqs.length === 1 ? "" : "s") +
        " shown are in the signed log of " + checkpoint.size + " records, checkpoint signed by key " +
        signer.key.label + endorsements(signer) + "." + authors.message + snapshotNote + witnesses.message +
        timestamp.message,
    };
  }

  window.LedgerVerify = {
    VerifyError,
    verifyPage,
    rootFromInclusion,
    parseVerifierKey,
    parseCheckpoint,
    parseCosignerKey,
    verifiedCosigners,
    consistent,
    canonical,
    sha256,
    hex,
  };
})();
