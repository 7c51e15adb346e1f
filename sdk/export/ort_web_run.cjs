// Runs an ONNX / ORT-format model in onnxruntime-web's WASM backend under Node.
// Usage: node ort_web_run.cjs <folder holding node_modules/onnxruntime-web> <request.json> <response.json>
// request: {"model": path, "threads": n, "inputs": {name: {"dtype": "float32"|"float64"|"int64",
//           "dims": [...], "file": raw little-endian bytes}}}
// response: {"version": ..., "outputs": {name: {"dtype": ..., "dims": [...], "file": path}}}
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const ARRAYS = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array };

async function main() {
  const [ortDir, requestPath, responsePath] = process.argv.slice(2);
  const ort = createRequire(path.join(path.resolve(ortDir), "package.json"))("onnxruntime-web");
  const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
  ort.env.wasm.numThreads = request.threads || 1;
  ort.env.logLevel = "error";
  const session = await ort.InferenceSession.create(fs.readFileSync(request.model), {
    executionProviders: ["wasm"], graphOptimizationLevel: "basic",
  });
  const feeds = {};
  for (const [name, spec] of Object.entries(request.inputs)) {
    const Ctor = ARRAYS[spec.dtype];
    if (!Ctor) throw new Error(`unsupported input dtype ${spec.dtype}`);
    const buf = fs.readFileSync(spec.file);
    const data = new Ctor(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    feeds[name] = new ort.Tensor(spec.dtype, data, spec.dims);
  }
  const results = await session.run(feeds);
  const outputs = {};
  for (const [name, tensor] of Object.entries(results)) {
    const file = `${responsePath}.${name}.bin`;
    fs.writeFileSync(file, Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    outputs[name] = { dtype: tensor.type, dims: tensor.dims, file };
  }
  fs.writeFileSync(responsePath, JSON.stringify({ version: ort.env.versions.web, outputs }));
}

main().catch((err) => {
  process.stderr.write(`${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
