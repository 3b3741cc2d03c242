// Printing a response: `-o json` (the JSON API's body), `-o yaml` (the same value), or an
// aligned table whose columns each resource's view names (default).
import type { DescMessage } from "@bufbuild/protobuf";
import { escapeSerialized, hasUnsafeText, safeText } from "./terminal-text";

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** How a message type is shown in tables: a header and the JSON field of each column. */
export interface View {
  /** What its rows are called in "No tenants found." */
  plural: string;
  columns: readonly (readonly [header: string, field: string])[];
  /** A field only one reply carries (a generated password): printed under that reply's row, with its label. */
  shownOnce?: readonly [label: string, field: string];
}

export interface Rendered {
  stdout: string;
  /** Notes for a person (no rows, more pages), never data. */
  stderr: string;
}

/**
 * The JSON API's body as is, so scripts compare and parse exactly what the API answers; on a
 * terminal, indented and with terminal controls escaped (the same value).
 */
export function renderJson(body: string, terminal: boolean): string {
  if (!terminal) return `${body}\n`;
  return `${escapeSerialized(JSON.stringify(JSON.parse(body), null, 2))}\n`;
}

export async function renderYaml(body: string): Promise<string> {
  const YAML = await import("yaml");
  const doc = new YAML.Document(JSON.parse(body) as Json);
  // A string holding a control character is double-quoted, where YAML escapes C0 itself and
  // escapeSerialized can write the rest as \u escapes.
  YAML.visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === "string" && hasUnsafeText(node.value)) node.type = "QUOTE_DOUBLE";
    },
  });
  return escapeSerialized(doc.toString({ lineWidth: 0 }));
}

/** A table cell: scalars as text, lists comma-joined, maps as `k=v` pairs, timestamps to the second. */
function cell(value: Json | undefined): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.map(cell).join(",");
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}=${cell(v)}`).join(",");
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)) return value.replace(/\.\d+Z$/, "Z");
  return String(value);
}

async function alignedTable(rows: string[][]): Promise<string> {
  const { table, getBorderCharacters } = await import("table");
  const text = table(
    rows.map((row) => row.map(safeText)),
    { border: getBorderCharacters("void"), columnDefault: { paddingLeft: 0, paddingRight: 3 }, drawHorizontalLine: () => false },
  );
  return text
    .trimEnd()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

const isObject = (value: Json | undefined): value is { [key: string]: Json } => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The response as a table: a message with a view is one row; a list response (one repeated
 * field of a viewed type) is a row per item; an empty response prints `emptyMessage`; anything else
 * is a two-column listing of its fields.
 */
export async function renderTable(body: string, output: DescMessage, views: Readonly<Record<string, View>>, emptyMessage: string): Promise<Rendered> {
  const value = JSON.parse(body) as Json;
  const object = isObject(value) ? value : {};
  const rowsOf = (view: View, items: Json[]) => [view.columns.map(([header]) => header), ...items.map((item) => view.columns.map(([, field]) => cell(isObject(item) ? item[field] : undefined)))];

  const ownView = views[output.typeName];
  if (ownView) {
    const once = ownView.shownOnce && object[ownView.shownOnce[1]];
    const onceLine = typeof once === "string" && once !== "" ? `${ownView.shownOnce![0]}: ${safeText(once)}\n` : "";
    return { stdout: `${await alignedTable(rowsOf(ownView, [value]))}\n${onceLine}`, stderr: "" };
  }

  const listField = output.fields.find((f) => f.fieldKind === "list" && f.listKind === "message" && views[f.message.typeName]);
  if (listField && listField.fieldKind === "list" && listField.listKind === "message") {
    const view = views[listField.message.typeName];
    const items = object[listField.jsonName];
    const list = Array.isArray(items) ? items : [];
    const next = object.nextPageToken;
    const more = typeof next === "string" && next !== "" ? `More ${view.plural}: add --page-token ${safeText(next)}\n` : "";
    if (list.length === 0) return { stdout: "", stderr: `No ${view.plural} found.\n${more}` };
    return { stdout: `${await alignedTable(rowsOf(view, list))}\n`, stderr: more };
  }

  if (output.fields.length === 0) return { stdout: `${safeText(emptyMessage)}\n`, stderr: "" };
  return { stdout: `${await alignedTable(output.fields.map((f) => [f.jsonName, cell(object[f.jsonName])]))}\n`, stderr: "" };
}
