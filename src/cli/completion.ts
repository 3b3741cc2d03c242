// `qodctl completion bash|zsh`: a completion script generated from the command tree itself, so
// it always offers exactly the commands, aliases and flags this qodctl has. zsh runs the same
// function through bashcompinit.
import type { Command, Option } from "commander";

export const SHELLS = ["bash", "zsh"] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** Every spelling of the path: a group's aliases make more than one. */
  patterns: string[];
  commands: string[];
  valued: string[];
  flags: string[];
}

const optionWords = (option: Option) => [option.short, option.long].filter((w): w is string => Boolean(w));
const takesValue = (option: Option) => option.required || option.optional;

function collect(command: Command, prefixes: string[], globals: readonly Option[], nodes: Node[]): void {
  const options = [...globals, ...command.options];
  nodes.push({
    patterns: prefixes,
    commands: command.commands.flatMap((c) => [c.name(), ...c.aliases()]),
    valued: options.filter(takesValue).flatMap(optionWords),
    flags: [...options.filter((o) => !takesValue(o)).flatMap(optionWords), "-h", "--help"],
  });
  for (const child of command.commands) {
    const names = [child.name(), ...child.aliases()];
    collect(child, prefixes.flatMap((p) => names.map((n) => (p ? `${p} ${n}` : n))), globals, nodes);
  }
}

// Words are plain command and flag names (letters, digits, dashes): safe inside double quotes.
const quoteAll = (patterns: string[]) => patterns.map((p) => `"${p}"`).join("|");

export function completionScript(program: Command, shell: Shell): string {
  const nodes: Node[] = [];
  collect(program, [""], program.options, nodes);
  const cases = nodes
    .map((n) => `    ${quoteAll(n.patterns)}) cmds="${n.commands.join(" ")}" valued="${n.valued.join(" ")}" flags="${n.flags.join(" ")}" ;;`)
    .join("\n");
  const header =
    shell === "bash"
      ? "# bash completion for qodctl. Load it with: source <(qodctl completion bash)"
      : "# zsh completion for qodctl. Load it after compinit with: source <(qodctl completion zsh)\nautoload -U +X bashcompinit && bashcompinit";
  return `${header}
_qodctl_node() {
  case "$1" in
${cases}
    *) cmds="" valued="" flags="" ;;
  esac
}

_qodctl() {
  [[ -n \${ZSH_VERSION-} ]] && setopt localoptions ksharrays
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word i skip=0 cmds valued flags
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    _qodctl_node "$path"
    if [[ $word == -* ]]; then
      [[ $word != *=* && " $valued " == *" $word "* ]] && skip=1
    elif [[ " $cmds " == *" $word "* ]]; then
      path="\${path:+$path }$word"
    fi
  done
  _qodctl_node "$path"
  if ((skip)); then
    case "\${COMP_WORDS[COMP_CWORD-1]}" in
      -o|--output) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")) ;;
      -f|--file|--ca|--id-token) COMPREPLY=($(compgen -f -- "$cur")) ;;
      *) COMPREPLY=() ;;
    esac
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$valued $flags" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
  fi
}
complete -F _qodctl qodctl
`;
}
