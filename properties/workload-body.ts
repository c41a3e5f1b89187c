/**
 * Message bodies of the simulated workloads (scenario runs and capacity studies): a label that
 * names the message ("sender/number", what the history and the checkers compare), then, when a
 * body size is asked for (`workload.bodyBytes`, `nasq capacity --body-bytes`), a zero byte and
 * filler up to that size, so a study can see what big messages cost on a slow link.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const separator = 0;

/** The body of the message labelled `label`, `bodyBytes` long (the label alone if that is 0 or too short). */
export function workloadBody(label: string, bodyBytes: number): Uint8Array {
  const labelBytes = encoder.encode(label);
  if (bodyBytes <= labelBytes.length + 1) return labelBytes;
  const body = new Uint8Array(bodyBytes);
  body.set(labelBytes);
  body[labelBytes.length] = separator;
  // Filler 'a' to 'z' over and over: never the separator.
  for (let index = labelBytes.length + 1; index < bodyBytes; index += 1) body[index] = 0x61 + (index % 26);
  return body;
}

/**
 * The label of a delivered body. A body that is not exactly what `workloadBody` makes of its own
 * label (cut short, filler changed, the wrong size) gets a label no message was sent with, so the
 * checkers report a delivery of a body that was never sent.
 */
export function labelOfBody(body: Uint8Array, bodyBytes: number): string {
  const end = body.indexOf(separator);
  const label = decoder.decode(end < 0 ? body : body.subarray(0, end));
  const expected = workloadBody(label, bodyBytes);
  if (expected.length !== body.length) return `${label} (a body of ${body.length} bytes, expected ${expected.length})`;
  for (let index = 0; index < body.length; index += 1) {
    if (body[index] !== expected[index]) return `${label} (body differs from what was sent at byte ${index})`;
  }
  return label;
}
