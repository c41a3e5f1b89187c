/**
 * Finding scenarios: the built-in ones by name, or a user's file (JSON, or a JavaScript /
 * TypeScript module whose default export is a scenario or an array of them).
 */

import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtinScenarios } from './builtin.js';
import { ScenarioError, parseScenario, type Scenario } from './schema.js';

export interface LoadedScenario {
  readonly scenario: Scenario;
  /** 'builtin' or the file it came from. */
  readonly source: string;
}

let builtins: LoadedScenario[] | undefined;

export function builtinScenarioList(): LoadedScenario[] {
  builtins ??= builtinScenarios.map((input) => ({ scenario: parseScenario(input, `builtin:${input.name}`), source: 'builtin' }));
  return builtins;
}

/** The default set of `nasq check`: every built-in scenario. */
export const defaultScenarioSet = 'all';

/**
 * Resolves a `--scenario` argument: 'all', a built-in name, a comma-separated list of them, or a
 * path to a scenario file.
 */
export async function resolveScenarios(argument: string): Promise<LoadedScenario[]> {
  const list = builtinScenarioList();
  if (argument === 'all') return list;
  const result: LoadedScenario[] = [];
  for (const part of argument.split(',').map((item) => item.trim()).filter((item) => item.length > 0)) {
    const builtin = list.find((loaded) => loaded.scenario.name === part);
    if (builtin !== undefined) {
      result.push(builtin);
      continue;
    }
    if (/[/\\.]/.test(part)) {
      result.push(...(await loadScenarioFile(part)));
      continue;
    }
    throw new ScenarioError(`no scenario named ${JSON.stringify(part)}; expected one of: all, ${list.map((loaded) => loaded.scenario.name).join(', ')}, or a path to a .json / .js / .ts file`);
  }
  if (result.length === 0) throw new ScenarioError(`--scenario: expected a scenario name or file, got ${JSON.stringify(argument)}`);
  return result;
}

export async function loadScenarioFile(path: string): Promise<LoadedScenario[]> {
  const absolute = resolve(path);
  const extension = extname(absolute);
  let exported: unknown;
  if (extension === '.json') {
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (error) {
      throw new ScenarioError(`cannot read scenario file ${path}: ${(error as Error).message}`);
    }
    try {
      exported = JSON.parse(text);
    } catch (error) {
      throw new ScenarioError(`scenario file ${path} is not valid JSON: ${(error as Error).message}`);
    }
  } else if (['.js', '.mjs', '.ts', '.mts'].includes(extension)) {
    try {
      const module = (await importModule(absolute, extension)) as { default?: unknown };
      exported = module.default;
    } catch (error) {
      throw new ScenarioError(`cannot load scenario module ${path}: ${(error as Error).message}`);
    }
    if (exported === undefined) throw new ScenarioError(`scenario module ${path} has no default export (expected a scenario or an array of them)`);
  } else {
    throw new ScenarioError(`scenario file ${path}: expected a .json, .js, .mjs, .ts or .mts file, got ${JSON.stringify(extension || 'no extension')}`);
  }
  const items = Array.isArray(exported) ? exported : [exported];
  return items.map((item, index) => ({ scenario: parseScenario(item, items.length > 1 ? `${path}[${index}]` : path), source: path }));
}

async function importModule(absolute: string, extension: string): Promise<unknown> {
  if (extension === '.ts' || extension === '.mts') {
    // TypeScript needs a loader: tsx's, if it is installed; running under one (vitest) works too.
    try {
      const specifier = 'tsx/esm/api';
      const tsx = (await import(specifier)) as { tsImport: (path: string, parent: string) => Promise<unknown> };
      return await tsx.tsImport(pathToFileURL(absolute).href, import.meta.url);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    }
  }
  return import(pathToFileURL(absolute).href);
}
