// The timeline page's live tail, held in a dedicated worker. Headless capture
// with a virtual time budget (chromium --dump-dom --virtual-time-budget) stops
// its clock while the document has a request open, so an event stream the
// document opened itself would keep such a capture, and archiving tools built
// on it, waiting forever. The page starts this worker once it has loaded and
// passes it the stream's URL; every message back is plain data.
"use strict";
let source = null;

self.addEventListener("message", (event) => {
  if (source !== null || typeof event.data !== "string" || !event.data.startsWith("/v1/ledgers/")) return;
  source = new EventSource(event.data);
  source.addEventListener("open", () => self.postMessage({ kind: "open" }));
  source.addEventListener("error", () => self.postMessage({ kind: "error" }));
  source.addEventListener("record", (record) => self.postMessage({ kind: "record", data: record.data }));
});
