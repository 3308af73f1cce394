// Times MoveNet MultiPose on TF.js's WASM backend (@tensorflow/tfjs-backend-wasm, XNNPACK),
// the peer walkout's CPU executor is compared with. Prints one JSON line.
//
// usage: node bench-wasm.mjs MODEL_JSON [H W ITERS]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { fileHandler } from './common.mjs';

const [modelJson, H = '256', W = '256', ITERS = '20'] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
setWasmPaths(path.join(here, 'node_modules/@tensorflow/tfjs-backend-wasm/dist') + path.sep);
await tf.setBackend('wasm');
await tf.ready();
const model = await tf.loadGraphModel(fileHandler(modelJson));
const h = Number(H), w = Number(W), iters = Number(ITERS);
// deterministic pixels
const px = new Int32Array(h * w * 3);
let s = 12345;
for (let i = 0; i < px.length; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; px[i] = s % 256; }
const input = tf.tensor4d(px, [1, h, w, 3], 'int32');
for (let i = 0; i < 3; i++) { const o = model.execute(input); await o.data(); o.dispose(); }
const times = [];
for (let i = 0; i < iters; i++) {
  const t0 = process.hrtime.bigint();
  const o = model.execute(input);
  await o.data();
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  o.dispose();
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({ peer: 'tfjs-wasm', backend: tf.getBackend(), threads: getThreadsCount(), input_shape: [1, h, w, 3], iters, ms_per_batch_median: median, fps: 1000 / median }));
