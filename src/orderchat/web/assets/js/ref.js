/**
 * Client-made ids: the `ref` of a send or recall (docs/protocol.md §7.1) and the
 * `Idempotency-Key` of an HTTP change. One generator, so both pages make them alike.
 */

/**
 * A fresh random id, unique enough that the server may treat a repeat as the same request.
 * @returns {string}
 */
export function newRef() {
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
