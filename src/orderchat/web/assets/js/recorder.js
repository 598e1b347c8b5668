/**
 * Voice messages recorded in the browser. Opus in WebM where the browser records it
 * (Chromium, Firefox), AAC in MP4 elsewhere (Safari); the server makes a playback copy
 * for browsers that cannot play the original.
 */

const PREFERRED = [
  { mime: "audio/webm;codecs=opus", type: "audio/webm", ext: "webm" },
  { mime: "audio/webm", type: "audio/webm", ext: "webm" },
  { mime: "audio/mp4", type: "audio/mp4", ext: "m4a" },
  { mime: "audio/ogg;codecs=opus", type: "audio/ogg", ext: "ogg" },
];

function pickFormat() {
  for (const format of PREFERRED) {
    if (typeof MediaRecorder.isTypeSupported !== "function" || MediaRecorder.isTypeSupported(format.mime))
      return format;
  }
  return null;
}

function stamp(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

/** Records one voice message at a time from the microphone. */
export class VoiceRecorder {
  /**
   * Whether this browser can record at all, so the composer can hide the button.
   * @returns {boolean}
   */
  static supported() {
    return Boolean(
      window.MediaRecorder &&
      navigator.mediaDevices &&
      navigator.mediaDevices.getUserMedia &&
      window.isSecureContext !== false,
    );
  }

  constructor() {
    this._stream = null;
    this._recorder = null;
    this._chunks = [];
    this._format = null;
    this._startedAt = 0;
    this._stoppedAfter = 0;
  }

  /**
   * Milliseconds recorded so far (for the timer next to the button).
   * @returns {number}
   */
  get elapsedMs() {
    if (this._recorder && this._recorder.state === "recording") return Date.now() - this._startedAt;
    return this._stoppedAfter;
  }

  /** Whether a recording is running now. */
  get recording() {
    return Boolean(this._recorder && this._recorder.state === "recording");
  }

  /**
   * Ask for the microphone and start recording.
   * @returns {Promise<void>} rejects when the microphone is refused or missing
   *   (`NotAllowedError`, `NotFoundError`) or recording is not supported
   */
  async start() {
    if (this.recording) return;
    if (!VoiceRecorder.supported()) throw new DOMException("recording is not supported", "NotSupportedError");
    this._format = pickFormat();
    if (!this._format) throw new DOMException("no supported audio format", "NotSupportedError");
    this._stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this._chunks = [];
    this._stoppedAfter = 0;
    try {
      this._recorder = new MediaRecorder(this._stream, { mimeType: this._format.mime });
    } catch (err) {
      this._release();
      throw err;
    }
    this._recorder.ondataavailable = (event) => {
      if (event.data && event.data.size > 0) this._chunks.push(event.data);
    };
    this._recorder.start(250);
    this._startedAt = Date.now();
  }

  /**
   * Finish and hand over the recording as a file ready for `uploadFile`.
   * @returns {Promise<File>} named `voice-YYYYMMDD-HHMMSS.webm` (or `.m4a`/`.ogg`)
   */
  stop() {
    const recorder = this._recorder;
    if (!recorder || recorder.state === "inactive")
      return Promise.reject(new DOMException("not recording", "InvalidStateError"));
    return new Promise((resolve, reject) => {
      recorder.onstop = () => {
        this._stoppedAfter = Date.now() - this._startedAt;
        const format = this._format;
        const blob = new Blob(this._chunks, { type: format.type });
        this._chunks = [];
        this._release();
        if (blob.size === 0) {
          reject(new DOMException("nothing was recorded", "InvalidStateError"));
          return;
        }
        resolve(new File([blob], `voice-${stamp(new Date(this._startedAt))}.${format.ext}`, { type: format.type }));
      };
      recorder.onerror = (event) => {
        this._release();
        reject(event.error || new DOMException("recording failed", "UnknownError"));
      };
      recorder.stop();
    });
  }

  /** Throw the recording away and free the microphone. */
  cancel() {
    const recorder = this._recorder;
    if (recorder && recorder.state !== "inactive") {
      recorder.onstop = null;
      recorder.ondataavailable = null;
      try {
        recorder.stop();
      } catch {
        // Already stopped.
      }
    }
    this._chunks = [];
    this._stoppedAfter = 0;
    this._release();
  }

  _release() {
    if (this._stream) {
      for (const track of this._stream.getTracks()) track.stop();
    }
    this._stream = null;
    this._recorder = null;
  }
}
