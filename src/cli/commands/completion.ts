/** `alekseylearn completion bash|zsh`: a completion script, made from the commands' table and the backends' settings. */
import { allBackends } from "../../backends/registry.js";
import type { Backend } from "../../backends/types.js";
import { UserError } from "../../errors.js";
import { GLOBAL_OPTIONS } from "../args.js";
import { commands, type CommandRun } from "../commands.js";

/** A shell word list, safe inside double quotes (names are plain: letters, digits, '-', '_', '.'). */
function words(list: readonly string[]): string {
  return list.join(" ");
}

/** The bash completion function; zsh runs it through bashcompinit. */
export function bashCompletion(backends: readonly Backend[]): string {
  const commandCases = commands
    .map((command) => {
      const options = [...command.options, ...GLOBAL_OPTIONS].flatMap((option) =>
        [option.name, ...(option.aliases ?? [])].map((name) => (name.length === 1 ? `-${name}` : `--${name}`)),
      );
      const families = (command.families ?? []).filter((family) => family.prefix !== "config").map((family) => `--${family.prefix}.`);
      const config = command.families?.some((family) => family.prefix === "config") ? " --config." : "";
      return `    ${command.name}) opts="${words([...options, ...families])}${config}" ;;`;
    })
    .join("\n");
  const backendCases = backends
    .map((backend) => `    ${backend.name}) keys="${words(Object.keys(backend.schema).map((key) => `--config.${key}=`))}" ;;`)
    .join("\n");
  const allKeys = [...new Set(backends.flatMap((backend) => Object.keys(backend.schema)))].sort().map((key) => `--config.${key}=`);
  return `# alekseylearn completion for bash (and zsh through bashcompinit). Load it with:
#   source <(alekseylearn completion bash)        # or add that line to ~/.bashrc
_alekseylearn() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="\${COMP_WORDS[1]}" backend="" opts="" keys="" i
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${words(commands.map((command) => command.name))} --help --version" -- "$cur"))
    return
  fi
  for ((i = 2; i < COMP_CWORD; i++)); do
    if [ "\${COMP_WORDS[i]}" = "--backend" ]; then backend="\${COMP_WORDS[i+1]}"; fi
  done
  if [ "$prev" = "--backend" ] || { [ "$cmd" = "settings" ] && [ "$COMP_CWORD" -eq 2 ]; }; then
    COMPREPLY=($(compgen -W "${words(backends.map((backend) => backend.name))}" -- "$cur"))
    return
  fi
  case "$cmd" in
${commandCases}
  esac
  case "$cur" in
    --config.*)
      case "$backend" in
${backendCases}
        *) keys="${words(allKeys)}" ;;
      esac
      COMPREPLY=($(compgen -W "$keys" -- "$cur"))
      compopt -o nospace 2>/dev/null
      ;;
    -*) COMPREPLY=($(compgen -W "$opts" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
`;
}

export const run: CommandRun = async (args, _ctx, output) => {
  const shell = args.positionals[0];
  const backends = await allBackends();
  if (shell === "bash") output.out(`${bashCompletion(backends)}complete -o default -o bashdefault -F _alekseylearn alekseylearn\n`);
  else if (shell === "zsh")
    output.out(`# alekseylearn completion for zsh. Load it with: source <(alekseylearn completion zsh)   # or add that line to ~/.zshrc
# zsh's completion system and its bash emulation, unless ~/.zshrc loaded them already (compinit once is enough).
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }
(( $+functions[complete] )) || { autoload -U +X bashcompinit && bashcompinit; }
${bashCompletion(backends)}complete -o default -F _alekseylearn alekseylearn\n`);
  else
    throw new UserError(
      `No completion for ${shell ?? "no shell"}: bash and zsh have one.`,
      "Run `alekseylearn completion bash` or `alekseylearn completion zsh`.",
    );
  return 0;
};
