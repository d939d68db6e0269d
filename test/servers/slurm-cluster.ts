/**
 * A real two-node Slurm cluster on loopback, and an sshd standing in for its login node (DESIGN.md's recipe), made in a
 * temporary folder and stopped by `stop()`:
 * - munged with its own key and socket (slurm.conf's AuthInfo=socket=…, slurm.schedmd.com/slurm.conf.html#OPT_AuthInfo);
 * - slurmctld, and two slurmd (-N node1, -N node2), each node on its own port (NodeName … Port=), NodeAddr=127.0.0.1;
 *   proctrack/linuxproc and task/none (no cgroups needed), no accounting (so `sacct` says "Slurm accounting storage is
 *   disabled", as on small clusters), select/cons_tres with CR_CPU so two jobs may share a node;
 * - sshd on a loopback port with a host key and the user's key made here, and an ssh_config naming both, which the
 *   CLI is given as config.ssh_config; sshd's SetEnv gives every login SLURM_CONF, as /etc/slurm/slurm.conf would.
 * Slurm 22.05.8 (Debian 12's slurm-wlm) runs it as root, the jobs as the user who submits them.
 */
import { execFileSync, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../helpers/servers.js";

/** A running cluster: its slurm.conf, the ssh_config and host name that reach its login node, and how to stop it. */
export interface SlurmCluster {
  dir: string;
  slurmConf: string;
  /** The login node's name in `sshConfig`. */
  host: string;
  sshConfig: string;
  /** The environment that runs Slurm's commands here directly (SLURM_CONF). */
  env: NodeJS.ProcessEnv;
  stop(): void;
}

function sbin(name: string): string {
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin"]) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  return name;
}

function pidOf(file: string): number | undefined {
  try {
    return Number(fs.readFileSync(file, "utf8").trim()) || undefined;
  } catch {
    return undefined;
  }
}

async function until(what: string, check: () => boolean, log: string, seconds = 30): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > end)
      throw new Error(`${what} did not come up within ${seconds}s; ${log}:\n${fs.existsSync(log) ? fs.readFileSync(log, "utf8").slice(-2000) : "(no log)"}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Start the cluster and its login node. */
export async function startSlurmCluster(): Promise<SlurmCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "alekseylearn-slurm-"));
  fs.chmodSync(dir, 0o755);
  const started: string[] = []; // pid files of what was started, stopped in reverse
  const stop = (): void => {
    for (const file of [...started].reverse()) {
      const pid = pidOf(file);
      try {
        if (pid) process.kill(pid, "SIGTERM");
      } catch {
        // gone already
      }
    }
    // slurmd leaves the job steps' processes (slurmstepd) behind only while a job runs; give everything a moment, then go.
    spawnSync("sleep", ["0.3"]);
    for (const file of started) {
      const pid = pidOf(file);
      try {
        if (pid) process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const sub of ["munge", "state", "spool", "log", "ssh"]) fs.mkdirSync(path.join(dir, sub), { mode: 0o700 });
    // munge: its own key (1024 random bytes, owner-only as munged requires) and socket.
    const key = path.join(dir, "munge", "key");
    fs.writeFileSync(key, crypto.randomBytes(1024), { mode: 0o400 });
    const socket = path.join(dir, "munge", "socket");
    const mungePid = path.join(dir, "munge", "pid");
    execFileSync(sbin("munged"), [
      `--socket=${socket}`,
      `--key-file=${key}`,
      `--pid-file=${mungePid}`,
      `--log-file=${path.join(dir, "log", "munged.log")}`,
      `--seed-file=${path.join(dir, "munge", "seed")}`,
      "--force", // it runs as root here, which munged otherwise refuses
    ]);
    started.push(mungePid);

    const [ctld, port1, port2, sshPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const hostname = os.hostname();
    const slurmConf = path.join(dir, "slurm.conf");
    fs.writeFileSync(
      slurmConf,
      [
        "ClusterName=alekseylearn-test",
        `SlurmctldHost=${hostname}(127.0.0.1)`,
        `SlurmctldPort=${ctld}`,
        "SlurmUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        `AuthInfo=socket=${socket}`,
        `StateSaveLocation=${path.join(dir, "state")}`,
        `SlurmdSpoolDir=${path.join(dir, "spool", "%n")}`,
        `SlurmctldPidFile=${path.join(dir, "slurmctld.pid")}`,
        `SlurmdPidFile=${path.join(dir, "slurmd-%n.pid")}`,
        `SlurmctldLogFile=${path.join(dir, "log", "slurmctld.log")}`,
        `SlurmdLogFile=${path.join(dir, "log", "slurmd-%n.log")}`,
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        // The nodes' CPUs as written here, whatever this machine has.
        "SlurmdParameters=config_overrides",
        "MpiDefault=none",
        "ReturnToService=2",
        // A stopped job's processes get SIGKILL this long after scancel's SIGTERM (Slurm's default is 30 s).
        "KillWait=5",
        `NodeName=node1 NodeAddr=127.0.0.1 NodeHostname=${hostname} Port=${port1} CPUs=2 State=UNKNOWN`,
        `NodeName=node2 NodeAddr=127.0.0.1 NodeHostname=${hostname} Port=${port2} CPUs=2 State=UNKNOWN`,
        "PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP",
        "",
      ].join("\n"),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: slurmConf };
    execFileSync(sbin("slurmctld"), ["-f", slurmConf], { env });
    started.push(path.join(dir, "slurmctld.pid"));
    for (const node of ["node1", "node2"]) {
      execFileSync(sbin("slurmd"), ["-f", slurmConf, "-N", node], { env });
      started.push(path.join(dir, `slurmd-${node}.pid`));
    }
    await until(
      "the two Slurm nodes",
      () => {
        const result = spawnSync("sinfo", ["--noheader", "--format=%t %D"], { env, encoding: "utf8" });
        return result.status === 0 && /^idle 2$/m.test(result.stdout);
      },
      path.join(dir, "log", "slurmctld.log"),
    );

    // The login node: sshd on loopback with a host key and the user's key made here.
    const ssh = path.join(dir, "ssh");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(ssh, "host_key")]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(ssh, "user_key")]);
    fs.copyFileSync(path.join(ssh, "user_key.pub"), path.join(ssh, "authorized_keys"));
    const sshdPid = path.join(ssh, "sshd.pid");
    const sshdConfig = path.join(ssh, "sshd_config");
    fs.writeFileSync(
      sshdConfig,
      [
        `ListenAddress 127.0.0.1:${sshPort}`,
        `HostKey ${path.join(ssh, "host_key")}`,
        `AuthorizedKeysFile ${path.join(ssh, "authorized_keys")}`,
        `PidFile ${sshdPid}`,
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        `SetEnv SLURM_CONF=${slurmConf}`,
        "",
      ].join("\n"),
    );
    fs.mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation folder
    execFileSync(sbin("sshd"), ["-f", sshdConfig, "-E", path.join(dir, "log", "sshd.log")]);
    started.push(sshdPid);
    const host = "slurm-login";
    const sshConfig = path.join(ssh, "ssh_config");
    fs.writeFileSync(
      sshConfig,
      [
        `Host ${host}`,
        "  HostName 127.0.0.1",
        `  Port ${sshPort}`,
        `  User ${os.userInfo().username}`,
        `  IdentityFile ${path.join(ssh, "user_key")}`,
        "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${path.join(ssh, "known_hosts")}`,
        "  StrictHostKeyChecking accept-new",
        "  LogLevel ERROR",
        "",
      ].join("\n"),
    );
    await until(
      "sshd",
      () => spawnSync("ssh", ["-F", sshConfig, "-o", "BatchMode=yes", host, "true"], { encoding: "utf8" }).status === 0,
      path.join(dir, "log", "sshd.log"),
    );
    return { dir, slurmConf, host, sshConfig, env, stop };
  } catch (err) {
    stop();
    throw err;
  }
}
