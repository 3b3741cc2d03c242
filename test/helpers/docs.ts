// The code blocks of the documentation, so tests can run or check the examples as they are written.
import { readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "./process";

export interface CodeBlock {
  lang: string;
  text: string;
}

/** Every fenced code block of a markdown file of the repository (its fences may be indented). */
export function codeBlocks(file: string): CodeBlock[] {
  const markdown = readFileSync(path.join(REPO_ROOT, file), "utf8");
  const blocks: CodeBlock[] = [];
  const fence = /^( *)```(\w*)\n([\s\S]*?)^\1```$/gm;
  for (const match of markdown.matchAll(fence)) {
    const indent = match[1] ?? "";
    const text = (match[3] ?? "")
      .split("\n")
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join("\n");
    blocks.push({ lang: match[2] ?? "", text });
  }
  return blocks;
}

/** The one code block of `file` that contains `needle`; fails when there is none or several. */
export function blockWith(file: string, needle: string): string {
  const found = codeBlocks(file).filter((b) => b.text.includes(needle));
  if (found.length !== 1) throw new Error(`${file}: ${found.length} code blocks contain ${JSON.stringify(needle)}, expected one`);
  return found[0].text;
}
