/**
 * Worker threads run compiled JavaScript: `npm run build` puts it under dist/. A module that starts
 * workers finds the compiled file next to itself when it runs compiled (from dist/FOLDER/), and
 * under dist/FOLDER/ of the repository when it runs from the TypeScript sources (tests, tsx).
 */
export function compiledEntry(moduleUrl: string, folder: string, file: string): URL {
  const here = new URL('.', moduleUrl);
  return here.pathname.endsWith(`/dist/${folder}/`) ? new URL(file, here) : new URL(`../dist/${folder}/${file}`, here);
}
