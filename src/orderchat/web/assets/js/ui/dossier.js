/**
 * The order's dossier in the order panel: one button that downloads the ZIP the server
 * builds (dossier.pdf, dossier.json, every original file and the manifest; docs/proof.md).
 *
 * The ZIP is fetched with the session's bearer token and handed to the browser as a
 * download: the route is not under the media cookie's path, and `api()` reads answers
 * as text, which would corrupt a binary file.
 */

import { h } from "../dom.js";
import { errorFromBody, errorText, languageHeaders } from "../api.js";
import { getSession } from "../session.js";
import { t } from "../i18n.js";
import { icon } from "./icons.js";
import { toast } from "./util.js";
import "./strings-dossier.js";

/**
 * The panel section with the download button.
 * @param {{id: string, number: string}} order
 * @returns {HTMLElement}
 */
export function dossierView(order) {
  const label = h("span", null, t("dossier.download"));
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      testid: "order-dossier",
      on: { click: () => download(order, button, label) },
    },
    icon("download"),
    label,
  );
  return h(
    "section",
    { class: "op-section", testid: "order-dossier-section" },
    h("h3", { class: "op-title" }, t("dossier.title")),
    h("p", { class: "op-muted" }, t("dossier.hint")),
    h("div", { class: "op-actions" }, button),
  );
}

async function download(order, button, label) {
  button.disabled = true;
  label.textContent = t("dossier.working");
  try {
    const session = getSession();
    const headers = { Accept: "application/zip", ...languageHeaders() };
    if (session) headers.Authorization = `Bearer ${session.token}`;
    const response = await fetch(`/api/orders/${encodeURIComponent(order.id)}/dossier`, {
      headers,
      credentials: "same-origin",
    });
    if (!response.ok) {
      const text = await response.text();
      throw errorFromBody(response.status, text, response.headers.get("Retry-After"));
    }
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: `dossier-${order.number}.zip`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(t("dossier.done"));
  } catch (err) {
    toast(t("dossier.failed", { message: errorText(err) }), "error");
  } finally {
    button.disabled = false;
    label.textContent = t("dossier.download");
  }
}
