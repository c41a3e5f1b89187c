/**
 * Runs the conformance cases against a real Samba server: starts `smbd` on loopback with a
 * throw-away configuration (cifs-nas-model.md section 6: its own port, state directories in a
 * temporary folder, `kernel oplocks = no`, `posix locking = no`, a guest share), feeds the cases
 * to conformance/samba_driver.py (impacket, an SMB2/3 client in Python), and stops the server.
 *
 * Needs Samba and impacket (Debian: `apt-get install samba python3-impacket`); nothing else in
 * nasq does. Their observations are kept in conformance/samba-observed.json, which the test
 * suite holds the simulator against on machines without Samba.
 */

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { sourceFile } from '../adapters/compiled-entry.js';
import type { ConformanceCase } from './cases.js';

/** What a real server answered to every case. */
export interface ServerObservations {
  /** The server and its version, as it reports it (`smbd --version`). */
  readonly server: string;
  /** The SMB dialect negotiated, as hex (0x0300 is SMB 3.0). */
  readonly dialect: string;
  /** When the observations were made (YYYY-MM-DD). */
  readonly observedOn: string;
  /** Seconds between two steps (a blocking lock has this long to complete). */
  readonly stepSeconds: number;
  readonly cases: ReadonlyArray<{ readonly name: string; readonly observed: readonly string[] }>;
}

/** Samba or impacket is missing, or the server did not start: says what to install or check. */
export class ConformanceSetupError extends Error {
  override readonly name = 'ConformanceSetupError';
}

export interface SambaOptions {
  /** The smbd program. Default `smbd` (on PATH). */
  readonly smbd?: string;
  /** A Python 3 with impacket. Default: `python3`, else /usr/bin/python3 (Debian's, where apt puts impacket). */
  readonly python?: string;
  /** Loopback TCP port for the server. Default 4455. */
  readonly port?: number;
  /** Seconds between steps. Default 0.15. */
  readonly stepSeconds?: number;
  /** Today, as YYYY-MM-DD (the caller's clock). */
  readonly today: string;
}

/** A file of conformance/ (the recorded observations, the Samba driver), from the sources or compiled. */
export function conformanceFile(name: string): string {
  return fileURLToPath(sourceFile(import.meta.url, 'conformance', name));
}

function pythonWithImpacket(preferred: string | undefined): string {
  const candidates = preferred === undefined ? ['python3', '/usr/bin/python3'] : [preferred];
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import impacket'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  throw new ConformanceSetupError(
    `expected a Python 3 with impacket (tried ${candidates.join(', ')}); install it (Debian: apt-get install python3-impacket) or name one with --python`,
  );
}

function sambaVersion(smbd: string): string {
  const probe = spawnSync(smbd, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new ConformanceSetupError(`expected a Samba server program at ${JSON.stringify(smbd)}, found none (${probe.error?.message ?? probe.stderr.trim()}); install Samba (Debian: apt-get install samba) or name it with --smbd`);
  }
  // smbd --version prints "Version 4.17.12-Debian".
  return `Samba ${probe.stdout.trim().replace(/^Version\s+/i, '')}`;
}

