// ESLint for the browser app: plain ES modules run as they are, in the browser.
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    ignores: ["node_modules/", ".venv/", "bench/", "docs/", "build/"],
  },
  js.configs.recommended,
  {
    files: ["src/orderchat/web/assets/js/**/*.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: globals.browser,
    },
  },
  {
    // The service worker: a classic script in the worker's global scope, not a module.
    files: ["src/orderchat/web/sw.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "script",
      globals: globals.serviceworker,
    },
  },
  {
    // The embeddable widget: a classic script run on other sites' pages (docs/consults.md §1).
    files: ["src/orderchat/web/widget.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "script",
      globals: globals.browser,
    },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: globals.node },
  },
];
