/**
 * Going to one message of a conversation that is opening or open: a clicked
 * notification, a forward's original. The message may be older than the page the
 * timeline loaded, or not drawn yet.
 */

// Enough for a slow conversation load and a few older pages on a busy phone.
const TRIES = 100;
const WAIT_MS = 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The timeline scrolls to its newest message in the frame after it draws; a reveal
// before that would be undone.
const afterNextFrame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));

/**
 * Scroll to message `seq` and flash it (`Timeline.reveal`), loading older pages while
 * it is older than those shown.
 * @param {{timeline: () => (object|null), active: () => boolean}} where the timeline
 *   once built (null until then); `active` false gives up (another conversation opened)
 * @param {number} seq
 * @returns {Promise<boolean>} whether the message was shown
 */
export async function revealMessage({ timeline: current, active }, seq) {
  for (let tries = 0; tries < TRIES && active(); tries += 1) {
    const timeline = current();
    if (timeline && timeline.nodes.has(seq)) {
      await afterNextFrame();
      if (!active() || current() !== timeline) return false;
      timeline.reveal(seq);
      return true;
    }
    const oldest = timeline && timeline.msgs.length ? timeline.msgs[0].seq : 0;
    if (timeline && timeline.hasOlder && oldest > seq && !timeline.loadingOlder) {
      await timeline.loadOlder();
      // A page that did not load (no network) is not asked for again and again.
      if (timeline.msgs.length && timeline.msgs[0].seq === oldest) return false;
    } else {
      await sleep(WAIT_MS);
    }
  }
  return false;
}
