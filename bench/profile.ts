// Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the busy time went, by package and
// by function, self and inclusive. Idle time is left out of the percentages.
//
//   node --import tsx bench/profile.ts <file.cpuprofile> [top]
import { readFileSync } from "node:fs";
import path from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const REPO = path.join(__dirname, "..");

/** Which code a frame belongs to: ours (src/…), generated, a package, Node itself, or V8. */
export function categoryOf(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "");
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  if (url.startsWith("node:")) return "node:internal";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? "?");
  }
  if (url.startsWith(REPO)) {
    const rel = path.relative(REPO, url);
    return rel.startsWith("src/") ? `ours:${rel.split("/").slice(0, 2).join("/")}` : rel.split("/")[0] ?? rel;
  }
  return url;
}

function frameKey(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "");
  const where = url.startsWith(REPO) ? path.relative(REPO, url).replace(/^node_modules\//, "") : url.replace(/^.*\/node_modules\//, "");
  return `${frame.functionName || "(anonymous)"} ${where}:${frame.lineNumber + 1}`;
}

export function summarizeProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfByKey = new Map<string, number>();
  const selfByCategory = new Map<string, number>();
  const inclusiveOurs = new Map<string, number>();
  const inclusiveCategory = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000; // µs → ms
    const leaf = byId.get(id);
    if (!leaf) return;
    if (leaf.callFrame.functionName === "(idle)") {
      idle += dt;
      return;
    }
    busy += dt;
    add(selfByKey, frameKey(leaf.callFrame), dt);
    add(selfByCategory, categoryOf(leaf.callFrame), dt);
    const seenKeys = new Set<string>();
    const seenCats = new Set<string>();
    for (let n: ProfileNode | undefined = leaf; n; n = byId.get(parent.get(n.id) ?? -1)) {
      const cat = categoryOf(n.callFrame);
      if (!seenCats.has(cat)) {
        seenCats.add(cat);
        add(inclusiveCategory, cat, dt);
      }
      if (cat.startsWith("ours:")) {
        const key = frameKey(n.callFrame);
        if (!seenKeys.has(key)) {
          seenKeys.add(key);
          add(inclusiveOurs, key, dt);
        }
      }
    }
  });

  const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)}%`;
  const list = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${pct(v)} ${v.toFixed(0).padStart(7)} ms  ${k}`)
      .join("\n");
  return [
    `busy ${busy.toFixed(0)} ms, idle ${idle.toFixed(0)} ms`,
    `self time by package (ours:… is src/):`,
    list(selfByCategory, 20),
    `inclusive time by package (any frame of it on the stack):`,
    list(inclusiveCategory, 20),
    `self time, top ${top} functions:`,
    list(selfByKey, top),
    `inclusive time of our functions (src/):`,
    list(inclusiveOurs, top),
  ].join("\n");
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]\n");
    process.exit(2);
  }
  process.stdout.write(`${summarizeProfile(file, top ? Number(top) : 25)}\n`);
}
