// ESLint: typescript-eslint's recommended rules with type information, and the architecture's
// rules (ARCHITECTURE.md): imports point down the layers, a domain is used by others only through
// its index.ts, SQL (slonik) lives only in the db layer and in queries.ts, no file import cycles.
import importX, { createNodeResolver } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

// The layers, bottom first. A file may import from its own layer and the ones below.
const FOUNDATION = [
  "./src/call",
  "./src/config.ts",
  "./src/data-plane.ts",
  "./src/errors.ts",
  "./src/ids.ts",
  "./src/logger.ts",
  "./src/package-root.ts",
  "./src/pagination.ts",
  "./src/ports.ts",
  "./src/scram.ts",
  "./src/semaphore.ts",
  "./src/validation.ts",
  "./src/vault.ts",
];
const DB = ["./src/db"];
const DOMAINS = ["./src/auth", "./src/databases", "./src/pools", "./src/supavisor", "./src/tenants"];
const SURFACES = ["./src/server", "./src/gateway", "./src/edge"];
// The programs: the service, qodctl, and the client library (which stands on gen/ alone).
const TOP = ["./src/app.ts", "./src/main.ts", "./src/plane.ts", "./src/cli", "./src/client"];

const above = (layer) => {
  const order = [FOUNDATION, DB, DOMAINS, SURFACES, TOP];
  return order.slice(order.indexOf(layer) + 1).flat();
};

const layerZones = [
  { target: FOUNDATION, from: above(FOUNDATION), message: "the foundation (call/, config, errors, …) imports nothing above it" },
  { target: DB, from: above(DB), message: "db/ imports only the foundation" },
  { target: DOMAINS, from: above(DOMAINS), message: "a domain never imports server/, gateway/, edge/ or the app" },
  { target: SURFACES, from: TOP, message: "server/, gateway/ and edge/ never import the app" },
  { target: ["./src/edge"], from: ["./src/server", "./src/gateway"], message: "the edge is independent of the gRPC and JSON surfaces" },
  // A domain is used by the others only through its index.ts.
  ...DOMAINS.map((domain) => ({
    target: DOMAINS.filter((other) => other !== domain),
    from: domain,
    except: ["./index.ts"],
    message: `use ${domain.slice(2)}/index.ts, not its internals`,
  })),
  { target: ["./src"], from: ["./test", "./bench", "./tools"], message: "the service never imports tests, the bench or tools" },
  { target: ["./bench"], from: ["./test"], message: "the bench shares code with the tests through tools/, never test/" },
];

export default tseslint.config(
  { ignores: ["gen/**", "dist/**", "node_modules/**", "envoy/**", "**/*.mjs", "**/*.js"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "import-x": importX },
    settings: { "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js", ".json"] })] },
    rules: {
      "import-x/no-restricted-paths": ["error", { zones: layerZones }],
      "import-x/no-cycle": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      // Handlers and stubs implement async interfaces; not every one has something to await.
      "@typescript-eslint/require-await": "off",
      // Passing on what was thrown, whatever it is, is how errors travel through promises here.
      "@typescript-eslint/prefer-promise-reject-errors": "off",
    },
  },
  {
    // Tests read JSON answers as untyped values.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
    },
  },
  {
    // SQL is built only where it lives (STYLE §2.3).
    files: ["src/**/*.ts"],
    ignores: ["src/db/**", "src/**/queries.ts", "src/databases/servers.ts", "src/databases/ducklake.ts"],
    rules: {
      "no-restricted-imports": ["error", { paths: [{ name: "slonik", message: "SQL lives in src/db/ and each domain's queries.ts", allowTypeImports: true }] }],
    },
  },
);
