/**
 * Resumable uploads with tus 1.0 (docs/media.md §2): create, then append in chunks;
 * after a failure ask the server how much it has and carry on from there, so a
 * dropped connection on a phone does not restart a large video from zero.
 */

import { ApiError, errorFromBody, languageHeaders } from "./api.js";
import { clearSession, getSession } from "./session.js";

const CHUNK_BYTES = 4 * 1024 * 1024;
const MAX_RETRIES = 5;
const TUS_VERSION = "1.0.0";

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(new DOMException("upload cancelled", "AbortError"));
        },
        { once: true },
      );
    }
  });
}

function authHeaders() {
  const session = getSession();
  const headers = { "Tus-Resumable": TUS_VERSION, ...languageHeaders() };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  return headers;
}

function failed(status, body, retryAfter) {
  const error = errorFromBody(status, body, retryAfter);
  if (status === 401) clearSession();
  return error;
}

// Worth trying again: the network, the server's own faults, a PATCH that raced another.
function retryable(err) {
  if (!(err instanceof ApiError)) return false;
  return err.status === 0 || err.status >= 500 || err.status === 409 || err.status === 429;
}

/** One PATCH with upload progress (fetch cannot report it, XMLHttpRequest can). */
function patchChunk(url, offset, blob, signal, onChunkProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PATCH", url);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Upload-Offset", String(offset));
    xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
    const onAbort = () => xhr.abort();
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      if (signal) signal.removeEventListener("abort", onAbort);
    };
    xhr.upload.onprogress = (event) => onChunkProgress(event.loaded);
    xhr.onload = () => {
      done();
      if (xhr.status === 204 || xhr.status === 200) {
        resolve(Number(xhr.getResponseHeader("Upload-Offset")));
      } else {
        reject(failed(xhr.status, xhr.responseText, xhr.getResponseHeader("Retry-After")));
      }
    };
    xhr.onerror = () => {
      done();
      reject(new ApiError(0, "network", "the upload was interrupted"));
    };
    xhr.onabort = () => {
      done();
      reject(new DOMException("upload cancelled", "AbortError"));
    };
    xhr.send(blob);
  });
}

async function headOffset(url, signal) {
  let response;
  try {
    response = await fetch(url, { method: "HEAD", headers: authHeaders(), signal, cache: "no-store" });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "the server could not be reached");
  }
  if (!response.ok) throw failed(response.status, "", null);
  return Number(response.headers.get("Upload-Offset"));
}

async function create(file, convId, signal) {
  const metadata = [
    `conv ${b64(convId)}`,
    `filename ${b64(file.name || "file")}`,
    `filetype ${b64(file.type || "application/octet-stream")}`,
  ].join(",");
  let response;
  try {
    response = await fetch("/api/uploads", {
      method: "POST",
      headers: { ...authHeaders(), "Upload-Length": String(file.size), "Upload-Metadata": metadata },
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "the server could not be reached");
  }
  const text = await response.text();
  if (response.status !== 201) throw failed(response.status, text, response.headers.get("Retry-After"));
  let id = null;
  try {
    id = JSON.parse(text).id;
  } catch {
    // Fall back to the Location header below.
  }
  const location = response.headers.get("Location");
  if (!id && location) id = location.split("/").pop();
  return { id, url: location || `/api/uploads/${encodeURIComponent(id)}` };
}

/**
 * Upload one file for a conversation, resuming after network failures.
 * Cancelling through `signal` also deletes the partial upload on the server.
 * @param {File} file
 * @param {string} convId the conversation the file will be sent in
 * @param {{onProgress?: (loaded: number, total: number) => void, signal?: AbortSignal}} [options]
 * @returns {Promise<string>} the upload id, to send as `attachments: [{id}]`
 * @throws {ApiError|DOMException} DOMException "AbortError" when cancelled
 */
export async function uploadFile(file, convId, { onProgress, signal } = {}) {
  if (signal && signal.aborted) throw new DOMException("upload cancelled", "AbortError");
  const total = file.size;
  const report = (loaded) => {
    if (onProgress) onProgress(Math.min(loaded, total), total);
  };
  let created;
  for (let attempt = 0; ; attempt += 1) {
    try {
      created = await create(file, convId, signal);
      break;
    } catch (err) {
      if (!retryable(err) || attempt >= MAX_RETRIES) throw err;
      await sleep(backoff(attempt, err), signal);
    }
  }
  const { id, url } = created;
  report(0);
  let offset = 0;
  let retries = 0;
  try {
    while (offset < total) {
      const end = Math.min(total, offset + CHUNK_BYTES);
      try {
        const start = offset;
        offset = await patchChunk(url, offset, file.slice(offset, end), signal, (sent) => report(start + sent));
        retries = 0;
        report(offset);
      } catch (err) {
        if (!retryable(err) || retries >= MAX_RETRIES) throw err;
        await sleep(backoff(retries, err), signal);
        retries += 1;
        offset = await resumeOffset(url, signal);
        report(offset);
      }
    }
  } catch (err) {
    if (err && err.name === "AbortError") {
      fetch(url, { method: "DELETE", headers: authHeaders() }).catch(() => {});
    }
    throw err;
  }
  return id;
}

async function resumeOffset(url, signal) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await headOffset(url, signal);
    } catch (err) {
      if (!retryable(err) || attempt >= MAX_RETRIES) throw err;
      await sleep(backoff(attempt, err), signal);
    }
  }
}

function backoff(attempt, err) {
  if (err && err.retryAfter) return err.retryAfter * 1000;
  const base = Math.min(8000, 1000 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}
