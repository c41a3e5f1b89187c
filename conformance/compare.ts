/**
 * Holds the simulator against a real server case by case: a step where the simulated share
 * answered otherwise than the real one is a difference (the simulator is wrong, or the case
 * found a choice the model left open that the real server makes otherwise). Where both agree
 * but differ from cifs-nas-model.md, the model's line is noted (its reading of the specs is off).
 */

import type { ConformanceCase, Step } from './cases.js';

export interface StepComparison {
  readonly index: number;
  readonly step: string;
  readonly model: string;
  readonly simulator: string;
  readonly server: string;
}

export interface CaseComparison {
  readonly name: string;
  readonly pins: string;
  readonly steps: number;
  /** Steps where the simulator and the real server answered differently. */
  readonly differences: readonly StepComparison[];
  /** Steps where both answered alike but not as the model says. */
  readonly modelNotes: readonly StepComparison[];
  /** The case has no observation of the real server (it was added after the last recording). */
  readonly unobserved: boolean;
}

export function describeStep(step: Step): string {
  switch (step.op) {
    case 'open':
      return `${step.client} opens ${step.path} as ${step.handle}`;
    case 'lock':
      return `lock ${step.handle} ${step.offset}+${step.length} ${step.mode}${step.wait ? ' (blocking)' : ''}`;
    case 'unlock':
    case 'read':
    case 'write':
      return `${step.op} ${step.handle} ${step.offset}+${step.length}`;
    case 'close':
      return `close ${step.handle}`;
    case 'drop':
      return `${step.client}'s connection drops`;
    case 'reconnect':
      return `${step.client} reconnects`;
    case 'watch':
      return `${step.client} watches ${step.path} as ${step.handle}`;
    case 'notify':
      return `notify on ${step.handle}`;
    case 'touch':
      return `${step.client} sets the last-write time of ${step.path}`;
    case 'outcome':
      return `outcome of step ${step.of}`;
  }
}

export function compareCase(conformanceCase: ConformanceCase, simulator: readonly string[], server: readonly string[] | undefined): CaseComparison {
  const differences: StepComparison[] = [];
  const modelNotes: StepComparison[] = [];
  if (server !== undefined && server.length !== conformanceCase.steps.length) {
    differences.push({ index: -1, step: `the recorded observation has ${server.length} steps, the case ${conformanceCase.steps.length}`, model: '', simulator: '', server: '' });
  } else if (server !== undefined) {
    conformanceCase.steps.forEach((step, index) => {
      const row = { index, step: describeStep(step), model: conformanceCase.model[index]!, simulator: simulator[index]!, server: server[index]! };
      if (row.simulator !== row.server) differences.push(row);
      else if (row.server !== row.model) modelNotes.push(row);
    });
  }
  return { name: conformanceCase.name, pins: conformanceCase.pins, steps: conformanceCase.steps.length, differences, modelNotes, unobserved: server === undefined };
}

/** The text report: one line per case, then a line per difference. */
export function formatComparisons(comparisons: readonly CaseComparison[], serverName: string): string {
  const lines: string[] = [];
  for (const comparison of comparisons) {
    const verdict = comparison.unobserved ? 'UNOBSERVED' : comparison.differences.length > 0 ? 'DIFFERS' : 'ok';
    lines.push(`  ${verdict.padEnd(10)} ${comparison.name} (${comparison.steps} steps)`);
    if (comparison.unobserved) lines.push(`             no observation of ${serverName} for this case: record one (nasq conformance --samba --record)`);
    for (const row of comparison.differences) {
      lines.push(row.index < 0 ? `             ${row.step}` : `             step ${row.index} ${row.step}: simulator ${row.simulator}, ${serverName} ${row.server} (model: ${row.model})`);
    }
    for (const row of comparison.modelNotes) {
      lines.push(`             note: step ${row.index} ${row.step}: both answer ${row.server}; the model says ${row.model}`);
    }
  }
  return lines.join('\n');
}
