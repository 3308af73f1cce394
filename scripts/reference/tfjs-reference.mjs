// Records TF.js reference outputs for walkout's tests.
//
// Runs MoveNet MultiPose with the npm package @tensorflow/tfjs on its pure-JS CPU backend
// (no native binary) on fixed int32 inputs made from real photos, and writes both the input
// and the output of each case as .npy files:
//   OUT/<case>.input.npy   int32 [1,H,W,3]
//   OUT/<case>.output.npy  float32 [1,6,56]
// The inputs are letterboxed here with TF.js's own resizeBilinear, independently of walkout.
//
// usage: node tfjs-reference.mjs MODEL_JSON DATA_DIR OUT_DIR
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { fileHandler, writeNpy } from './common.mjs';

const [modelJson, dataDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node tfjs-reference.mjs MODEL_JSON DATA_DIR OUT_DIR');
  process.exit(2);
}

function decode(file) {
  const buf = fs.readFileSync(file);
  let w, h, rgba;
  if (file.endsWith('.png')) {
    const p = PNG.sync.read(buf);
    [w, h, rgba] = [p.width, p.height, p.data];
  } else {
    const j = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
    [w, h, rgba] = [j.width, j.height, j.data];
  }
  const rgb = new Int32Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    rgb[i * 3] = rgba[i * 4];
    rgb[i * 3 + 1] = rgba[i * 4 + 1];
    rgb[i * 3 + 2] = rgba[i * 4 + 2];
  }
  return tf.tensor3d(rgb, [h, w, 3], 'int32');
}

/** Letterbox into [1,H,W,3] int32: keep aspect, centre, black bars. */
function letterbox(img, H, W) {
  return tf.tidy(() => {
    const [h, w] = img.shape;
    const s = Math.min(W / w, H / h);
    const rw = Math.min(W, Math.max(1, Math.round(w * s)));
    const rh = Math.min(H, Math.max(1, Math.round(h * s)));
    const r = tf.image.resizeBilinear(img.toFloat(), [rh, rw], false, true).round().clipByValue(0, 255);
    const py = Math.floor((H - rh) / 2);
    const px = Math.floor((W - rw) / 2);
    return r.pad([[py, H - rh - py], [px, W - rw - px], [0, 0]]).toInt().expandDims(0);
  });
}

const cases = [
  ['bus_256x256', 'bus.jpg', 256, 256],
  ['zidane_256x256', 'zidane.jpg', 256, 256],
  ['zidane_256x448', 'zidane.jpg', 256, 448],
  ['bus_384x288', 'bus.jpg', 384, 288],
  ['vtest1_256x256', 'vtest/frame_001.png', 256, 256],
  ['vtest3_256x320', 'vtest/frame_003.png', 256, 320],
  ['messi5_256x256', 'messi5.jpg', 256, 256],
];

await tf.setBackend('cpu');
await tf.ready();
const model = await tf.loadGraphModel(fileHandler(modelJson));
fs.mkdirSync(outDir, { recursive: true });
for (const [name, file, H, W] of cases) {
  const img = decode(path.join(dataDir, file));
  const input = letterbox(img, H, W);
  const t0 = Date.now();
  const out = model.execute(input);
  const data = await out.data();
  writeNpy(path.join(outDir, `${name}.input.npy`), 'int32', input.shape, await input.data());
  writeNpy(path.join(outDir, `${name}.output.npy`), 'float32', out.shape, data);
  console.error(`tfjs-reference: ${name} ${JSON.stringify(input.shape)} -> ${JSON.stringify(out.shape)} in ${Date.now() - t0} ms (backend ${tf.getBackend()})`);
  tf.dispose([img, input, out]);
}
