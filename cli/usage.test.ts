import { describe, expect, it } from 'vitest';
import { explainUsage, notANumberError } from './usage.js';

describe('usage messages', () => {
  it('names the unknown command that yargs only recommends a replacement for', () => {
    expect(explainUsage('Did you mean check?', ['chek', '--seeds', '3'])).toBe('unknown command "chek"; did you mean check?');
    expect(explainUsage('Did you mean run?', ['sim', 'frob'])).toBe('unknown command "frob"; did you mean run?');
  });

  it('tells an unknown option from a stray word and an unknown command', () => {
    expect(explainUsage('Unknown argument: sedes', ['check', '--sedes', '3'])).toBe('unknown option --sedes');
    expect(explainUsage('Unknown argument: q', ['check', '-q'])).toBe('unknown option -q');
    expect(explainUsage('Unknown arguments: extra, sedes', ['check', 'extra', '--sedes=2'])).toBe('unexpected argument "extra"; unknown option --sedes');
    expect(explainUsage('Unknown argument: xyzzy', ['xyzzy'])).toBe('unknown command "xyzzy" (nasq --help lists the commands)');
  });

  it('leaves other messages as they are', () => {
    expect(explainUsage('name a command (see --help)', [])).toBe('name a command (see --help)');
  });

  it('reports a numeric option given text as the text typed, not as null', () => {
    expect(notANumberError({ _: ['check'], seeds: Number.NaN, workers: 2 }, ['check', '--seeds', 'abc'])?.message).toBe('--seeds: expected a number, got "abc"');
    expect(notANumberError({ 'max-deliveries': Number.NaN, maxDeliveries: Number.NaN }, ['queue', 'init', 'q', '--max-deliveries=lots'])?.message).toBe(
      '--max-deliveries: expected a number, got "lots"',
    );
    expect(notANumberError({ _: [], seeds: 3 }, ['check', '--seeds', '3'])).toBeUndefined();
  });
});
