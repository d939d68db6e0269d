/** The table of commands: what each accepts (for parsing and help) and where its code is, loaded only when run. */
import type { CommandSpec, ParsedArgs } from "./args.js";
import type { Context } from "../context.js";

/** What a command writes to: results on `out`, progress on `err`. */
export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
  /** True when stderr is a terminal (progress may redraw, colours allowed). */
  tty: boolean;
  /** The terminal's width in columns, when stderr is one. */
  columns?: number;
}

/** A command's code: returns the process exit code. */
export type CommandRun = (args: ParsedArgs, ctx: Context, output: Output) => Promise<number>;

/** A command: its declaration and a loader for its code. */
export interface Command extends CommandSpec {
  load: () => Promise<{ run: CommandRun }>;
  /** Extra help sections, computed only for `--help` (given the command line, as `fit --help --backend NAME`). */
  helpSections?: (args?: ParsedArgs) => Promise<string[]>;
}

export const commands: readonly Command[] = [
  {
    name: "fit",
    summary: "Run a training job and follow it to the end.",
    usage: "alekseylearn fit ARTIFACT [--entry FILE] [--envfile FILE] [--backend NAME] [--config.KEY=VALUE ...]",
    description: [
      "ARTIFACT is a script (.py), a notebook (.ipynb, run cell by cell) or a folder with --entry FILE; its environment is requirements.txt or environment.yml beside it (or --envfile). It writes its model to /opt/ml/model ($SM_MODEL_DIR) and reads hyperparameters and inputs where SageMaker puts them, on every backend; the model comes back as OUTPUT_PATH/JOB/output/model.tar.gz.",
      "The backend follows config.output_path (s3:// → sagemaker, gs:// → vertex, else local) unless --backend names one. Settings also come from alekseylearn.yml or [tool.alekseylearn] in pyproject.toml; flags win. Ctrl-C stops a local job; on a cloud it stops following (`alekseylearn logs JOB --follow` re-attaches). The README tells the rest.",
    ],
    positionals: [{ name: "ARTIFACT", required: true }],
    options: [
      { name: "entry", value: "FILE", doc: "The file to run when ARTIFACT is a folder." },
      { name: "envfile", value: "FILE", doc: "The environment file (requirements.txt or environment.yml) to use." },
      { name: "backend", aliases: ["driver"], value: "NAME", doc: "Where to run: local, sagemaker, vertex, kaggle or slurm." },
      { name: "name", value: "JOB", doc: "Name the job instead of ARTIFACT-STEM-yyyymmdd-hhmmss-xxxx." },
      { name: "detach", doc: "Return once the job is submitted; follow it later with `alekseylearn logs JOB --follow`." },
      {
        name: "overwrite",
        doc: "Image backends: write the folder's Dockerfile and entrypoint anew (as `init --overwrite`) instead of building with them as they are.",
      },
      {
        name: "dry-run",
        doc: "Check everything that can be checked without creating anything, print the plan (the files that would ship, the image, each provider request as it would be sent) and exit. Needs no Docker; with --json, the plan as JSON.",
      },
    ],
    families: [
      {
        prefix: "config",
        usage: "--config.KEY=VALUE",
        doc: "A backend setting (`alekseylearn settings BACKEND` lists them). Values are typed: 2 is a number, true a boolean, a,b or [a,b] a list.",
      },
      {
        prefix: "hyperparameter",
        usage: "--hyperparameter.KEY=VALUE",
        doc: "A hyperparameter, kept as the text typed (as SageMaker keeps them) and passed as SageMaker's toolkit passes them: --KEY VALUE arguments to a script, hyperparameters.json, SM_HPS, SM_HP_KEY.",
      },
      { prefix: "input", usage: "--input.CHANNEL=LOCATION", doc: "An input channel, seen by the job at /opt/ml/input/data/CHANNEL ($SM_CHANNEL_CHANNEL)." },
    ],
    examples: [
      "alekseylearn fit examples/iris/train.py",
      "alekseylearn fit train.py --hyperparameter.epochs=10 --input.train=./data",
      "alekseylearn fit project/ --entry src/train.py --config.output_path=./runs",
      "alekseylearn fit train.py --config.output_path=s3://bucket/sagemaker/runs",
      "alekseylearn fit train.py --backend kaggle --config.accelerator=gpu",
      "alekseylearn fit train.py --config.output_path=gs://bucket/runs --config.project=my-proj --config.accelerator_type=NVIDIA_L4",
    ],
    load: () => import("./commands/fit.js"),
    helpSections: async (args) => (await import("./commands/fit.js")).settingsHelp(args),
  },
  {
    name: "init",
    summary: "Write the Dockerfile and entrypoint of an artifact's image; with --create-role, make the SageMaker role.",
    usage: "alekseylearn init ARTIFACT [--entry FILE] [--envfile FILE] [--overwrite] [--create-role --config.output_path=s3://... [--input.CHANNEL=s3://...]]",
    description: [
      "Writes Dockerfile and alekseylearn_entrypoint.py beside the artifact (and alekseylearn_run_notebook.py for a notebook): the image that SageMaker and --config.runner=docker run as `docker run IMAGE train`. `fit` builds from them as they are, so edit them freely; without them it builds from the same files, generated. Existing files with other content are kept unless --overwrite.",
      "--create-role creates the IAM role SageMaker jobs run as (config.role_name, default alekseylearn_sagemaker_role), trusted by SageMaker and allowed: this project's S3 output path, inputs and checkpoint location, pulling alekseylearn/* images and config.repository from ECR, config.kms_key, and writing the job's CloudWatch logs and metrics. When the role exists, this project's grants are added to what it already allows, so one role serves every project.",
    ],
    positionals: [{ name: "ARTIFACT", required: true }],
    options: [
      { name: "entry", value: "FILE", doc: "The file to run when ARTIFACT is a folder." },
      { name: "envfile", value: "FILE", doc: "The environment file (requirements.txt or environment.yml) to use." },
      { name: "backend", value: "NAME", doc: "The backend whose settings apply (sagemaker with --create-role)." },
      { name: "overwrite", doc: "Replace an existing Dockerfile or entrypoint." },
      { name: "create-role", doc: "Create (or update) the IAM role SageMaker jobs run as." },
    ],
    families: [
      {
        prefix: "config",
        usage: "--config.KEY=VALUE",
        doc: "base_image, instance_type (a GPU type picks a CUDA base image), and for --create-role output_path, role_name, checkpoint_s3_uri, repository, kms_key.",
      },
      {
        prefix: "input",
        usage: "--input.CHANNEL=LOCATION",
        doc: "With --create-role: an input the role may read (an s3:// prefix or single object), as fit takes it.",
      },
    ],
    examples: [
      "alekseylearn init examples/iris/train.py",
      "alekseylearn init train.py --backend sagemaker --create-role --config.output_path=s3://bucket/sagemaker/runs",
      "alekseylearn init train.py --backend sagemaker --create-role --config.output_path=s3://bucket/sagemaker/runs --input.train=s3://bucket/data/train.csv",
    ],
    load: () => import("./commands/init.js"),
  },
  {
    name: "fetch",
    summary: "Download a job's model and unpack it (or what a failed job left, saying why there is no model).",
    usage: "alekseylearn fetch LOCATION [--to DIR] [--no-extract] [--overwrite] [--max-size SIZE]",
    description: [
      "LOCATION is a job name, an output path (its newest job is fetched), the location of a model.tar.gz, or a Kaggle kernel as kaggle://USER/SLUG. The model's files land in --to (default: the current folder); the job's output data, when it left any (an executed notebook, say), in DIR/output/.",
      "Archives are checked before anything is written: an entry that would land outside DIR (.., absolute paths, links pointing out, devices) refuses the whole archive, and so does one that would not fit on DIR's disk or that grows past 100 times its size once above 1 GiB (--max-size allows more). A refused or failed fetch leaves nothing behind. A file that exists with other content is not replaced without --overwrite.",
    ],
    positionals: [{ name: "LOCATION", required: true }],
    options: [
      { name: "to", value: "DIR", doc: "Where the files go (created if missing). Default: the current folder." },
      { name: "no-extract", doc: "Keep model.tar.gz (and output.tar.gz) as archives instead of unpacking them." },
      { name: "overwrite", doc: "Replace existing files whose content differs." },
      { name: "max-size", value: "SIZE", doc: "Let an archive expand to SIZE (500M, 20G) instead of at most 100 times its size once above 1 GiB." },
    ],
    examples: [
      "alekseylearn fetch iris-20261126-184214-x7k2 --to model/",
      "alekseylearn fetch ./alekseylearn-output",
      "alekseylearn fetch s3://bucket/sagemaker/runs",
      "alekseylearn fetch gs://bucket/runs",
      "alekseylearn fetch kaggle://USER/iris-train --to model/",
    ],
    load: () => import("./commands/fetch.js"),
  },
  {
    name: "status",
    summary: "Show a job's state, times and outputs (the newest job when none is named).",
    usage: "alekseylearn status [JOB]",
    positionals: [{ name: "JOB", required: false }],
    options: [],
    load: () => import("./commands/status.js"),
  },
  {
    name: "jobs",
    summary: "List the jobs this machine has started, newest first.",
    usage: "alekseylearn jobs [--rm JOB]",
    positionals: [],
    options: [
      {
        name: "rm",
        value: "JOB",
        doc: "Remove the record of JOB (and its log and run folder here), so its name is free again; refused while the job may still run.",
      },
    ],
    load: () => import("./commands/jobs.js"),
  },
  {
    name: "logs",
    summary: "Print a job's log; with --follow, keep printing until it ends.",
    usage: "alekseylearn logs JOB [--follow]",
    positionals: [{ name: "JOB", required: true }],
    options: [{ name: "follow", aliases: ["f"], doc: "Keep printing new lines until the job ends." }],
    load: () => import("./commands/logs.js"),
  },
  {
    name: "settings",
    summary: "List a backend's settings (--config.KEY=VALUE) with their types and defaults.",
    usage: "alekseylearn settings [BACKEND]",
    description: [
      "Without BACKEND, lists the backends. Settings are given as --config.KEY=VALUE to fit, init and doctor, or in alekseylearn.yml (or [tool.alekseylearn] in pyproject.toml) beside the artifact.",
    ],
    positionals: [{ name: "BACKEND", required: false }],
    options: [],
    examples: ["alekseylearn settings", "alekseylearn settings sagemaker", "alekseylearn settings vertex --json"],
    load: () => import("./commands/settings.js"),
  },
  {
    name: "completion",
    summary: "Print a shell completion script (bash or zsh): commands, options and each backend's --config. keys.",
    usage: "alekseylearn completion bash|zsh",
    positionals: [{ name: "SHELL", required: true }],
    options: [],
    examples: ["source <(alekseylearn completion bash)    # in ~/.bashrc", "source <(alekseylearn completion zsh)     # in ~/.zshrc"],
    load: () => import("./commands/completion.js"),
  },
  {
    name: "doctor",
    summary: "Check that this machine and its accounts are ready to run jobs: one line per check, with the fix.",
    usage: "alekseylearn doctor [--backend NAME] [--config.KEY=VALUE ...]",
    description: [
      "Checks Python and its version, bubblewrap, the image builder (Docker) and the pip index; then, per backend, its credentials (which source, never the secret), account or project and region, and what a job needs there: SageMaker's role (exists, trusted by SageMaker, allows the output) and output bucket (exists; writable, by writing and deleting a 0-byte OUTPUT_PATH/.alekseylearn-doctor-RANDOM), Kaggle's token and its user, Vertex AI's project and its APIs. Settings come from alekseylearn.yml here and --config flags, as for fit.",
      "Without --backend it checks every backend set up on this machine and exits 1 only when a check of the local backend (the default) fails; with --backend it checks that one and exits 1 when one of its checks fails.",
    ],
    positionals: [],
    options: [{ name: "backend", value: "NAME", doc: "Check this backend only, and exit 1 when one of its checks fails." }],
    families: [{ prefix: "config", usage: "--config.KEY=VALUE", doc: "A setting of the backend, as fit takes it (output_path, role_name, project, region…)." }],
    examples: ["alekseylearn doctor", "alekseylearn doctor --backend sagemaker --config.output_path=s3://bucket/sagemaker/runs", "alekseylearn doctor --json"],
    load: () => import("./commands/doctor.js"),
  },
  {
    name: "stop",
    summary: "Stop a running job.",
    usage: "alekseylearn stop JOB",
    positionals: [{ name: "JOB", required: true }],
    options: [],
    load: () => import("./commands/stop.js"),
  },
  {
    name: "build",
    summary: "Build a job's image without Docker and push it.",
    usage: "alekseylearn build ARTIFACT --to HOST/REPOSITORY[:TAG] [--entry FILE] [--envfile FILE] [--config.KEY=VALUE ...]",
    description: [
      "Assembles the image `fit` would run on SageMaker or Vertex AI (linux/amd64, Docker v2 schema 2) with no Docker daemon: the base image read from its registry, the environment installed from wheels, the job runtime and the shipped files as layers. Prints the image by digest (--json: image, digest, layers, pushed_bytes). Settings: config.base_image, config.python_version, config.builder, as the SageMaker backend's.",
      "Registries on localhost, 127.0.0.0/8 and ::1 are reached over plain http, others over https unless named in ALEKSEYLEARN_INSECURE_REGISTRIES (comma-separated host[:port]). Credentials, when the registry asks: ALEKSEYLEARN_REGISTRY_USER and ALEKSEYLEARN_REGISTRY_PASSWORD.",
    ],
    positionals: [{ name: "ARTIFACT", required: true }],
    options: [
      { name: "to", value: "REF", doc: "Where to push: HOST/REPOSITORY[:TAG] (required)." },
      { name: "entry", value: "FILE", doc: "The file to run when ARTIFACT is a folder." },
      { name: "envfile", value: "FILE", doc: "The environment file (requirements.txt) to use." },
    ],
    families: [{ prefix: "config", usage: "--config.KEY=VALUE", doc: "base_image, python_version or builder (as the SageMaker backend's settings)." }],
    load: () => import("./commands/build.js"),
  },
];
