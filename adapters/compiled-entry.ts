/**
 * Modules run from two places: compiled, from dist/FOLDER/ (`npm run build`), or from the
 * TypeScript sources in FOLDER/ (tests, tsx). These find a file of the other place.
 *
 * Worker threads run compiled JavaScript: a module that starts workers finds the compiled file
 * next to itself when it runs compiled, and under dist/FOLDER/ when it runs from the sources.
 */
export function compiledEntry(moduleUrl: string, folder: string, file: string): URL {
  const here = new URL('.', moduleUrl);
  return here.pathname.endsWith(`/dist/${folder}/`) ? new URL(file, here) : new URL(`../dist/${folder}/${file}`, here);
}

/**
 * A file that stays in the repository's FOLDER/ (data, a script in another language): next to the
 * module when it runs from the sources, two levels up from dist/FOLDER/ when it runs compiled.
 */
export function sourceFile(moduleUrl: string, folder: string, file: string): URL {
  const here = new URL('.', moduleUrl);
  return here.pathname.endsWith(`/dist/${folder}/`) ? new URL(`../../${folder}/${file}`, here) : new URL(file, here);
}
