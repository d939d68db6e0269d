/**
 * Shell completion as a person gets it: an interactive bash or zsh on a
 * terminal of its own (zsh's zpty module drives both), the completion script
 * loaded as the README says, a partial command line typed and Tab pressed. No
 * completion function is called by hand, so what is checked includes the
 * registration (`complete -F`, bashcompinit's `_comps`) and the shell's own
 * matching.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * zsh -f DRIVER SHELL SETUP KEYS…: start SHELL on a terminal, send SETUP (it ends by printing a line starting READY-MARK
 * and sets the prompt to PROMPT-MARK), then type each KEYS (each ends with a command that prints one line starting
 * RESULT-MARK) and print those lines.
 *
 * Each KEYS is typed only once the shell shows its prompt, as a person types. Keys that arrive sooner are typeahead,
 * and zsh then leaves the terminal in canonical mode until it has read them (zsetterm in zsh's Src/Zle/zle_main.c:
 * "if there is typeahead, we set the flag delayzsetterm"): the terminal's own line editing gets them, where Tab is
 * text and Ctrl-U erases the line, and the completion never runs. Both shells set their terminal up before they draw
 * the prompt (zsh's zrefresh calls zsetterm first; readline's readline() calls rl_prep_terminal before the prompt).
 */
const DRIVER = String.raw`zmodload zsh/zpty
setopt extendedglob
zpty z "$1"
wait_for() {
  local line
  local -F deadline=$(( SECONDS + 20 ))
  while (( SECONDS < deadline )); do
    if zpty -r -t z line; then
      # Without carriage returns and terminal controls (a listing's "clear below" may come before the line).
      line=${"$"}{${"$"}{${"$"}{line//$'\r'/}%$'\n'}//$'\e'\[[0-9;?]#[A-Za-z]/}
      if [[ $line == $1* ]]; then print -r -- $line; return 0; fi
    else
      sleep 0.05
    fi
  done
  print -u2 "$1 did not come within 20 s"
  zpty -d z
  exit 1
}
wait_for_prompt() {
  local chunk seen=
  local -F deadline=$(( SECONDS + 20 ))
  while (( SECONDS < deadline )); do
    # Read until the prompt; a poll that finds nothing yet returns what was read so far.
    if zpty -r -t z chunk '*PROMPT-MARK*'; then
      seen+=$chunk
      [[ $seen == *PROMPT-MARK* ]] && return 0
    else
      sleep 0.05
    fi
  done
  print -u2 "no prompt within 20 s"
  zpty -d z
  exit 1
}
zpty -w z "$2"
wait_for READY-MARK >/dev/null
for keys in "${"$"}{@[3,-1]}"; do
  wait_for_prompt
  zpty -w -n z "$keys"
  wait_for RESULT-MARK
done
zpty -d z
`;

/**
 * Before the completion script, what a ~/.zshrc usually does (compinit), and a
 * compadd that also writes every match zsh keeps (after its own matching) to
 * $HITS: the list zsh would show.
 */
const ZSH_SETUP = String.raw`PROMPT=PROMPT-MARK
autoload -U compinit && compinit -u
bindkey '^I' complete-word
compadd() {
  if [[ ${"$"}{@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a hits
  builtin compadd -A hits "$@"
  (( $#hits )) && print -rl -- "${"$"}{hits[@]}" >> $HITS
  builtin compadd "$@"
}
`;

/** What `shell` offers after each of `lines` (a partial command line each) and Tab, with `script` (the output of `alekseylearn completion SHELL`) loaded. */
export async function completions(shell: "bash" | "zsh", script: string, lines: readonly string[], dir: string): Promise<string[][]> {
  const driver = path.join(dir, "drive.zsh");
  fs.writeFileSync(driver, DRIVER);
  const file = path.join(dir, `completion.${shell}`);
  fs.writeFileSync(file, script);
  let setup: string;
  let keys: string[];
  if (shell === "zsh") {
    const hits = path.join(dir, "hits");
    fs.writeFileSync(path.join(dir, "setup.zsh"), `${ZSH_SETUP}source ${file}\nprint READY-MARK\n`);
    setup = `HITS=${hits}; : >${hits}; source ${path.join(dir, "setup.zsh")}`;
    // Tab, then Ctrl-U clears the line and a command prints the matches on one line and empties the list.
    keys = lines.map((line) => `${line}\t\x15print -r -- RESULT-MARK $(<$HITS); : >$HITS\r`);
  } else {
    setup = `PS1=PROMPT-MARK; source ${file}; echo READY-MARK`;
    // Meta-* (readline's insert-completions) puts every match on the line; Ctrl-A and echo print the line.
    keys = lines.map((line) => `${line}\x1b*\x01echo RESULT-MARK \r`);
  }
  const command = shell === "zsh" ? "zsh -f -i" : "bash --norc --noprofile -i";
  const { stdout } = await run("zsh", ["-f", driver, command, setup, ...keys], { cwd: dir, encoding: "utf8", timeout: 60_000 });
  const results = stdout.split("\n").filter((line) => line.startsWith("RESULT-MARK"));
  if (results.length !== lines.length) throw new Error(`${shell} answered ${results.length} of ${lines.length} lines:\n${stdout}`);
  return results.map((result, index) => {
    const words = result.split(" ").filter(Boolean).slice(1);
    // bash leaves the whole line, its matches in place of the last word (that word as typed when nothing matched);
    // zsh prints the matches alone.
    if (shell === "zsh") return words;
    const typed = lines[index]!.split(" ").filter(Boolean);
    const kept = lines[index]!.endsWith(" ") ? typed.length : typed.length - 1;
    const matches = words.slice(kept);
    return matches.length === 1 && matches[0] === typed[kept] ? [] : matches;
  });
}
