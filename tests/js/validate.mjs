// Run the Khronos glTF-Validator on one .glb or .gltf file and print its report as JSON.
// Usage: node validate.mjs <file>   (external .bin/.png resources are read next to the file)
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const file = process.argv[2];
const bytes = new Uint8Array(await readFile(file));
const options = {
  uri: path.basename(file),
  maxIssues: 0, // report every issue
  externalResourceFunction: async (uri) =>
    new Uint8Array(await readFile(path.join(path.dirname(file), decodeURIComponent(uri)))),
};
const report = file.endsWith(".gltf")
  ? await validator.validateString(new TextDecoder().decode(bytes), options)
  : await validator.validateBytes(bytes, options);
process.stdout.write(JSON.stringify(report));
