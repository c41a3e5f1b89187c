/**
 * A report directory: `report.json` (the document, the source of everything else), `junit.xml`,
 * `summary.md` and `report.html`. `nasq report DIR` renders the last three again from the first.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capacityLatencyChart, capacityThroughputChart, renderSvg } from './charts.js';
import { type ReportDocument, asReportDocument } from './document.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';

export const reportFileNames = {
  json: 'report.json',
  junit: 'junit.xml',
  markdown: 'summary.md',
  html: 'report.html',
  /** Capacity reports only: the charts alone, for a README or a wiki. */
  capacityThroughput: 'capacity-throughput.svg',
  capacityLatency: 'capacity-latency.svg',
} as const;

export interface WrittenReport {
  readonly directory: string;
  /** Paths of the files written. */
  readonly files: string[];
}

/** Writes the document and everything rendered from it. */
export async function writeReport(directory: string, document: ReportDocument): Promise<WrittenReport> {
  await mkdir(directory, { recursive: true });
  const json = join(directory, reportFileNames.json);
  await writeFile(json, `${JSON.stringify(document)}\n`);
  const rendered = await renderReport(directory, document);
  return { directory, files: [json, ...rendered.files] };
}

/** Writes the JUnit XML, Markdown and HTML of a document (not the JSON), and a capacity report's charts as SVG. */
export async function renderReport(directory: string, document: ReportDocument): Promise<WrittenReport> {
  await mkdir(directory, { recursive: true });
  const html = await renderHtml(document);
  const files: Array<[string, string]> = [
    [join(directory, reportFileNames.junit), renderJunit(document)],
    [join(directory, reportFileNames.markdown), renderMarkdown(document, { htmlName: reportFileNames.html })],
    [join(directory, reportFileNames.html), html],
  ];
  if (document.kind === 'capacity') {
    const series = document.capacity!.series;
    files.push([join(directory, reportFileNames.capacityThroughput), await renderSvg(capacityThroughputChart(series), 'capacity-throughput')]);
    files.push([join(directory, reportFileNames.capacityLatency), await renderSvg(capacityLatencyChart(series), 'capacity-latency')]);
  }
  for (const [path, contents] of files) await writeFile(path, contents);
  return { directory, files: files.map(([path]) => path) };
}

/** Reads a report directory's document; throws a TypeError that says what is wrong. */
export async function readReport(directory: string): Promise<ReportDocument> {
  const path = join(directory, reportFileNames.json);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TypeError(`cannot read ${path}: ${(error as Error).message} (expected a directory written by --report)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`${path} is not JSON: ${(error as Error).message}`);
  }
  return asReportDocument(value, path);
}
