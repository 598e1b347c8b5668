/**
 * Reading an order's workflow as the server sends it with the order (`workflow_detail`
 * in `GET /api/orders/{id}`, the shape of `GET /api/workflows`): state labels, the usual
 * path ahead, and which moves leave that path. No state name is known here; everything
 * comes from the workflow's data (docs/orders.md §1.4).
 */

import { pickText } from "./i18n.js";

/**
 * The workflow an order follows, or null when the server sent none.
 * @param {object|null} order
 * @returns {{name: string, initial: string, states: Array<object>, transitions: Array<object>}|null}
 */
export function workflowOf(order) {
  const w = order && order.workflow_detail;
  return w && Array.isArray(w.states) && Array.isArray(w.transitions) ? w : null;
}

/**
 * A state's name in the reader's language: the order's own label for its current
 * state, else the workflow's, else the bare name (a state newer than the page).
 * @param {object|null} order
 * @param {string|null} name
 * @returns {string}
 */
export function stateLabel(order, name) {
  if (!name) return "";
  if (order && name === order.status && order.status_label) return pickText(order.status_label, name);
  const workflow = workflowOf(order);
  const state = workflow && workflow.states.find((s) => s.name === name);
  return state ? pickText(state.label, name) : name;
}

/**
 * The transition from one state to another, if the workflow has one.
 * @param {object|null} workflow
 * @param {string} from
 * @param {string} to
 * @returns {object|null}
 */
export function transitionOf(workflow, from, to) {
  if (!workflow) return null;
  return workflow.transitions.find((tr) => tr.to === to && tr.from.includes(from)) || null;
}

/**
 * The usual path ahead of a state: the states declared after it, in their order, for
 * as long as a transition leads from each to the next. A workflow declares its usual
 * path first and its side exits (cancellation, returns) after it.
 * @param {object|null} workflow
 * @param {string} status
 * @returns {string[]}
 */
export function pathAhead(workflow, status) {
  if (!workflow) return [];
  const names = workflow.states.map((s) => s.name);
  const path = [];
  let from = status;
  for (const next of names.slice(names.indexOf(status) + 1)) {
    if (names.indexOf(status) < 0 || next === from || !transitionOf(workflow, from, next)) break;
    path.push(next);
    from = next;
  }
  return path;
}

/**
 * Whether a move ends the order off its usual path (a cancellation): it reaches a
 * terminal state that is not on the path ahead. Such moves are drawn as a warning.
 * @param {object|null} workflow
 * @param {string} from
 * @param {string} to
 * @returns {boolean}
 */
export function leavesPath(workflow, from, to) {
  if (!workflow) return false;
  const state = workflow.states.find((s) => s.name === to);
  return Boolean(state && state.terminal) && !pathAhead(workflow, from).includes(to);
}
