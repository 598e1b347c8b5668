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
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: globals.node },
  },
];