function sambaConfiguration(root: string, port: number): string {
  const directory = (name: string): string => {
    const path = join(root, name);
    mkdirSync(path, { recursive: true });
    // The share is used as the guest account (nobody): it must be able to create files there.
    chmodSync(path, 0o777);
    return path;
  };
  return [
    '[global]',
    `  smb ports = ${port}`,
    '  interfaces = lo',
    '  bind interfaces only = yes',
    `  state directory = ${directory('state')}`,
    `  cache directory = ${directory('cache')}`,
    `  lock directory = ${directory('lock')}`,
    `  pid directory = ${directory('pid')}`,
    `  private dir = ${directory('private')}`,
    `  log file = ${join(directory('log'), 'smbd.log')}`,
    '  log level = 1',
    '  kernel oplocks = no',
    '  posix locking = no',
    '  map to guest = Bad User',
    '  server role = standalone server',
    '  disable netbios = yes',
    '  load printers = no',
    '  printing = bsd',
    '  printcap name = /dev/null',
    '  disable spoolss = yes',
    '[q]',
    `  path = ${directory('share')}`,
    '  read only = no',
    '  guest ok = yes',
    '  guest only = yes',
    '',
  ].join('\n');
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function waitForPort(port: number, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stopped = exited();
    if (stopped !== undefined) throw new ConformanceSetupError(`smbd stopped before it listened on port ${port}: ${stopped}`);
    if (await portAnswers(port)) return;
    if (performance.now() > deadline) throw new ConformanceSetupError(`smbd did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a throw-away Samba, runs every case against it, stops it. */
export async function observeSamba(cases: readonly ConformanceCase[], options: SambaOptions): Promise<ServerObservations> {
  const smbd = options.smbd ?? 'smbd';
  const port = options.port ?? 4455;
  const stepSeconds = options.stepSeconds ?? 0.15;
  const server = sambaVersion(smbd);
  const python = pythonWithImpacket(options.python);
  // A server already there would answer in place of ours (with whatever state it holds).
  if (await portAnswers(port)) throw new ConformanceSetupError(`expected a free port, found 127.0.0.1:${port} in use; pick another with --port`);
  const root = mkdtempSync(join(tmpdir(), 'nasq-samba-'));
  // mkdtemp makes it private; the guest account must get through it to the share.
  chmodSync(root, 0o755);
  const configuration = join(root, 'smb.conf');
  writeFileSync(configuration, sambaConfiguration(root, port));
  // In a process group of its own (detached): smbd signals its whole group when it stops, and
  // it forks a child per connection; both must stay away from ours.
  const daemon = spawn(smbd, ['--foreground', '--no-process-group', `--configfile=${configuration}`], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let daemonErrors = '';
  let exit: string | undefined;
  daemon.stderr.on('data', (chunk: Buffer) => (daemonErrors += chunk.toString()));
  daemon.on('exit', (code, signal) => (exit = `exit ${code ?? signal}${daemonErrors === '' ? '' : `: ${daemonErrors.trim()}`}`));
  daemon.on('error', (error) => (exit = error.message));
  try {
    await waitForPort(port, 10_000, () => exit);
    const input = JSON.stringify({ host: '127.0.0.1', port, share: 'q', stepSeconds, cases: cases.map((entry) => ({ name: entry.name, steps: entry.steps })) });
    const driver = spawnSync(python, [conformanceFile('samba_driver.py')], { input, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    if (driver.status !== 0) {
      throw new ConformanceSetupError(`the Samba driver failed (exit ${driver.status ?? driver.signal}): ${driver.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    const result = JSON.parse(driver.stdout) as { dialect: string; cases: { name: string; observed: string[] }[] };
    return { server, dialect: result.dialect, observedOn: options.today, stepSeconds, cases: result.cases };
  } finally {
    if (exit === undefined && daemon.pid !== undefined) {
      const stopped = new Promise((resolve) => daemon.once('exit', resolve));
      process.kill(-daemon.pid, 'SIGTERM');
      await stopped;
    }
    rmSync(root, { recursive: true, force: true });
  }
}

const observationsSchema = z.strictObject({
  server: z.string().min(1),
  dialect: z.string().regex(/^0x[0-9a-f]{4}$/),
  observedOn: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  stepSeconds: z.number().positive(),
  cases: z.array(z.strictObject({ name: z.string().min(1), observed: z.array(z.string().min(1)) })),
});

/** The observations kept in the repository (conformance/samba-observed.json), checked for shape. */
export function recordedObservations(path = conformanceFile('samba-observed.json')): ServerObservations {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConformanceSetupError(`cannot read the recorded observations ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConformanceSetupError(`${path}: expected JSON, found ${(error as Error).message}`);
  }
  const parsed = observationsSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConformanceSetupError(`${path}: at ${issue.path.join('.') || 'the top'}: ${issue.message}`);
  }
  return parsed.data;
}
